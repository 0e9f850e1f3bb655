"""Hostile sample sheets (#19): names that try to leave OUTDIR or take its own files' names, and
huge sheets (millions of blank or short lines, one line of millions of fields, deep quoting): each
is one refusal line, in about a second, with memory near the sheet's own size."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from virnucpro.io.samplesheet import SampleSheetError, read_sample_sheet
from virnucpro.outputs.paths import StudyPaths

MiB = 2**20


@pytest.fixture
def sheet_dir(tmp_path):
    (tmp_path / "a.fq").write_text("@r\nACGT\n+\nIIII\n")
    return tmp_path


def _refused(sheet_dir, text: str | bytes, *phrases: str) -> str:
    sheet = sheet_dir / "sheet.csv"
    sheet.write_bytes(text if isinstance(text, bytes) else text.encode())
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(SampleSheetError) as error:
            read_sample_sheet(sheet, StudyPaths.reserved_names())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(error.value)
    assert "\n" not in message and all(phrase in message for phrase in phrases), message
    assert time.monotonic() - started < 10 and peak < 17 * MiB + 6 * len(text), peak  # the read buffer is 16 MiB + 1
    return message


@pytest.mark.parametrize("name", ["..", ".", "../escape", "/etc", "a/b", ".virnucpro", "-rf", "x" * 101,
                                  "a\\b", "é"])
def test_a_name_that_is_not_one_plain_directory_name_is_refused(sheet_dir, name):
    _refused(sheet_dir, f"sample,r1\n{name},a.fq\n", "is not usable as a directory name")


@pytest.mark.parametrize("name", ["samples.tsv", "study.json", "report.html", "SAMPLES.TSV"])
def test_a_name_of_a_file_the_study_writes_is_refused(sheet_dir, name):
    _refused(sheet_dir, f"sample,r1\n{name},a.fq\n", "is the name of a file virnucpro writes")


def test_a_sample_listed_twice_up_to_case_is_refused(sheet_dir):
    (sheet_dir / "b.fq").write_text("@r\nACGT\n+\nIIII\n")
    _refused(sheet_dir, "sample,r1\nS,a.fq\ns,b.fq\n", "appears twice")


def test_millions_of_blank_lines_are_refused_without_a_parse_step_each(sheet_dir):
    """16 MiB of blank lines once took 2.5 GB of traced memory and minutes."""
    _refused(sheet_dir, "sample,r1\n" + "\n" * (16 * MiB - 20), "more than 200,001 lines")


def test_millions_of_short_rows_stop_at_the_first_bad_one(sheet_dir):
    _refused(sheet_dir, "sample,r1\n" + "x\n" * (8 * MiB - 10), "line 2: sample 'x' has no r1 file")


def test_one_line_of_millions_of_fields_is_refused_before_csv_builds_them(sheet_dir):
    _refused(sheet_dir, "sample,r1\n" + "ab," * (5 * MiB), "line 2: over 65,536 characters")


def test_deep_quoting_is_refused(sheet_dir):
    _refused(sheet_dir, 'sample,r1\n"' + '""' * 40_000 + '",a.fq\n', "over 65,536 characters")
    _refused(sheet_dir, 'sample,r1\n"a' + '\n' * 100 + ',a.fq\n', "not valid CSV")


def test_a_sheet_over_16_mib_is_refused_unread(sheet_dir):
    _refused(sheet_dir, b"sample,r1\n" + b"#" * (16 * MiB), "is over 16 MiB")
