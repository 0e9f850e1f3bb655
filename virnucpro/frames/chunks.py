"""Records -> chunks with their kept frames (the `frames` contract in docs/design.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from virnucpro.frames.chunking import chunk_bounds
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
    per_record, chunks, record_index = _cut(records, chunk_size, mode)
    if not chunks:
        return per_record
    strands = _Strands("".join([r.sequence for r in records]))
    record_offsets = np.cumsum([0] + [len(r.sequence) for r in records[:-1]])
    starts = record_offsets[record_index] + np.array([c.start for c in chunks], dtype=np.int64)
    lengths = np.array([c.end - c.start for c in chunks], dtype=np.int64)
    for length, members in _groups_by_length(lengths):
        _attach_frames(strands, starts[members], int(length), [chunks[i] for i in members.tolist()])
    return per_record


class _Strands:
    """A batch's bases, upper-cased (U -> T), as text, reverse-complement text and base codes."""

    def __init__(self, sequences: str):
        raw = sequences.encode("ascii")
        bases = np.frombuffer(raw, dtype=np.uint8)
        upper = raw.translate(UPPER) if b"U" in raw or (bases >= ord("a")).any() else raw
        self.size = len(upper)
        self.forward = upper.decode("ascii")
        self.reverse = upper[::-1].translate(COMPLEMENT).decode("ascii")
        self.codes = base_codes(bases)

    def code_block(self, starts: np.ndarray, length: int) -> np.ndarray:
        """(len(starts), length) codes of the chunks starting at `starts`."""
        if len(starts) == 1 or np.all(np.diff(starts) == length):  # back to back: a free view
            return self.codes[starts[0] : starts[0] + length * len(starts)].reshape(len(starts), length)
        return sliding_window_view(self.codes, length)[starts]


def _cut(records: Sequence[Record], chunk_size: int, mode: str) -> tuple[list[list[Chunk]], list[Chunk], list[int]]:
    """Frameless chunks per record, all chunks in input order, and each chunk's record index."""
    per_record: list[list[Chunk]] = []
    chunks: list[Chunk] = []
    record_index: list[int] = []
    for index, record in enumerate(records):
        sequence = record.sequence
        if 0 < len(sequence) <= chunk_size:  # the common case for reads: skip the bounds call
            chunk = Chunk(record.id + "_chunk_1", record.id, 0, len(sequence), sequence, [])
            per_record.append([chunk])
            chunks.append(chunk)
            record_index.append(index)
            continue
        record_chunks = [Chunk(f"{record.id}_chunk_{number}", record.id, start, end, sequence[start:end], [])
                         for number, (start, end) in enumerate(chunk_bounds(len(sequence), chunk_size, mode), 1)]
        per_record.append(record_chunks)
        chunks += record_chunks
        record_index += [index] * len(record_chunks)
    return per_record, chunks, record_index


def _groups_by_length(lengths: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(length, indices) for each distinct chunk length, indices ascending."""
    order = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[order]
    cuts = np.flatnonzero(np.diff(sorted_lengths)) + 1
    return [(group_lengths[0], group) for group_lengths, group in
            zip(np.split(sorted_lengths, cuts), np.split(order, cuts))]


def _attach_frames(strands: _Strands, starts: np.ndarray, length: int, chunks: list[Chunk]) -> None:
    """Translate equal-length chunks as one block and append their kept frames in F1..R3 order."""
    translated = translate_block(strands.code_block(starts, length))
    origins = (starts, strands.size - starts - length)  # where each chunk begins on each strand
    texts = (strands.forward, strands.reverse)
    for frame, strand_frame in enumerate(STRAND_FRAMES):  # frame by frame keeps F1..R3 order per chunk
        strand, offset = divmod(frame, 3)
        rows = np.flatnonzero(translated.kept[:, frame])
        letters, width = translated.letters[frame], translated.codons[frame]
        proteins = [letters[row * width : (row + 1) * width] for row in rows.tolist()]
        if translated.may_drop:
            proteins = [protein.replace("\0", "") for protein in proteins]
        text = texts[strand]
        nucleotides = [  # the original's 3p+1 slice, clamped at the chunk end
            text[origin : origin + min(1 + 3 * len(protein), length - offset)]
            for origin, protein in zip((origins[strand][rows] + offset).tolist(), proteins)
        ]
        for row, nucleotide, protein in zip(rows.tolist(), nucleotides, proteins):
            chunk = chunks[row]
            chunk.frames.append(Frame(chunk.chunk_id + strand_frame, chunk.chunk_id, strand_frame, nucleotide, protein))
