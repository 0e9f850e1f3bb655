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
        if self.length < min_length:
            return SequenceCall(len(self.chunks), 0, 0, None, None, None, "too_short")
        scores = [score for score in (chunk.virus_score() for chunk in self.chunks) if score is not None]
        n_viral = sum(score >= threshold for score in scores)
        if not scores:
            return SequenceCall(len(self.chunks), 0, 0, None, None, None, "no_call")
        fraction = n_viral / len(scores)
        call = "virus" if fraction >= viral_fraction else "others"
        return SequenceCall(
            len(self.chunks), len(scores), n_viral, fraction, max(scores), sum(scores) / len(scores), call
        )
