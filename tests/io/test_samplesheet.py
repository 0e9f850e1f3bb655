"""The sample sheet parser (virnucpro/io/samplesheet.py) and its copy for Snakemake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from virnucpro.io import samplesheet
from virnucpro.io.samplesheet import MAX_SHEET_BYTES, SampleSheetError, read_sample_sheet

REPO = Path(__file__).resolve().parents[2]
COPY = REPO / "workflows" / "snakemake" / "samplesheet.py"
IMPORT_LINE = "from virnucpro.errors import VirnucproError as _SheetErrorBase\n"


def _files(tmp_path: Path, *names: str) -> None:
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("@r\nACGT\n+\nIIII\n")


def _sheet(tmp_path: Path, body: str, name: str = "s.tsv") -> Path:
    (tmp_path / name).write_text(body)
    return tmp_path / name


def test_tsv_csv_nf_core_names_relative_and_absolute_paths(tmp_path):
    _files(tmp_path, "d/a_1.fq", "d/a_2.fq", "b.fq")
    sheet = _sheet(tmp_path / "d", f"sample,fastq_1,fastq_2,strandedness\nA,a_1.fq,a_2.fq,auto\nB,{tmp_path}/b.fq,,\n",
                   "sheet.csv")
    samples = read_sample_sheet(sheet)
    assert list(samples) == ["A", "B"]
    assert samples["A"].r1 == tmp_path / "d" / "a_1.fq" and samples["A"].r2 == tmp_path / "d" / "a_2.fq"
    assert samples["A"].paired and not samples["B"].paired and samples["B"].line == 3
    tsv = _sheet(tmp_path, "sample\tr1\nB\tb.fq\n\n")
    assert list(read_sample_sheet(tsv)) == ["B"]


@pytest.mark.parametrize("body, message", [
    ("sample\tr1\nA\ta.fq\nA\tb.fq\n", "line 3: sample 'A' appears twice"),
    ("sample\tr1\nA\ta.fq\na\tb.fq\n", "line 3: sample 'a' appears twice .*ignoring case"),
    ("sample\tr1\n../x\ta.fq\n", "line 2: sample name '../x' is not usable as a directory name"),
    ("sample\tr1\n..\ta.fq\n", "not usable as a directory name"),
    ("sample\tr1\n.hidden\ta.fq\n", "not usable as a directory name"),
    ("sample\tr1\na/b\ta.fq\n", "not usable as a directory name"),
    (f"sample\tr1\n{'x' * 101}\ta.fq\n", "at most 100 characters"),
    ("sample\tr1\nSamples.TSV\ta.fq\n", "name of a file virnucpro writes"),
    ("sample\tr1\nA\tmissing.fq\n", "line 2: r1 file .*missing.fq of sample 'A' does not exist"),
    ("sample\tr1\tr2\nA\ta.fq\tmissing.fq\n", "r2 file .*missing.fq"),
    ("sample\tr1\tr2\nA\ta.fq\ta.fq\n", "line 2: sample 'A' gives the same file as r1 and r2"),
    ("sample\tr1\nA\ta.fq\nB\ta.fq\n", "line 3: .*a.fq of sample 'B' is also a file of sample 'A' \\(line 2\\)"),
    ("sample\tr1\nA\t\n", "sample 'A' has no r1 file"),
    ("sample\tr1\nA\ta.fq\tx\n", "line 2: 3 fields under a 2-column header"),
    ("sample\tr1\tfastq_1\nA\ta.fq\tb.fq\n", "column `r1` appears twice"),
    ("name\treads\nA\ta.fq\n", "needs the columns `sample` and `r1`"),
    ("", "needs the columns"),
    ("sample\tr1\n", "lists no samples"),
    ("sample\tr1\nA\t.\n", "not a regular file"),
    ('sample,r1\n"A\nB",a.fq\n', "line 3: sample name 'A\\\\nB' is not usable"),  # a quoted line break
    ('sample,r1\n"A,a.fq\n', "line 2: not valid CSV"),
    ("sample\tr1\n\nA\tmissing.fq\n", "line 3: r1 file"),  # blank lines count
])
def test_refusals_name_the_line_and_what_to_do(tmp_path, body, message):
    _files(tmp_path, "a.fq", "b.fq")
    with pytest.raises(SampleSheetError, match=message):
        read_sample_sheet(_sheet(tmp_path, body), reserved=frozenset({"samples.tsv"}))


def test_the_same_file_through_a_link_is_the_same_file(tmp_path):
    _files(tmp_path, "a.fq")
    os.symlink(tmp_path / "a.fq", tmp_path / "link.fq")
    with pytest.raises(SampleSheetError, match="also a file of sample 'A'"):
        read_sample_sheet(_sheet(tmp_path, "sample\tr1\nA\ta.fq\nB\tlink.fq\n"))


def test_size_rows_and_encoding_are_bounded(tmp_path, monkeypatch):
    _files(tmp_path, "a.fq", "b.fq", "c.fq")
    big = tmp_path / "big.tsv"
    with open(big, "wb") as handle:
        handle.truncate(MAX_SHEET_BYTES + 1)
    with pytest.raises(SampleSheetError, match="over 16 MiB"):
        read_sample_sheet(big)
    monkeypatch.setattr(samplesheet, "MAX_SAMPLES", 2)
    with pytest.raises(SampleSheetError, match="line 4: more than 2 samples"):
        read_sample_sheet(_sheet(tmp_path, "sample\tr1\nA\ta.fq\nB\tb.fq\nC\tc.fq\n"))
    (tmp_path / "latin.tsv").write_bytes(b"sample\tr1\n\xe9\ta.fq\n")
    with pytest.raises(SampleSheetError, match="not UTF-8"):
        read_sample_sheet(tmp_path / "latin.tsv")
    with pytest.raises(SampleSheetError, match="does not exist"):
        read_sample_sheet(tmp_path / "nothing.tsv")


def test_workflow_copy_is_this_module_with_only_the_error_base_changed():
    """Snakemake's environment may lack torch and virnucpro itself, so the workflow keeps a copy; it
    must parse exactly as the package does."""
    package = Path(samplesheet.__file__).read_text()
    copy = COPY.read_text()
    assert IMPORT_LINE in package
    changed = [line for line in copy.splitlines(keepends=True) if line not in package.splitlines(keepends=True)]
    assert len(changed) == 1 and "ValueError" in changed[0]
    assert copy == package.replace(IMPORT_LINE, changed[0])


def test_workflow_copy_imports_without_virnucpro_and_refuses_alike(tmp_path):
    _files(tmp_path, "a.fq")
    sheet = _sheet(tmp_path, "sample\tr1\nA\ta.fq\nA\ta.fq\n")
    code = ("import sys; sys.modules['virnucpro'] = None; sys.path.insert(0, sys.argv[1]);"
            "from samplesheet import read_sample_sheet, SampleSheetError\n"
            "try: read_sample_sheet(sys.argv[2])\nexcept SampleSheetError as e: print(e)")
    done = subprocess.run([sys.executable, "-c", code, str(COPY.parent), str(sheet)], capture_output=True,
                          text=True, check=True)
    with pytest.raises(SampleSheetError) as error:
        read_sample_sheet(sheet)
    assert done.stdout.strip() == str(error.value)
