"""Classifier results per frame, chunk and sequence, and the rules that turn them into calls.

Chunk rule: virus score = max P(virus) / (max P(virus) + max P(others)) over the chunk's kept
frames; the chunk is viral when score >= threshold. At the default threshold 0.5 this is exactly
the original's `max(score2) >= max(score1)` (ties -> viral): the scores are float32 values, so
when max P(virus) < max P(others) they differ by at least one float32 ulp and the float64 ratio
stays below 0.5.

Sequence rule: `too_short` when the sequence is shorter than --min-length (default 0: none; such
a sequence is not scored), `no_call` when no chunk has a kept frame (no stop-free frame: nothing
was scored), `virus` when viral chunks / scored chunks >= --viral-fraction (default 0.5, a
majority vote with ties viral), `others` otherwise.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from functools import cached_property

DEFAULT_THRESHOLD = 0.5
CALLS = ("virus", "others", "no_call", "too_short")
# Sequences whose viral chunk fraction reaches this are called `virus` (a majority vote, ties viral).
VIRAL_FRACTION_TO_CALL = 0.5


@dataclass(frozen=True)
class FrameScore:
    """Softmax output for one kept frame; both values are float32 numbers."""

    frame_id: str
    p_others: float
    p_virus: float

    @property
    def prediction(self) -> str:
        """The original's label: torch.max picks the first maximum, so an exact tie is `others`."""
        return "virus" if self.p_virus > self.p_others else "others"


@dataclass(frozen=True)
class ChunkResult:
    """One chunk of a sequence, 0-based half-open [start, end); `frames` empty when none was kept."""

    chunk_id: str
    start: int
    end: int
    frames: list[FrameScore] = field(default_factory=list)

    @property
    def scored(self) -> bool:
        return bool(self.frames)

    @cached_property
    def max_p_others(self) -> float:
        return max(frame.p_others for frame in self.frames)

    @cached_property
    def max_p_virus(self) -> float:
        return max(frame.p_virus for frame in self.frames)

    def virus_score(self) -> float | None:
        """The chunk virus score in [0, 1], or None for a chunk with no kept frame."""
        return self._virus_score

    @cached_property
    def _virus_score(self) -> float | None:
        """Computed once per chunk: its chunks.tsv row, its sequence's tally and (for a long record)
        the region track all ask for it."""
        if not self.frames:
            return None
        top_virus = float(self.max_p_virus)
        return top_virus / (top_virus + float(self.max_p_others))

    def original_is_virus(self) -> bool:
        """The original's per-chunk call (prediction_results_highestscore.csv), threshold-free."""
        return self.max_p_virus >= self.max_p_others

    def is_viral(self, threshold: float) -> bool | None:
        score = self.virus_score()
        return None if score is None else score >= threshold


@dataclass(frozen=True)
class SequenceCall:
    """Per-sequence summary of its chunk calls; the statistics are None when nothing was scored."""

    n_chunks: int
    n_chunks_scored: int
    n_viral_chunks: int
    viral_fraction: float | None
    max_virus_score: float | None
    mean_virus_score: float | None
    call: str


@dataclass(frozen=True)
class SequenceResult:
    """All chunks of one input record, in chunk order; `sequence` (and the header's `description`)
    are needed only for viral.fa and regions.fa."""

    record_id: str
    length: int
    chunks: list[ChunkResult]
    sequence: str | None = None
    description: str | None = None

    def summarize(self, threshold: float = DEFAULT_THRESHOLD, viral_fraction: float = VIRAL_FRACTION_TO_CALL,
                  min_length: int = 0) -> SequenceCall:
        tally = SequenceTally(threshold, viral_fraction)
        tally.add(self.chunks)
        return tally.call(too_short=self.length < min_length)


class SequenceTally:
    """A sequence's call built up chunk by chunk, so a long record whose chunks arrive in several
    blocks gets the same row as one summarized at once (one code path for both).

    The mean is the running sum of the chunk scores in chunk order, added exactly as the builtin
    `sum()` adds floats (plain on Python < 3.12, Neumaier-compensated from 3.12), so the printed
    statistics are those of `sum(scores) / len(scores)`, without keeping the scores.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, viral_fraction: float = VIRAL_FRACTION_TO_CALL):
        self.threshold = threshold
        self.viral_fraction = viral_fraction
        self.n_chunks = 0
        self.n_scored = 0
        self.n_viral = 0
        self.max_score: float | None = None
        self._total = 0.0
        self._compensation = 0.0

    def add(self, chunks: list[ChunkResult]) -> None:
        self.n_chunks += len(chunks)
        for chunk in chunks:
            score = chunk.virus_score()
            if score is None:
                continue
            self.n_scored += 1
            self.n_viral += score >= self.threshold
            self.max_score = score if self.max_score is None else max(self.max_score, score)
            self._add_to_sum(score)

    def _add_to_sum(self, value: float) -> None:
        total = self._total + value
        if _COMPENSATED_SUM:
            if abs(self._total) >= abs(value):
                self._compensation += (self._total - total) + value
            else:
                self._compensation += (value - total) + self._total
        self._total = total

    def _sum(self) -> float:
        compensation = self._compensation
        return self._total + compensation if compensation and math.isfinite(compensation) else self._total

    def call(self, too_short: bool = False) -> SequenceCall:
        """The sequence's row; a too-short sequence keeps its chunk count but is not scored."""
        if too_short:
            return SequenceCall(self.n_chunks, 0, 0, None, None, None, "too_short")
        if not self.n_scored:
            return SequenceCall(self.n_chunks, 0, 0, None, None, None, "no_call")
        fraction = self.n_viral / self.n_scored
        verdict = "virus" if fraction >= self.viral_fraction else "others"
        return SequenceCall(self.n_chunks, self.n_scored, self.n_viral, fraction, self.max_score,
                            self._sum() / self.n_scored, verdict)


_COMPENSATED_SUM = sys.version_info >= (3, 12)  # CPython 3.12 made sum() of floats compensated
