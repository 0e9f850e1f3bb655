"""Records -> chunks with their kept frames (the `frames` contract in docs/design.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from virnucpro.frames.bounds import chunk_bounds
from virnucpro.frames.translate import (
    COMPLEMENT,
    STRAND_FRAMES,
    UPPER,
    base_codes,
    translate_block,
)
from virnucpro.io.reader import Record


@dataclass(slots=True)
class Frame:
    """A kept reading frame: `nucleotide` is the upper-case 3p+1 slice, `protein` its translation."""

    frame_id: str
    chunk_id: str
    strand_frame: str
    nucleotide: str
    protein: str


@dataclass(slots=True)
class Chunk:
    """A piece [start, end) of a record (original case) and its kept frames in F1..R3 order."""

    chunk_id: str
    record_id: str
    start: int
    end: int
    sequence: str
    frames: list[Frame]


def chunk_record(record: Record, chunk_size: int, mode: str = "even") -> list[Chunk]:
    """Chunks of one record with kept frames filled (a thin wrapper over `chunk_records`)."""
    return chunk_records([record], chunk_size, mode)[0]


def chunk_records(records: Sequence[Record], chunk_size: int, mode: str = "even") -> list[list[Chunk]]:
    """Chunks of each record, translated together: one numpy pass per distinct chunk length.

    Batching many records is what makes this fast; an empty record gets no chunks.
    """
    return chunk_table(records, chunk_size, mode).to_chunks()


_STRAND_NAMES = np.array(STRAND_FRAMES, dtype=object)


@dataclass(slots=True)
class ChunkTable:
    """A batch's chunks and kept frames as columns, what `chunk_records` turns into objects.

    Chunks are in input order, frames by chunk and F1..R3 within a chunk (the output order).
    Writers that only need text use the columns directly: no object per chunk or frame.
    """

    record_ids: list[str]  # per chunk
    chunk_counts: list[int]  # per record
    chunk_ids: list[str]
    starts: np.ndarray
    ends: np.ndarray
    sequences: list[str]
    frame_chunks: np.ndarray  # chunk index of each frame
    frame_strands: np.ndarray  # index into STRAND_FRAMES
    nucleotides: list[str]
    proteins: list[str]

    def frame_labels(self, chunk_labels: list[str]) -> list[str]:
        """Each frame's chunk label followed by its strand frame (chunk IDs give frame IDs)."""
        return (np.array(chunk_labels, dtype=object)[self.frame_chunks] + _STRAND_NAMES[self.frame_strands]).tolist()

    def to_chunks(self) -> list[list[Chunk]]:
        """The `Chunk` / `Frame` objects, per record."""
        frame_chunk_ids = np.array(self.chunk_ids, dtype=object)[self.frame_chunks].tolist()
        frames = list(map(Frame, self.frame_labels(self.chunk_ids), frame_chunk_ids,
                          _STRAND_NAMES[self.frame_strands].tolist(), self.nucleotides, self.proteins))
        chunks = list(map(Chunk, self.chunk_ids, self.record_ids, self.starts.tolist(), self.ends.tolist(),
                          self.sequences, self.per_chunk(frames)))
        return self.per_record(chunks)

    def per_chunk(self, frame_items: list) -> list[list]:
        """One item per kept frame -> one list per chunk (empty for a chunk with no kept frame)."""
        bounds = np.searchsorted(self.frame_chunks, np.arange(len(self.chunk_ids) + 1)).tolist()
        return [frame_items[a:b] for a, b in pairwise(bounds)]

    def per_record(self, chunk_items: list) -> list[list]:
        """One item per chunk -> one list per record."""
        if self.chunk_counts.count(1) == len(self.chunk_counts) == len(chunk_items):  # one chunk per record: reads
            return [[item] for item in chunk_items]
        offsets = np.cumsum([0, *self.chunk_counts]).tolist()
        return [chunk_items[a:b] for a, b in pairwise(offsets)]


def chunk_table(records: Sequence[Record], chunk_size: int, mode: str = "even") -> ChunkTable:
    """Chunks and kept frames of `records` as columns (see `ChunkTable`)."""
    sequences = [record.sequence for record in records]
    lengths = list(map(len, sequences))
    if lengths and min(lengths) > 0 and max(lengths) <= chunk_size:  # reads: one chunk each
        record_ids = [record.id for record in records]
        table = ChunkTable(record_ids, [1] * len(records), [rid + "_chunk_1" for rid in record_ids],
                           np.zeros(len(records), dtype=np.int64), np.array(lengths, dtype=np.int64),
                           sequences, _NO_FRAMES, _NO_FRAMES, [], [])
        record_index = np.arange(len(records))
    else:
        table, record_index = _cut(records, chunk_size, mode)
    if not table.chunk_ids:
        return table
    record_offsets = np.cumsum([0, *lengths[:-1]])
    return fill_frames(table, "".join(sequences), record_offsets[record_index] + table.starts)


def fill_frames(table: ChunkTable, text: str, text_starts: np.ndarray) -> ChunkTable:
    """Fill `table`'s frame columns: chunk i is text[text_starts[i]: + its length]. A chunk's
    frames depend only on its own bases, so any text holding the chunks gives the same frames."""
    strands = _Strands(text)
    starts = text_starts
    groups = [_group_frames(strands, starts[members], length, members)
              for length, members in _groups_by_length(table.ends - table.starts)]
    if len(groups) == 1:
        table.frame_chunks, table.frame_strands, table.nucleotides, table.proteins = groups[0]
        return table
    frame_chunks = np.concatenate([group[0] for group in groups])
    order = np.argsort(frame_chunks * len(STRAND_FRAMES) + np.concatenate([group[1] for group in groups]))
    table.frame_chunks = frame_chunks[order]
    table.frame_strands = np.concatenate([group[1] for group in groups])[order]
    table.nucleotides = np.array([n for group in groups for n in group[2]], dtype=object)[order].tolist()
    table.proteins = np.array([p for group in groups for p in group[3]], dtype=object)[order].tolist()
    return table


_NO_FRAMES = np.empty(0, dtype=np.int64)


class _Strands:
    """A batch's bases, upper-cased (U -> T): forward then reverse-complement text, base codes."""

    def __init__(self, sequences: str):
        raw = sequences.encode("ascii")
        bases = np.frombuffer(raw, dtype=np.uint8)
        upper = raw.translate(UPPER) if b"U" in raw or (bases >= ord("a")).any() else raw
        self.size = len(upper)
        self.text = (upper + upper[::-1].translate(COMPLEMENT)).decode("ascii")
        self.codes = base_codes(bases)

    def code_block(self, starts: np.ndarray, length: int) -> np.ndarray:
        """(len(starts), length) codes of the chunks starting at `starts`."""
        if len(starts) == 1 or np.all(np.diff(starts) == length):  # back to back: a free view
            return self.codes[starts[0] : starts[0] + length * len(starts)].reshape(len(starts), length)
        return sliding_window_view(self.codes, length)[starts]


def _cut(records: Sequence[Record], chunk_size: int, mode: str) -> tuple[ChunkTable, np.ndarray]:
    """Frameless chunk columns for records of any length, and each chunk's record index."""
    record_ids, chunk_counts, chunk_ids, starts, ends, sequences, record_index = [], [], [], [], [], [], []
    for index, record in enumerate(records):
        sequence = record.sequence
        bounds = chunk_bounds(len(sequence), chunk_size, mode)
        chunk_counts.append(len(bounds))
        for number, (start, end) in enumerate(bounds, 1):
            record_ids.append(record.id)
            chunk_ids.append(f"{record.id}_chunk_{number}")
            starts.append(start)
            ends.append(end)
            sequences.append(sequence[start:end])
            record_index.append(index)
    table = ChunkTable(record_ids, chunk_counts, chunk_ids, np.array(starts, dtype=np.int64),
                       np.array(ends, dtype=np.int64), sequences, _NO_FRAMES, _NO_FRAMES, [], [])
    return table, np.array(record_index, dtype=np.int64)


def _groups_by_length(lengths: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(length, indices) for each distinct chunk length, indices ascending."""
    order = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[order]
    cuts = np.flatnonzero(np.diff(sorted_lengths)) + 1
    return [(int(group_lengths[0]), group) for group_lengths, group in
            zip(np.split(sorted_lengths, cuts), np.split(order, cuts))]


def _group_frames(strands: _Strands, starts: np.ndarray, length: int, members: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Kept frames of equal-length chunks (`members`, ascending) in output order: chunk index,
    strand frame, nucleotide and protein of each."""
    translated = translate_block(strands.code_block(starts, length))
    rows, frames = np.nonzero(translated.kept)  # row-major: by chunk, then F1..R3
    codons = np.array(translated.codons)[frames]
    first = np.array(translated.starts)[frames] + rows * codons
    proteins = [translated.letters[a:b] for a, b in zip(first.tolist(), (first + codons).tolist())]
    if translated.may_drop:
        proteins = [protein.replace("\0", "") for protein in proteins]
    strand, offset = np.divmod(frames, 3)
    # where each chunk begins on its strand: forward at its start, reverse-complement text after
    origins = np.where(strand == 0, starts[rows], 2 * strands.size - starts[rows] - length) + offset
    # the original's 3p+1 slice, clamped at the chunk end
    ends = origins + np.minimum(1 + 3 * translated.residues[rows, frames], length - offset)
    text = strands.text
    nucleotides = [text[a:b] for a, b in zip(origins.tolist(), ends.tolist())]
    return members[rows], frames, nucleotides, proteins
