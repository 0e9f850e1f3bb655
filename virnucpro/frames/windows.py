"""Chunk tables of a spooled (long) record, one window of consecutive chunks at a time.

`even` and `legacy` chunking both need the record length L before the first boundary is known;
a spooled record's length is known once it is spooled, so its boundaries are computed exactly as
for a record in memory (`chunk_bounds(L, ...)`). They are then taken `chunks_per_window` at a time:
each window reads only the bases from its first chunk's start to its last chunk's end from the
spool, so memory is bounded by the window (about the block size), not by L. A window's table has
the same chunk IDs (`_chunk_N`, numbered over the whole record), boundaries, sequences and frames
as the rows of `chunk_table([record])` it replaces (tests/test_long_records.py checks this).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from virnucpro.frames.chunking import chunk_bounds_range, chunk_count
from virnucpro.frames.chunks import _NO_FRAMES, ChunkTable, fill_frames


@dataclass(frozen=True)
class Window:
    """Chunks [first, stop) of a record (0-based chunk numbers) and whether they end the record."""

    first: int
    stop: int
    last: bool


def windows(length: int, chunk_size: int, mode: str, chunks_per_window: int) -> Iterator[tuple[Window, list]]:
    """Each window and its chunk bounds, in order (a record of length 0 has none); only one
    window's bounds exist at a time."""
    count = chunk_count(length, chunk_size)
    step = max(1, chunks_per_window)
    for first in range(0, count, step):
        stop = min(first + step, count)
        yield Window(first, stop, stop == count), chunk_bounds_range(length, chunk_size, mode, first, stop)


def window_table(record_id: str, sequence, window_bounds: list[tuple[int, int]], first: int) -> ChunkTable:
    """The chunk table of chunks `window_bounds` (numbered from `first` + 1) of a record whose
    `sequence` is a str or a `SpooledSequence` (both slice to str)."""
    begin = window_bounds[0][0]
    text = sequence[begin : max(end for _, end in window_bounds)]
    starts = np.array([start for start, _ in window_bounds], dtype=np.int64)
    ends = np.array([end for _, end in window_bounds], dtype=np.int64)
    count = len(window_bounds)
    table = ChunkTable(
        [record_id] * count, [count], [f"{record_id}_chunk_{number}" for number in range(first + 1, first + count + 1)],
        starts, ends, [text[start - begin : end - begin] for start, end in window_bounds],
        _NO_FRAMES, _NO_FRAMES, [], [],
    )
    return fill_frames(table, text, starts - begin)
