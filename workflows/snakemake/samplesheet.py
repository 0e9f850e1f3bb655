"""Read a virnucpro sample sheet for the Snakemake workflow.

The sheet is the format `virnucpro predict --samples` is specified to take (issue #19): a header with
`sample` and `r1` (or the nf-core names `fastq_1`), an optional `r2` (`fastq_2`), tab- or
comma-separated, paths relative to the sheet. It lives beside the Snakefile, not in the virnucpro
package, so that Snakemake's own environment can parse the sheet without importing torch.
Paired samples are refused: predict cannot read mates yet, and mates share IDs.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

COLUMN_NAMES = {"sample": "sample", "r1": "r1", "fastq_1": "r1", "r2": "r2", "fastq_2": "r2"}
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SampleSheetError(ValueError):
    """The sample sheet cannot be run as written; the message says what to change."""


@dataclass(frozen=True)
class Sample:
    name: str
    r1: Path


def read_sample_sheet(sheet: Path) -> dict[str, Sample]:
    """Samples by name, in sheet order, with r1 resolved against the sheet's directory."""
    sheet = Path(sheet)
    if not sheet.is_file():
        raise SampleSheetError(f"sample sheet {sheet} does not exist")
    rows = _rows(sheet)
    samples: dict[str, Sample] = {}
    for line, row in rows:
        sample = _sample(sheet, line, row)
        if sample.name in samples:
            raise SampleSheetError(f"{sheet}, line {line}: sample {sample.name!r} appears twice; names must be unique")
        samples[sample.name] = sample
    if not samples:
        raise SampleSheetError(f"{sheet} lists no samples (a header line, then one line per sample)")
    return samples


def _rows(sheet: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row keyed by canonical column name), skipping blank lines."""
    text = sheet.read_text(encoding="utf-8")
    header = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in header else ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    columns = [COLUMN_NAMES.get(name.strip().lower(), name.strip()) for name in next(reader, [])]
    if "sample" not in columns or "r1" not in columns:
        raise SampleSheetError(f"{sheet}: the header needs the columns `sample` and `r1` (or `fastq_1`), "
                               f"found {', '.join(columns) or 'nothing'}")
    rows = []
    for line, values in enumerate(reader, start=2):
        if not any(value.strip() for value in values):
            continue
        if len(values) > len(columns):
            raise SampleSheetError(f"{sheet}, line {line}: {len(values)} fields under a {len(columns)}-column header")
        rows.append((line, {column: value.strip() for column, value in zip(columns, values)}))
    return rows


def _sample(sheet: Path, line: int, row: dict[str, str]) -> Sample:
    name, r1, r2 = row.get("sample", ""), row.get("r1", ""), row.get("r2", "")
    where = f"{sheet}, line {line}"
    if not SAFE_NAME.fullmatch(name):
        raise SampleSheetError(f"{where}: sample name {name!r} is not usable as a directory name "
                               "(letters, digits, '.', '_', '-'; not starting with '.' or '-')")
    if r2:
        raise SampleSheetError(f"{where}: sample {name!r} has an r2 file, but paired-end reads are not supported "
                               "yet (predict --paired, issue #19); run R1 alone by leaving r2 empty")
    if not r1:
        raise SampleSheetError(f"{where}: sample {name!r} has no r1 file")
    path = (sheet.parent / r1).resolve()
    if not path.is_file():
        raise SampleSheetError(f"{where}: r1 file {path} of sample {name!r} does not exist")
    return Sample(name, path)
