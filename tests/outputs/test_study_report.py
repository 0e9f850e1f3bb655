"""`virnucpro plot OUTDIR` on a study: OUTDIR/report.html, each sample's report, hostile samples.tsv."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import READS
from virnucpro.cli.main import main
from virnucpro.outputs.samples_table import COLUMNS, sample_row, write_samples_table

HOSTILE = '<img src=x onerror="alert(1)">&'


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, model_args) -> Path:
    """One finished predict output (copied into each study)."""
    tmp = tmp_path_factory.mktemp("sample")
    reads = tmp / "r.fq"
    reads.write_text("".join(line + "\n" for line in READS.read_text().splitlines()[:80]))
    assert main(["predict", str(reads), "-o", str(tmp / "out"), *model_args]) == 0
    return tmp / "out"


def _row(name: str, records: int, virus: int, fraction: str | None = None) -> dict[str, str]:
    row = sample_row(name, f"/data/{name}.fq", None, records, None,
                     {"virus": virus, "others": records - virus, "no_call": 0, "too_short": 0}, 0, 1.5)
    return row if fraction is None else {**row, "viral_fraction": fraction}


def _study(tmp_path: Path, sample_run: Path, rows: list[dict[str, str]], present: list[str]) -> Path:
    out = tmp_path / "study"
    out.mkdir()
    for name in present:
        shutil.copytree(sample_run, out / name)
    write_samples_table(out / "samples.tsv", rows)
    return out


def test_study_report_links_each_sample_report_and_survives_hostile_rows(tmp_path, sample_run, capsys):
    rows = [_row("ok", 20, 5), _row(HOSTILE, 10, 1), _row("nan", 4, 0, "nan"), _row("empty", 0, 0),
            _row("missing", 3, 3)]
    out = _study(tmp_path, sample_run, rows, ["ok", HOSTILE, "nan", "empty"])
    assert main(["plot", str(out)]) == 0
    err = capsys.readouterr().err
    assert "virnucpro: warning: sample missing: no report" in err and err.count("warning") == 1
    page = (out / "report.html").read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in page
    assert 'href="ok/report.html"' in page and 'href="%3Cimg%20src%3Dx' in page
    assert "data:image/png;base64," in page and page.count("<tr>") == len(rows) + 1
    assert "output directory" in page and "missing" in page
    for name in ["ok", HOSTILE, "nan", "empty"]:
        assert (out / name / "report.html").is_file()
    assert "0.25" in page  # ok's viral fraction, as written in samples.tsv
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert main(["plot", str(out), "-o", str(elsewhere / "study.html")]) == 0
    assert 'href="../study/ok/report.html"' in (elsewhere / "study.html").read_text()


@pytest.mark.parametrize("rows, message", [
    ([_row("../up", 1, 0)], "is not a directory name"),
    ([_row("a/b", 1, 0)], "is not a directory name"),
])
def test_a_row_naming_a_path_is_refused_in_one_line(tmp_path, sample_run, capsys, rows, message):
    out = _study(tmp_path, sample_run, rows, [])
    assert main(["plot", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not (out / "report.html").exists()


def test_a_samples_table_not_ours_is_refused_in_one_line(tmp_path, sample_run, capsys):
    out = _study(tmp_path, sample_run, [], [])
    (out / "samples.tsv").write_text("sample\tr1\nA\tx\n")
    assert main(["plot", str(out)]) == 1
    assert "the header is not samples.tsv's" in capsys.readouterr().err
    (out / "samples.tsv").write_text("\t".join(COLUMNS) + "\nA\t\t\tlots\t\t0\t0\t0\t0\tNA\t0\t1\tdone\n")
    assert main(["plot", str(out)]) == 1
    assert "records 'lots' is not a count" in capsys.readouterr().err
    write_samples_table(out / "samples.tsv", [_row("A", 1, 0)])
    assert main(["plot", str(out), "-o", str(out / "x.png")]) == 1
    assert "a study's report is HTML" in capsys.readouterr().err


@pytest.mark.parametrize("cell, message", [
    ("\u00b2", "is not a count"),  # '²'.isdigit() is True but int('²') raises
    ("9" * 5000, "is not a count"),  # int() of over 4,300 digits raises
    ("1" * 19, "is not a count"),  # over 2**63: not a count a run wrote
    ('"' + "x" * 200_000, "not a samples table virnucpro wrote"),  # csv's field size limit (csv.Error)
])
def test_a_hostile_count_is_refused_in_one_line(tmp_path, sample_run, capsys, cell, message):
    out = _study(tmp_path, sample_run, [], [])
    (out / "samples.tsv").write_text("\t".join(COLUMNS) + f"\nA\t\t\t{cell}\t\t0\t0\t0\t0\tNA\t0\t1\tdone\n")
    assert main(["plot", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("name", ["samples.tsv", "report.html", "link"])
def test_a_sample_naming_a_study_file_or_a_link_gets_no_report_there(tmp_path, sample_run, capsys, name):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(sample_run, elsewhere)
    out = _study(tmp_path, sample_run, [_row(name, 1, 0), _row("ok", 1, 0)], ["ok"])
    if name == "link":
        (out / "link").symlink_to(elsewhere)
    assert main(["plot", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"sample {name}: no report" in err and "Traceback" not in err
    assert not (elsewhere / "report.html").exists() and (out / "report.html").is_file()
