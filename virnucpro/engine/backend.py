"""The one interface every engine implements, so the pipeline never asks which engine it has.

An engine says which devices a run gets (`devices`), loads the models once per worker and
returns the workers (`load`); a worker runs a block and returns its `BlockOutput`
(`run_block(block, want_features)`). Two implementations: this host's devices, one thread per
device (engine/local.py), and Ray actors, one per GPU of a cluster (engine/ray_workers.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from virnucpro.engine.encoders import ModelChoice
from virnucpro.engine.work import WorkBlock
from virnucpro.engine.worker import BlockOutput
from virnucpro.tokenize.dnabert import DnabertTokenizer


class Worker(Protocol):
    def run_block(self, block: WorkBlock, want_features: bool = False) -> BlockOutput: ...


@dataclass
class LoadedWorkers:
    """Workers holding the models, and what the driver needs to know about them (no weights)."""

    workers: list[Worker]
    device_names: list[str]  # one per device, for the log and run.json
    watched_devices: list[torch.device]  # this host's devices the monitor samples (none for Ray)
    tokenizer: DnabertTokenizer
    paths: dict[str, Path]
    dnabert_dim: int
    esm_parameters: int
    batch_tokens: int  # the token budget, the smallest over the workers' devices: every block fits everywhere
    load_seconds: float  # loading and warm-up
    load_phases: dict[str, float | None] = field(default_factory=dict)  # seconds per phase (engine/local.py)


class Engine(Protocol):
    def devices(self, device: str, gpus: str | None, workers: int) -> list[torch.device]: ...

    def load(self, choice: ModelChoice, devices: list[torch.device], dtype: torch.dtype,
             batch_tokens: int | None) -> LoadedWorkers: ...


@contextmanager
def open_engine(kind: str, ray_address: str | None, logger: logging.Logger) -> Iterator[Engine]:
    """`local` (this host) or `ray` (a Ray cluster, an optional dependency imported only here)."""
    if kind != "ray":
        from virnucpro.engine.local import LocalEngine

        yield LocalEngine(logger)
        return
    from virnucpro.engine.ray_workers import ray_session

    with ray_session(ray_address, logger) as engine:
        yield engine
