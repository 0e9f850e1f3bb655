"""A device worker: runs a block's ESM-2 and DNABERT-S batches, joins the features per frame and
classifies them on the device, without ever waiting for the device itself.

Results are copied into pinned host buffers asynchronously and an event marks when they are
ready, so the thread that feeds the GPU can enqueue the next block while the writer waits for this
one. CUDA events around each stage give device time per stage (the GPU busy fraction).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from virnucpro.engine.encoders import Encoders
from virnucpro.engine.oom import run_with_oom_split
from virnucpro.engine.staging import PinnedStaging
from virnucpro.engine.threads import stop_point
from virnucpro.engine.work import TokenBatch, WorkBlock
from virnucpro.engine.work_counter import WorkCounter
from virnucpro.tokenize.packing import pack

# ESM-2 first: the writer formats block k's results (Python, holding the GIL) right when the GPU
# finishes it, i.e. while this thread issues the start of block k+1. ESM-2's long kernels keep the
# GPU fed through that contention; DNABERT-S's short ones (issued first, they ran 2x slower on the
# device than alone) starved it. Its kernels are issued later, while the writer is idle.
STAGES = ("esm2", "dnabert", "classifier")


class StageClock:
    """Marks stage boundaries: CUDA events on a GPU (read later), wall time on the CPU; and, on
    both, the host time this thread spent issuing each stage (on a GPU: launching its kernels)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.marks: list[object] = []
        self.host_marks: list[float] = []

    def mark(self) -> None:
        self.host_marks.append(time.perf_counter())
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(self.host_marks[-1])

    def host_seconds(self) -> list[float]:
        return [b - a for a, b in zip(self.host_marks, self.host_marks[1:])]

    def seconds(self) -> list[float]:
        """Duration of each interval between consecutive marks (call after the work is done)."""
        if self.cuda:
            return [a.elapsed_time(b) / 1000 for a, b in zip(self.marks, self.marks[1:])]
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


class RecordedClock:
    """A StageClock already read: plain numbers, so a result can cross a process boundary (Ray)."""

    def __init__(self, seconds: list[float], host_seconds: list[float]):
        self._seconds, self._host_seconds = seconds, host_seconds

    def seconds(self) -> list[float]:
        return list(self._seconds)

    def host_seconds(self) -> list[float]:
        return list(self._host_seconds)


@dataclass
class BlockOutput:
    """Host-side results of one block, from any engine; valid after `wait()`."""

    block: WorkBlock | None  # None only while it travels back from a Ray actor (see `detached`)
    probabilities: torch.Tensor  # [n_unique, 2] float32
    features: torch.Tensor | None  # [n_unique, D_dnabert + D_esm] float32 when asked for
    clock: StageClock | RecordedClock
    ready: torch.cuda.Event | None
    splits: int = 0

    def wait(self) -> None:
        if self.ready is not None:
            self.ready.synchronize()

    def detached(self) -> BlockOutput:
        """Waited for, without the block and with its times read (CUDA events do not travel)."""
        self.wait()
        clock = RecordedClock(self.clock.seconds(), self.clock.host_seconds())
        return BlockOutput(None, self.probabilities, self.features, clock, None, self.splits)

    def stage_seconds(self) -> dict[str, float]:
        return dict(zip(STAGES, self.clock.seconds()))

    def host_stage_seconds(self) -> dict[str, float]:
        """Host time spent issuing each stage: close to the device time means the GPU waited on
        the host (launch-bound); far below it means the host was ahead, as it should be."""
        return dict(zip(STAGES, self.clock.host_seconds()))


class DeviceWorker:
    """Runs blocks on one device; the only place that launches model work."""

    def __init__(self, encoders: Encoders):
        self.encoders = encoders
        self.device = encoders.device
        self._splits = 0
        self._staging = PinnedStaging(self.device) if self.device.type == "cuda" else None
        self.counter: WorkCounter | None = None  # batch-by-batch progress, when someone watches

    @torch.inference_mode()
    def run_block(self, block: WorkBlock, want_features: bool = False) -> BlockOutput:
        enc, device = self.encoders, self.device
        self._enter_device()
        self._splits = 0
        clock = StageClock(device)
        clock.mark()
        esm = self._embed_table(enc.esm, block.esm_batches, block.num_proteins, enc.esm_dim, block)
        clock.mark()
        dnabert = self._embed_table(enc.dnabert, block.dnabert_batches, block.num_nucleotides, enc.dnabert_dim, block)
        clock.mark()
        nucleotide_rows = self._index_tensor(block.unique_nucleotide)
        protein_rows = self._index_tensor(block.unique_protein)
        features = torch.cat((dnabert[nucleotide_rows], esm[protein_rows]), dim=1)
        if enc.classifier is not None:
            probabilities = enc.classifier.probabilities(features).float()
        else:
            probabilities = features.new_empty((len(features), 0))
        clock.mark()
        host_probabilities = _to_host(probabilities)
        host_features = _to_host(features) if want_features else None
        return BlockOutput(block, host_probabilities, host_features, clock, self._done_event(), self._splits)

    @torch.inference_mode()
    def run_esm2_only(self, block: WorkBlock) -> torch.cuda.Event | None:
        """ESM-2 on a block exactly as `run_block` runs it, and nothing else (the benchmark's
        baseline); returns the event that marks the end of its work (None on the CPU)."""
        self._enter_device()
        self._embed_table(self.encoders.esm, block.esm_batches, block.num_proteins, self.encoders.esm_dim)
        return self._done_event()

    def _enter_device(self) -> None:
        """Per thread: kernels, events and streams of this GPU."""
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)

    def _done_event(self) -> torch.cuda.Event | None:
        if self.device.type != "cuda":
            return None
        ready = torch.cuda.Event()
        ready.record()
        return ready

    def _embed_table(self, model: torch.nn.Module, batches: list[TokenBatch], rows: int, dim: int,
                     block: WorkBlock | None = None) -> torch.Tensor:
        """[rows, dim] fp32 embeddings of every distinct input of one encoder in the block."""
        table = torch.empty(rows, dim, dtype=torch.float32, device=self.device)
        counter, is_esm = self.counter, model is self.encoders.esm
        for batch in batches:
            stop_point()  # a stopping run waits for one batch, not the whole block
            table[self._index_tensor(batch.rows)] = self._embed_batch(model, batch)
            if counter is not None and block is not None:
                counter.batch_done(block, batch.num_tokens, batch.num_tokens if is_esm else 0,
                                   self.device.type == "cuda")
        return table

    def _index_tensor(self, rows: np.ndarray) -> torch.Tensor:
        """Row indices on the device, copied without making this thread wait (see staging.py)."""
        tensor = torch.from_numpy(rows)
        return self._staging.to_device(tensor) if self._staging else tensor

    def _embed_batch(self, model: torch.nn.Module, batch: TokenBatch) -> torch.Tensor:
        """One batch; an out-of-memory error splits it in halves and retries (nothing dropped)."""
        everything = list(range(len(batch.token_arrays)))

        def run(items: list[int]) -> list[torch.Tensor]:
            packed = batch.packed if len(items) == len(everything) else pack([batch.token_arrays[i] for i in items])
            return [model.embed(self._staging.packed_to_device(packed) if self._staging else packed)]

        def count_split(_: int) -> None:
            self._splits += 1

        parts = run_with_oom_split(everything, run, on_split=count_split)
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def _to_host(tensor: torch.Tensor) -> torch.Tensor:
    """Asynchronous copy to (pinned) host memory; a no-op on the CPU."""
    if tensor.device.type == "cpu":
        return tensor
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    return host
