"""Streaming readers of chunks.tsv and sequences.tsv (for plots and reports of runs of any size)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from virnucpro.errors import VirnucproError
from virnucpro.outputs import formats
from virnucpro.outputs.results import CALLS

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
class SequenceRow:
    sequence_id: str
    length: int
    n_chunks: int
    n_chunks_scored: int
    n_viral_chunks: int
    viral_fraction: float | None
    max_virus_score: float | None
    mean_virus_score: float | None
    call: str


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
        header = handle.readline().rstrip("\n").split("\t")
        if tuple(header) != columns:
            raise ResultsFileError(f"{path}: not a virnucpro {path.name} (unexpected header)")
        for line_number, line in enumerate(handle, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(columns):
                raise ResultsFileError(f"{path}:{line_number}: expected {len(columns)} columns, found {len(fields)}")
            try:
                yield parse(fields)
            except ValueError as error:
                raise ResultsFileError(f"{path}:{line_number}: {error}") from None


def _optional_float(text: str) -> float | None:
    return None if text == formats.NA else float(text)


def _chunk_row(fields: list[str]) -> ChunkRow:
    chunk_id, sequence_id, start, end, n_frames, top_others, top_virus, _ = fields
    others, virus = _optional_float(top_others), _optional_float(top_virus)
    score = None if others is None or virus is None else virus / (virus + others)
    return ChunkRow(chunk_id, sequence_id, int(start), int(end), int(n_frames), score)


def _sequence_row(fields: list[str]) -> SequenceRow:
    sequence_id, length, n_chunks, scored, viral, fraction, top, mean, call = fields
    if call not in CALLS:
        raise ValueError(f"unknown call {call!r}")
    return SequenceRow(
        sequence_id, int(length), int(n_chunks), int(scored), int(viral),
        _optional_float(fraction), _optional_float(top), _optional_float(mean), call,
    )


def _region_row(fields: list[str]) -> RegionRow:
    sequence_id, region_id, start, end, _, _, scored, viral, mean, top, _, whole = fields
    if whole not in ("True", "False"):
        raise ValueError(f"whole_sequence must be True or False, not {whole!r}")
    return RegionRow(sequence_id, region_id, int(start), int(end), int(scored), int(viral), float(mean), float(top),
                     whole == "True")
