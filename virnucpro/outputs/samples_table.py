"""samples.tsv: one row per sample of a study, in sheet order (the study report reads it).

records = sequences read (mates counted separately), pairs = read pairs (empty for single-end),
virus / others / no_call / too_short = sequence calls, viral_fraction = virus / records (6
significant digits, NA when records == 0), regions = viral regions found, seconds = wall time the
study's stream spent on the sample (this session), status = done.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path

from virnucpro.errors import VirnucproError
from virnucpro.fsutil.safe_files import open_exclusive, remove_file
from virnucpro.outputs.paths import OutputPaths

COLUMNS = ("sample", "r1", "r2", "records", "pairs", "virus", "others", "no_call", "too_short",
           "viral_fraction", "regions", "seconds", "status")
TIMING_COLUMNS = ("seconds",)
MAX_TABLE_BYTES = 64 * 2**20
COUNT_COLUMNS = ("records", "virus", "others", "no_call", "too_short", "regions")
_COUNT = re.compile(r"[0-9]{1,18}")  # ASCII digits only ('²'.isdigit() is True, int('²') fails), < 2**63


def viral_fraction(virus: int, records: int) -> str:
    return f"{virus / records:.6g}" if records else "NA"


def sample_row(sample: str, r1: str, r2: str | None, records: int, pairs: int | None, calls: dict[str, int],
               regions: int, seconds: float) -> dict[str, str]:
    """The row of one finished sample, every value as written (`pairs` None: single-end)."""
    return {"sample": sample, "r1": r1, "r2": r2 or "", "records": str(records),
            "pairs": "" if pairs is None else str(pairs), "virus": str(calls["virus"]),
            "others": str(calls["others"]), "no_call": str(calls["no_call"]), "too_short": str(calls["too_short"]),
            "viral_fraction": viral_fraction(calls["virus"], records), "regions": str(regions),
            "seconds": f"{seconds:.3f}", "status": "done"}


def write_samples_table(path: Path, rows: list[dict[str, str]]) -> None:
    """PATH.partial (created exclusively, never through a link), then renamed to PATH."""
    partial = OutputPaths.partial(path)
    remove_file(partial)
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([row[column] for column in COLUMNS] for row in rows)
    with open_exclusive(partial) as handle:
        handle.write(text.getvalue().encode())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


class SamplesTableError(VirnucproError):
    """samples.tsv is not one virnucpro wrote (or was edited out of shape)."""


def read_samples_table(path: Path) -> list[dict[str, str]]:
    """The rows of a samples.tsv (untrusted: header, sizes and numbers checked)."""
    if path.stat().st_size > MAX_TABLE_BYTES:
        raise SamplesTableError(f"{path} is over {MAX_TABLE_BYTES >> 20} MiB: not a samples table virnucpro wrote")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SamplesTableError(f"{path} is not UTF-8 text: not a samples table virnucpro wrote") from None
    reader = csv.reader(lines, delimiter="\t")
    try:
        return _checked_rows(path, reader)
    except csv.Error as error:  # an over-long field, a stray quote: not a table virnucpro wrote
        raise SamplesTableError(f"{path}, line {reader.line_num}: not a samples table virnucpro wrote"
                                f" ({str(error)[:80]})") from None


def _checked_rows(path: Path, reader) -> list[dict[str, str]]:
    """Rows with every count a plain decimal under 2**63 (the report and merge sum them)."""
    if tuple(next(reader, ())) != COLUMNS:
        raise SamplesTableError(f"{path}: the header is not samples.tsv's ({', '.join(COLUMNS)})")
    rows = []
    for line, values in enumerate(reader, start=2):
        if len(values) != len(COLUMNS):
            raise SamplesTableError(f"{path}, line {line}: {len(values)} fields, expected {len(COLUMNS)}")
        row = dict(zip(COLUMNS, values))
        for column in COUNT_COLUMNS:
            if not _COUNT.fullmatch(row[column]):
                raise SamplesTableError(f"{path}, line {line}: {column} {row[column][:20]!r} is not a count")
        rows.append(row)
    return rows


def fraction_value(text: str) -> float:
    """viral_fraction as a number: NaN for NA or anything that is not a fraction in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if 0 <= value <= 1 else math.nan
