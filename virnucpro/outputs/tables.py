"""Streaming readers of chunks.tsv and sequences.tsv (for plots and reports of runs of any size)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from virnucpro.errors import VirnucproError
from virnucpro.outputs import formats
from virnucpro.outputs.results import CALLS, SequenceCall

Row = TypeVar("Row")


class ResultsFileError(VirnucproError):
    """A result table is missing or is not in virnucpro's format."""


@dataclass(frozen=True)
class ChunkRow:
    chunk_id: str
    sequence_id: str
    start: int
    end: int
    n_frames: int
    virus_score: float | None  # recomputed from the two maxima, exactly as the writer did


@dataclass(frozen=True)
class SequenceRow(SequenceCall):
    """A sequences.tsv row read back: the `SequenceCall` the writer printed, plus the sequence's
    name and length (one definition of the row's statistics for writing and reading)."""

    sequence_id: str
    length: int


@dataclass(frozen=True)
class RegionRow:
    sequence_id: str
    region_id: str
    start: int
    end: int
    n_chunks_scored: int
    n_viral_chunks: int
    mean_virus_score: float
    max_virus_score: float
    whole_sequence: bool

    @property
    def length(self) -> int:
        return self.end - self.start


def read_chunks(path: Path) -> Iterator[ChunkRow]:
    return _read(path, formats.CHUNKS_COLUMNS, _chunk_row)


def read_sequences(path: Path) -> Iterator[SequenceRow]:
    return _read(path, formats.SEQUENCES_COLUMNS, _sequence_row)


def read_regions(path: Path) -> Iterator[RegionRow]:
    return _read(path, formats.REGIONS_COLUMNS, _region_row)


def _read(path: Path, columns: tuple[str, ...], parse: Callable[[list[str]], Row]) -> Iterator[Row]:
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 (closed by the `with` below)
    except FileNotFoundError:
        raise ResultsFileError(f"{path} not found (is this a virnucpro output directory?)") from None
    with handle:
        try:
            yield from _parse_lines(path, handle, columns, parse)
        except UnicodeDecodeError:
            raise ResultsFileError(f"{path}: not UTF-8 text (is this a virnucpro {path.name}?)") from None


def _parse_lines(path: Path, handle, columns: tuple[str, ...], parse: Callable[[list[str]], Row]) -> Iterator[Row]:
    header = handle.readline().rstrip("\n").split("\t")
    if tuple(header) != columns:
        raise ResultsFileError(f"{path}: not a virnucpro {path.name} (unexpected header)")
    for line_number, line in enumerate(handle, start=2):
        fields = line.rstrip("\n").split("\t")
        if len(fields) != len(columns):
            raise ResultsFileError(f"{path}:{line_number}: expected {len(columns)} columns, found {len(fields)}")
        try:
            row = parse(fields)
        except ValueError as error:
            raise ResultsFileError(f"{path}:{line_number}: {error}") from None
        yield row


def _count(text: str, name: str) -> int:
    """A count or a position: a non-negative integer that fits the tables' int64 readers."""
    value = int(text)
    if not 0 <= value < 2**63:
        raise ValueError(f"{name} {text!r} is out of range")
    return value


def _probability(text: str, name: str) -> float | None:
    """A score or a fraction: NA, or a number in [0, 1] (NaN, infinities and other numbers refused)."""
    if text == formats.NA:
        return None
    value = float(text)
    if not 0 <= value <= 1:  # also false for NaN
        raise ValueError(f"{name} {text!r} is not in [0, 1]")
    return value


def _chunk_row(fields: list[str]) -> ChunkRow:
    chunk_id, sequence_id, start, end, n_frames, top_others, top_virus, printed_score, _ = fields
    others, virus = _probability(top_others, "max_score_others"), _probability(top_virus, "max_score_virus")
    if (others is None) != (virus is None) or (others == 0 and virus == 0):
        raise ValueError(f"max scores {top_others!r} and {top_virus!r} do not make a chunk score")
    # the exact score from the float32 maxima; the printed column (6 digits) must agree with it
    score = None if others is None or virus is None else virus / (virus + others)
    printed = _probability(printed_score, "virus_score")
    if (printed is None) != (score is None) or (score is not None and abs(printed - score) > 1e-5):
        raise ValueError(f"virus_score {printed_score!r} does not match the chunk's max scores")
    first, last = _count(start, "start"), _count(end, "end")
    if last < first:
        raise ValueError(f"end {last} is before start {first}")
    return ChunkRow(chunk_id, sequence_id, first, last, _count(n_frames, "n_frames"), score)


def _sequence_row(fields: list[str]) -> SequenceRow:
    sequence_id, length, n_chunks, scored, viral, fraction, top, mean, call = fields
    if call not in CALLS:
        raise ValueError(f"unknown call {call!r}")
    return SequenceRow(
        sequence_id=sequence_id, length=_count(length, "length"), n_chunks=_count(n_chunks, "n_chunks"),
        n_chunks_scored=_count(scored, "n_chunks_scored"), n_viral_chunks=_count(viral, "n_viral_chunks"),
        viral_fraction=_probability(fraction, "viral_fraction"), max_virus_score=_probability(top, "max_virus_score"),
        mean_virus_score=_probability(mean, "mean_virus_score"), call=call,
    )


def _region_row(fields: list[str]) -> RegionRow:
    sequence_id, region_id, start, end, _, _, scored, viral, mean, top, _, whole = fields
    if whole not in ("True", "False"):
        raise ValueError(f"whole_sequence must be True or False, not {whole!r}")
    return RegionRow(sequence_id, region_id, int(start), int(end), int(scored), int(viral), float(mean), float(top),
                     whole == "True")
