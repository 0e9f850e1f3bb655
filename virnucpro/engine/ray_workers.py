"""`--engine ray`: the same stream, with each block's model work done by a Ray actor.

The driver reads, chunks, tokenises and batches blocks and writes the results in input order, exactly
as the local engine does; only `run_block` crosses to an actor (one per GPU of the cluster, or
`--workers` actors on CPU), which holds the three models on its device. Blocks are fixed when built,
so the result files do not depend on which actor ran which block.

Fault tolerance is Ray's: a dead actor is restarted (it reloads the models) and the blocks it held are
retried, which is safe because running a block twice gives the same result. Model paths are resolved
on the driver and every actor loads from those same paths: on a multi-node cluster they must be on
storage that every node mounts at the same place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from virnucpro.engine.backend import LoadedWorkers
from virnucpro.engine.devices import SetupError, resolve_batch_tokens
from virnucpro.engine.encoders import ModelChoice, load_encoders, model_paths, tokenizer_for
from virnucpro.engine.work import TokenBatch, WorkBlock
from virnucpro.engine.worker import BlockOutput, DeviceWorker
from virnucpro.errors import VirnucproError

MAX_RESTARTS = 3  # per actor, and retries per block: a block that kills its actor 4 times fails the run
BLOCKS_IN_FLIGHT_PER_ACTOR = 2  # the next block is already sent while the actor runs one


def import_ray():
    """Ray is an optional dependency, imported only by this engine."""
    try:
        import ray
    except ImportError:
        raise SetupError("--engine ray needs Ray: pip install 'virnucpro[ray]'") from None
    return ray


@contextmanager
def ray_session(address: str | None, logger: logging.Logger) -> Iterator[RayEngine]:
    """Connect to the cluster at `address` (None: start a local instance, shut down at the end).

    A Ray already initialised in this process (a notebook, a test) is used as it is and left running.
    """
    ray = import_ray()
    owned = not ray.is_initialized()
    if owned:
        _connect(ray, address)
    engine = RayEngine(ray, logger)
    try:
        yield engine
    finally:
        engine.close()
        if owned:
            ray.shutdown()


def _connect(ray, address: str | None) -> None:
    try:
        if address is None:
            ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as error:
        raise SetupError(f"--ray-address {address}: {error}") from None


@dataclass
class ActorInfo:
    """What an actor reports after loading the models (or the one-line reason it could not)."""

    name: str
    error: str | None = None
    dnabert_dim: int = 0
    esm_parameters: int = 0
    batch_tokens: int = 0


class RayEngine:
    """The Ray engine (engine/backend.py's interface): the actors of one run, how many and on what,
    loading the models, and stopping them."""

    def __init__(self, ray, logger: logging.Logger):
        self._ray = ray
        self._logger = logger
        self._actors: list = []

    def devices(self, device: str, gpus: str | None, workers: int) -> list[torch.device]:
        """One device per actor: every GPU of the cluster (or `--gpus N` of them), else `workers` CPUs."""
        resources = self._ray.cluster_resources()
        available = int(resources.get("GPU", 0))
        if device == "cpu" or (device == "auto" and available == 0):
            if workers > resources.get("CPU", 0):  # Ray would wait for the missing CPUs forever
                raise SetupError(f"--workers {workers}: the Ray cluster has {int(resources.get('CPU', 0))} CPU(s)")
            return [torch.device("cpu")] * workers
        if device not in ("auto", "cuda"):
            raise SetupError(f"--device {device} with --engine ray: use auto, cpu or cuda (and --gpus N)")
        if available == 0:
            raise SetupError("--device cuda: the Ray cluster has no GPUs")
        count = available if gpus in (None, "all") else _gpu_count(gpus)
        if count > available:
            raise SetupError(f"--gpus {gpus}: the Ray cluster has {available} GPU(s)")
        return [torch.device("cuda")] * count

    def load(self, choice: ModelChoice, devices: list[torch.device], dtype: torch.dtype,
             batch_tokens: int | None) -> LoadedWorkers:
        """Start one actor per device; each loads the models from the paths resolved here."""
        started = time.perf_counter()
        paths = model_paths(choice)
        on_gpu = devices[0].type == "cuda"
        actor_class = self._ray.remote(BlockActor).options(
            num_cpus=1, num_gpus=1 if on_gpu else 0, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)
        self._logger.info("starting %d Ray actor(s), one %s each (they wait until the cluster has them free)",
                          len(devices), "GPU" if on_gpu else "CPU")
        self._actors = [actor_class.remote(paths, devices[0].type, dtype) for _ in devices]
        infos = self._ray.get([actor.describe.remote(batch_tokens) for actor in self._actors])
        for info in infos:
            if info.error is not None:
                raise SetupError(f"Ray actor {info.name}: {info.error}")
        seconds = time.perf_counter() - started
        self._logger.info("models loaded in %.1f s by %d Ray actor(s): %s", seconds, len(infos),
                          ", ".join(info.name for info in infos))
        workers = [RayWorker(self._ray, actor) for actor in self._actors for _ in range(BLOCKS_IN_FLIGHT_PER_ACTOR)]
        return LoadedWorkers(workers, [info.name for info in infos], [], tokenizer_for(paths["dnabert"]), paths,
                             infos[0].dnabert_dim, infos[0].esm_parameters, min(info.batch_tokens for info in infos),
                             seconds)

    def close(self) -> None:
        """Stop this run's actors now rather than when Ray collects them (frees their GPUs at once)."""
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []


def _gpu_count(gpus: str) -> int:
    if not gpus.strip().isdigit() or int(gpus) < 1:
        raise SetupError(f"--gpus {gpus!r} with --engine ray: use all or a number (Ray places the actors)")
    return int(gpus)


class BlockActor:
    """A Ray actor: the three models on one device, running the blocks the driver sends."""

    def __init__(self, paths: dict[str, Path], device_type: str, dtype: torch.dtype):
        import ray

        # Ray makes the actor's GPU the only visible one, so it is always cuda:0 here
        device = torch.device("cuda", 0) if device_type == "cuda" else torch.device("cpu")
        node = ray.util.get_node_ip_address()
        self.name = f"{node} cpu" if device_type == "cpu" else f"{node} GPU {ray.get_gpu_ids()[0]}"
        self.error: str | None = None
        try:
            encoders, _ = load_encoders(paths, device, dtype)
        except VirnucproError as error:  # reported by describe() as one line, not as a dead actor
            self.error = str(error)
            return
        if device.type == "cuda":
            self.name += f": {torch.cuda.get_device_name(device)}"
        self.worker = DeviceWorker(encoders)

    def describe(self, batch_tokens: int | None) -> ActorInfo:
        if self.error is not None:
            return ActorInfo(self.name, self.error)
        encoders = self.worker.encoders
        return ActorInfo(self.name, None, encoders.dnabert_dim, encoders.esm_parameters,
                         resolve_batch_tokens(batch_tokens, self.worker.device))

    def run_block(self, block: WorkBlock, want_features: bool) -> BlockOutput:
        return self.worker.run_block(_with_token_arrays(block), want_features).detached()


class RayWorker:
    """The driver's side of an actor: sends a block to it and blocks until it is done (the wait
    releases the GIL, so the other workers' threads carry on)."""

    def __init__(self, ray, actor):
        self._ray = ray
        self.actor = actor

    def submit(self, block: WorkBlock, want_features: bool):
        return self.actor.run_block.remote(_slim(block), want_features)

    def run_block(self, block: WorkBlock, want_features: bool = False) -> BlockOutput:
        return replace(self._ray.get(self.submit(block, want_features)), block=block)


_NO_FRAMES = np.zeros(0, dtype=np.int64)


def _slim(block: WorkBlock) -> WorkBlock:
    """Only what the actor needs: packed tokens and row maps (records, chunks and frame ids stay here,
    and each batch's per-sequence arrays are rebuilt from the packed tokens on the actor)."""
    return replace(block, records=[], table=None, frame_ids=[], frame_to_unique=_NO_FRAMES,
                   dnabert_batches=[TokenBatch(b.rows, [], b.packed) for b in block.dnabert_batches],
                   esm_batches=[TokenBatch(b.rows, [], b.packed) for b in block.esm_batches])


def _with_token_arrays(block: WorkBlock) -> WorkBlock:
    """The block as the worker expects it: per-sequence token arrays (views into the packed ids, to
    re-pack halves after an OOM) and writable index arrays (Ray hands out read-only numpy arrays)."""
    def restore(batch: TokenBatch) -> TokenBatch:
        arrays = np.split(batch.packed.ids.numpy(), batch.packed.cu_seqlens.numpy()[1:-1])
        return TokenBatch(batch.rows.copy(), arrays, batch.packed)

    return replace(block, unique_nucleotide=block.unique_nucleotide.copy(),
                   unique_protein=block.unique_protein.copy(),
                   dnabert_batches=[restore(b) for b in block.dnabert_batches],
                   esm_batches=[restore(b) for b in block.esm_batches])
