"""The sample sheet of a study (`predict --samples SHEET`): which samples, which read files.

A header line names the columns: `sample`, `r1` and an optional `r2` (nf-core's `fastq_1`,
`fastq_2` too; other columns are ignored), tab-separated or comma-separated (whichever the header
uses). Paths are relative to the sheet's directory (absolute ones allowed). The sheet is untrusted:
its size and row count are bounded, and every name must be safe as a directory name, since each
sample gets OUTDIR/SAMPLE/. Every refusal is one line naming the sheet line and what to change.

Standard library only (no torch, no dnaio): workflows/snakemake/samplesheet.py is this file with
one line changed (the error's base class), so Snakemake's environment parses sheets the same way
(tests/io/test_samplesheet.py checks the copy).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_SheetErrorBase = ValueError  # the copy in workflows/snakemake: no virnucpro import

COLUMN_NAMES = {"sample": "sample", "r1": "r1", "fastq_1": "r1", "r2": "r2", "fastq_2": "r2"}
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_SHEET_BYTES = 16 * 2**20
MAX_SAMPLES = 100_000
MAX_LINES = 2 * MAX_SAMPLES + 1  # blank lines allowed, not millions of them (each costs a parse step)
MAX_LINE_CHARS = 65_536  # a few paths; bounds the fields of one line (csv builds them all at once)
MAX_NAME_LENGTH = 100


class SampleSheetError(_SheetErrorBase):
    """The sample sheet cannot be run as written; the message says what to change."""


@dataclass(frozen=True)
class Sample:
    name: str
    r1: Path
    r2: Path | None
    line: int  # in the sheet, for messages

    @property
    def paired(self) -> bool:
        return self.r2 is not None


def read_sample_sheet(sheet: str | Path, reserved: frozenset[str] = frozenset()) -> dict[str, Sample]:
    """Samples by name, in sheet order, with paths resolved against the sheet's directory.
    `reserved`: names a sample may not take (files the caller writes beside the sample dirs)."""
    sheet = Path(sheet)
    rows = _rows(sheet)  # streamed: a bad row is refused before the rest is parsed
    samples: dict[str, Sample] = {}
    folded: dict[str, int] = {}
    files: dict[tuple[int, int], tuple[str, int]] = {}
    for line, row in rows:
        sample = _sample(sheet, line, row, reserved)
        if sample.name.casefold() in folded:
            raise SampleSheetError(f"{sheet}, line {line}: sample {sample.name!r} appears twice (first on line"
                                   f" {folded[sample.name.casefold()]}, names compared ignoring case);"
                                   " names must be unique")
        folded[sample.name.casefold()] = line
        _check_files_unused(sheet, sample, files)
        samples[sample.name] = sample
    if not samples:
        raise SampleSheetError(f"{sheet} lists no samples (a header line, then one line per sample)")
    return samples


def _read_text(sheet: Path) -> str:
    if not sheet.is_file():
        raise SampleSheetError(f"sample sheet {sheet} does not exist or is not a regular file")
    with open(sheet, "rb") as handle:
        data = handle.read(MAX_SHEET_BYTES + 1)
    if len(data) > MAX_SHEET_BYTES:
        raise SampleSheetError(f"sample sheet {sheet} is over {MAX_SHEET_BYTES // 2**20} MiB: split the study")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SampleSheetError(f"sample sheet {sheet} is not UTF-8 text (byte {error.start}): save it as UTF-8"
                               " TSV or CSV") from None


def _rows(sheet: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row keyed by canonical column name), skipping blank lines; nothing is kept
    per line (a 16 MiB sheet of blank or one-character lines once took gigabytes)."""
    text = _read_text(sheet)
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    kind = "TSV" if delimiter == "\t" else "CSV"
    reader = csv.reader(_bounded_lines(sheet, text), delimiter=delimiter, strict=True)
    try:
        header = next(reader, [])
        columns = _columns(sheet, header)
        count = 0
        for values in reader:  # reader.line_num: the line where the row ends (a quoted field may hold a break)
            if not any(value.strip() for value in values):
                continue
            if len(values) > len(columns):
                raise SampleSheetError(f"{sheet}, line {reader.line_num}: {len(values)} fields under a"
                                       f" {len(columns)}-column header")
            if count == MAX_SAMPLES:
                raise SampleSheetError(f"{sheet}, line {reader.line_num}: more than {MAX_SAMPLES:,} samples: split"
                                       " the study")
            count += 1
            yield reader.line_num, {column: value.strip() for column, value in zip(columns, values)}
    except csv.Error as error:
        raise SampleSheetError(f"{sheet}, line {reader.line_num}: not valid {kind} ({error})") from None


def _bounded_lines(sheet: Path, text: str) -> Iterator[str]:
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if number > MAX_LINES:
            raise SampleSheetError(f"{sheet}: more than {MAX_LINES:,} lines: split the study")
        if len(line) > MAX_LINE_CHARS:
            raise SampleSheetError(f"{sheet}, line {number}: over {MAX_LINE_CHARS:,} characters: not a sample"
                                   " sheet line")
        yield line


def _columns(sheet: Path, header: list[str]) -> list[str]:
    columns = [COLUMN_NAMES.get(name.strip().lower(), name.strip()) for name in header]
    if "sample" not in columns or "r1" not in columns:
        raise SampleSheetError(f"{sheet}: the header needs the columns `sample` and `r1` (or `fastq_1`), "
                               f"found {', '.join(columns)[:200] or 'nothing'}")
    for column in ("sample", "r1", "r2"):
        if columns.count(column) > 1:
            raise SampleSheetError(f"{sheet}, line 1: the column `{column}` appears twice (under two of its names?)")
    return columns


def _sample(sheet: Path, line: int, row: dict[str, str], reserved: frozenset[str]) -> Sample:
    name, r1, r2 = row.get("sample", ""), row.get("r1", ""), row.get("r2", "")
    where = f"{sheet}, line {line}"
    if not SAFE_NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise SampleSheetError(f"{where}: sample name {name!r} is not usable as a directory name (letters, digits,"
                               f" '.', '_', '-'; not starting with '.' or '-'; at most {MAX_NAME_LENGTH} characters)")
    if name.casefold() in {word.casefold() for word in reserved}:
        raise SampleSheetError(f"{where}: sample name {name!r} is the name of a file virnucpro writes beside the"
                               " sample directories: rename the sample")
    if not r1:
        raise SampleSheetError(f"{where}: sample {name!r} has no r1 file")
    first = _read_file(sheet, where, name, "r1", r1)
    second = _read_file(sheet, where, name, "r2", r2) if r2 else None
    if second is not None and _same_file(first, second):
        raise SampleSheetError(f"{where}: sample {name!r} gives the same file as r1 and r2: give the mate file as r2,"
                               " or leave r2 empty for single-end reads")
    return Sample(name, first, second, line)


def _read_file(sheet: Path, where: str, name: str, column: str, value: str) -> Path:
    """The path of a read file, relative to the sheet's directory; it must be a regular file."""
    if "\0" in value:
        raise SampleSheetError(f"{where}: the {column} path of sample {name!r} holds a NUL character")
    path = (sheet.parent / value).absolute()
    if not path.is_file():
        raise SampleSheetError(f"{where}: {column} file {path} of sample {name!r} does not exist or is not a regular"
                               " file (paths are relative to the sheet's directory)")
    return path


def _same_file(first: Path, second: Path) -> bool:
    a, b = os.stat(first), os.stat(second)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _check_files_unused(sheet: Path, sample: Sample, files: dict[tuple[int, int], tuple[str, int]]) -> None:
    """A read file belongs to one sample: the same file twice is a copy-paste slip in the sheet."""
    for path in (sample.r1, sample.r2):
        if path is None:
            continue
        status = os.stat(path)
        key = (status.st_dev, status.st_ino)
        if key in files:
            other, other_line = files[key]
            raise SampleSheetError(f"{sheet}, line {sample.line}: {path} of sample {sample.name!r} is also a file of"
                                   f" sample {other!r} (line {other_line}): each read file belongs to one sample")
        files[key] = (sample.name, sample.line)
