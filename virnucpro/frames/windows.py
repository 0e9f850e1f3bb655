"""Chunk tables of a spooled (long) record, one window of consecutive chunks at a time.

`even` and `legacy` chunking both need the record length L before the first boundary is known;
a spooled record's length is known once it is spooled, so its boundaries are computed exactly as
for a record in memory (`chunk_bounds(L, ...)`). They are then taken `chunks_per_window` at a time:
each window reads only the bases from its first chunk's start to its last chunk's end from the
spool, so memory is bounded by the window (about the block size), not by L. A window's table has
the same chunk IDs (`_chunk_N`, numbered over the whole record), boundaries, sequences and frames
as the rows of `chunk_table([record])` it replaces (tests/io/test_long_records.py checks this).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from virnucpro.errors import InputFormatError
from virnucpro.frames.bounds import chunk_bounds_range, chunk_count
from virnucpro.frames.chunks import _NO_FRAMES, ChunkTable, chunk_table, fill_frames
from virnucpro.io.reader import Record
from virnucpro.io.record_batches import batch_records

LONG_RECORD_BASES = 1 << 20  # a longer record is chunked a window at a time, in groups of its own


@dataclass(frozen=True)
class Window:
    """Chunks [first, stop) of a record (0-based chunk numbers) and whether they end the record."""

    first: int
    stop: int
    last: bool
    chunks: int = 0  # in the whole record: the progress bar credits a piece its share of the record


@dataclass(frozen=True)
class RecordWindow:
    """One window of a long record: the record, which chunks, and their bounds."""

    record: Record
    window: Window
    bounds: list[tuple[int, int]]

    def table(self) -> ChunkTable:
        return window_table(self.record.id, self.record.sequence, self.bounds, self.window.first)


def record_groups(records: Iterable[Record], chunk_size: int, mode: str, max_bases: int, max_records: int,
                  long_bases: int | None = None, pairs: bool = False,
                  limits: Callable[[int], tuple[int, int]] | None = None) -> Iterator[list[Record] | RecordWindow]:
    """The record stream as units of chunking work, in order: lists of consecutive records
    (`batch_records`), and a `RecordWindow` per `max_bases` bases of chunks of each record longer
    than `long_bases`. The units depend only on record lengths and the settings, never on whether
    a record was spooled, so the work (and its batches) is the same however it was read.
    `long_bases` defaults to LONG_RECORD_BASES. `limits(n)` -> (max_bases, max_records) of unit n
    (a long record, all its windows, is one unit), for a ramp of smaller first units; default: the
    same limits for every unit.

    With `pairs` (mates of paired reads, one after the other) every list holds whole pairs, so a
    pair's row can be written with its block; a mate longer than `long_bases` is refused (it would
    need blocks of its own, splitting its pair)."""
    long_bases = LONG_RECORD_BASES if long_bases is None else long_bases
    limits = limits or (lambda unit: (max_bases, max_records))
    if pairs:
        yield from _cut(map(_short_mate(long_bases), records), limits, 0, multiple=2)
        return
    unit = 0
    for long, run in groupby(records, _long_record_test(long_bases)):
        if not long:
            unit = yield from _cut(run, limits, unit)
            continue
        for record in run:
            per_window = max(1, limits(unit)[0] // chunk_size)
            for window, bounds in windows(len(record.sequence), chunk_size, mode, per_window):
                yield RecordWindow(record, window, bounds)
            unit += 1


def _cut(records: Iterable[Record], limits: Callable[[int], tuple[int, int]], unit: int, multiple: int = 1,
         ) -> Generator[list[Record], None, int]:
    """Lists of records cut with the limits of units `unit`, `unit + 1`, ...; returns the next unit.
    batch_records resets after each list, so one call per list cuts exactly as one call for all."""
    records = iter(records)
    while batch := next(batch_records(records, *limits(unit), multiple=multiple), None):
        yield batch
        unit += 1
    return unit


def unit_table(unit: list[Record] | RecordWindow, chunk_size: int, mode: str) -> ChunkTable:
    """The chunk table of one unit of `record_groups`."""
    return unit.table() if isinstance(unit, RecordWindow) else chunk_table(unit, chunk_size, mode)


def _short_mate(long_bases: int):
    """The mate, in memory; a mate too long for a block shared with its pair is an input error."""
    is_long = _long_record_test(long_bases)

    def checked(record: Record) -> Record:
        if is_long(record):
            raise InputFormatError(f"mate {record.id!r} has {len(record.sequence):,} bases: paired reads must be"
                                   f" at most {long_bases:,} bases; score long sequences without --paired/--interleaved")
        return record
    return checked


def _long_record_test(long_bases: int):
    """The grouping key: whether a record is long; a spooled record that is not (possible only
    with a spool threshold below `long_bases`) is read into memory here, within that bound."""
    def is_long(record: Record) -> bool:
        sequence = record.sequence
        if len(sequence) > long_bases:
            return True
        if type(sequence) is not str:
            record.sequence = sequence[0 : len(sequence)]
        return False
    return is_long


def windows(length: int, chunk_size: int, mode: str, chunks_per_window: int) -> Iterator[tuple[Window, list]]:
    """Each window and its chunk bounds, in order (a record of length 0 has none); only one
    window's bounds exist at a time."""
    count = chunk_count(length, chunk_size)
    step = max(1, chunks_per_window)
    for first in range(0, count, step):
        stop = min(first + step, count)
        yield Window(first, stop, stop == count, count), chunk_bounds_range(length, chunk_size, mode, first, stop)


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
