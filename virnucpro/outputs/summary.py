"""What a report shows, gathered in two streaming passes so that huge runs fit in memory.

Pass 1 (sequences.tsv): call counts, the top hits, which sequences get a score track, the
histogram of viral fractions. Pass 2 (chunks.tsv): the histogram of chunk scores and the chunks
of the tracked sequences only.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field

from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.tables import ChunkRow, SequenceRow, read_chunks, read_sequences

HISTOGRAM_BINS = 50
TOP_HITS = 25


@dataclass
class Histogram:
    """Counts of values in [0, 1] in equal bins (1.0 falls in the last bin)."""

    counts: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)

    def add(self, value: float) -> None:
        self.counts[min(int(value * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1


@dataclass
class Track:
    sequence: SequenceRow
    chunks: list[ChunkRow] = field(default_factory=list)


@dataclass
class ReportData:
    threshold: float
    calls: Counter[str] = field(default_factory=Counter)
    n_chunks: int = 0
    n_chunks_scored: int = 0
    n_chunks_viral: int = 0
    n_frames: int = 0
    chunk_scores: Histogram = field(default_factory=Histogram)
    viral_fractions: Histogram = field(default_factory=Histogram)
    top_hits: list[SequenceRow] = field(default_factory=list)
    tracks: list[Track] = field(default_factory=list)


def gather(paths: OutputPaths, threshold: float, max_tracks: int) -> ReportData:
    data = ReportData(threshold)
    hits: list[tuple] = []
    tracked: list[tuple] = []
    for index, row in enumerate(read_sequences(paths.sequences)):
        data.calls[row.call] += 1
        if row.viral_fraction is not None:
            data.viral_fractions.add(row.viral_fraction)
        if row.call == "virus":
            mean = -1.0 if row.mean_virus_score is None else row.mean_virus_score  # None does not compare
            _keep_largest(hits, (row.n_viral_chunks, mean, row.length, -index), row, TOP_HITS)
        if row.n_chunks_scored > 1:
            _keep_largest(tracked, (row.n_chunks, row.length, -index), row, max_tracks)
    data.top_hits = _descending(hits)
    data.tracks = [Track(row) for row in _descending(tracked)]
    _add_chunks(data, paths)
    return data


def _add_chunks(data: ReportData, paths: OutputPaths) -> None:
    by_sequence = {track.sequence.sequence_id: track for track in data.tracks}
    for chunk in read_chunks(paths.chunks):
        data.n_chunks += 1
        data.n_frames += chunk.n_frames
        if chunk.virus_score is not None:
            data.n_chunks_scored += 1
            data.n_chunks_viral += chunk.virus_score >= data.threshold
            data.chunk_scores.add(chunk.virus_score)
        track = by_sequence.get(chunk.sequence_id)
        if track is not None:
            track.chunks.append(chunk)


def _keep_largest(heap: list[tuple], key: tuple, row: SequenceRow, limit: int) -> None:
    """Keep the `limit` rows with the largest keys (a min-heap of (key, row))."""
    if limit <= 0:
        return
    if len(heap) < limit:
        heapq.heappush(heap, (key, row))
    elif key > heap[0][0]:
        heapq.heapreplace(heap, (key, row))


def _descending(heap: list[tuple]) -> list[SequenceRow]:
    return [row for _, row in sorted(heap, key=lambda item: item[0], reverse=True)]
