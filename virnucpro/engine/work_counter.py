"""Work done inside blocks, batch by batch: the device workers bump it, the progress bar reads it.

A block is written only when all its batches are done, so a bar fed by written blocks alone sits
still for a whole block (the first one included). Each batch instead credits its share of the
block's records and frames (by tokens, ESM-2 and DNABERT-S together). On a GPU a batch counts once
the device has finished it (a CUDA event per batch, polled by the reader), not when the host issued
it, so the bar does not run ahead of the work. A piece of a long record credits its chunks' share of
the record (record_share). Thread-safe; the writer forgets a block once it is
written, so the bar shows written records plus the done part of the blocks still in flight.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

from virnucpro.engine.work import WorkBlock


@dataclass
class _Credit:
    key: int
    records: float
    frames: float
    esm_tokens: int
    done: torch.cuda.Event | None


class WorkCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[_Credit] = deque()  # issued on a GPU, not known to be finished yet
        self._in_flight: dict[int, float] = {}  # block -> records credited, until written
        self.frames = 0.0  # this session, batch by batch
        self.esm_tokens = 0
        self.batches = 0
        self.on_credit: Callable[[], None] | None = None  # called after a batch counted at once (CPU)

    def batch_done(self, block: WorkBlock, tokens: int, esm_tokens: int, on_gpu: bool) -> None:
        """One batch of `block` (of `tokens` tokens) issued by this thread; on a GPU it counts
        once the device has finished it."""
        share = tokens / max(1, block.esm_tokens + block.dnabert_tokens)
        event = None
        if on_gpu:
            event = torch.cuda.Event()
            event.record()
        credit = _Credit(block_key(block), record_share(block) * share, block.num_frames * share, esm_tokens, event)
        with self._lock:
            self._pending.append(credit)
            if event is None:
                self._settle()
        if event is None and self.on_credit is not None:  # a CPU batch takes milliseconds or more:
            self.on_credit()  # redraw at each one (a GPU's are counted when the bar polls)

    def block_written(self, block: WorkBlock) -> None:
        """The block's records now count as written: forget its credit."""
        with self._lock:
            self._settle()
            self._in_flight.pop(block_key(block), None)
            self._pending = deque(c for c in self._pending if c.key != block_key(block))

    def records_in_flight(self) -> float:
        """Record-equivalents done in blocks not yet written."""
        with self._lock:
            self._settle()
            return sum(self._in_flight.values())

    def _settle(self) -> None:
        """Credit, in order, the pending batches that have finished (the caller holds the lock)."""
        while self._pending and (self._pending[0].done is None or self._pending[0].done.query()):
            credit = self._pending.popleft()
            self._in_flight[credit.key] = self._in_flight.get(credit.key, 0.0) + credit.records
            self.frames += credit.frames
            self.esm_tokens += credit.esm_tokens
            self.batches += 1


def record_share(block: WorkBlock) -> float:
    """Record-equivalents of a block's work: its records, or for a piece of a long record (> 1 Mi
    bases, several blocks) its chunks' share of the record, so the bar moves piece by piece."""
    piece = block.piece
    if piece is None:
        return block.records_completed
    return (piece.stop - piece.first) / max(1, piece.chunks, piece.stop)


def block_key(block: WorkBlock) -> int:
    """A block's identity while it is in flight: the object itself (workers and writer share it).
    Not its index: a study numbers each sample's blocks from 0, and at a sample boundary blocks of
    two samples with the same index (and piece) are in flight together."""
    return id(block)
