"""Hostile study files (#19): a sheet that aims at OUTDIR's own files or a symlinked sample dir, a
study journal and a shard's study.json with wrong types, NaN, huge numbers, a sample listed twice or
another study's identity: each is one `virnucpro: error:` line, nothing written where it should not
be, no traceback, no allocation proportional to a number read from the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from virnucpro.cli.main import main
from virnucpro.pipeline.study_state import _checksum

SEQUENCE = "ATGGCTAAAGGTCTTGCTGCAGGTAAACGTACTGAAGGT" * 9


@pytest.fixture(scope="module")
def shards(tmp_path_factory, model_args) -> tuple[Path, list[Path]]:
    """(sheet, [shard 1, shard 2]) of a finished two-sample study."""
    root = tmp_path_factory.mktemp("hostile-study")
    for name in ("A", "B"):
        (root / f"{name}.fa").write_text(f">{name.lower()}1\n{SEQUENCE}\n")
    sheet = root / "sheet.tsv"
    sheet.write_text("sample\tr1\nA\tA.fa\nB\tB.fa\n")
    dirs = [root / f"study{k}" for k in (1, 2)]
    for k, directory in enumerate(dirs, start=1):
        assert main(["predict", "--samples", str(sheet), "-o", str(directory), "--shard", f"{k}/2", *model_args]) == 0
    return sheet, dirs


def _one_line_error(capsys, code: int, *phrases: str) -> None:
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("virnucpro: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and all(phrase in err for phrase in phrases), err


def _edited_copy(shards, tmp_path, edit) -> list[Path]:
    _, dirs = shards
    copies = [shutil.copytree(d, tmp_path / d.name) for d in dirs]
    study = json.loads((copies[0] / "study.json").read_text())
    (copies[0] / "study.json").write_text(edit(study) if callable(edit) else edit)
    return copies


@pytest.mark.parametrize("edit, phrase", [
    (lambda s: json.dumps({**s, "timings_seconds": float("nan")}), "holds NaN"),  # was: ValueError at write
    (lambda s: json.dumps({**s, "parameters": {**s["parameters"], "x": float("inf")}}), "holds Infinity"),
    (lambda s: json.dumps({**s, "samples": [s["samples"][0], *s["samples"]]}), "listed twice"),
    (lambda s: json.dumps({**s, "sheet_sha256": "0" * 64}), "different studies: another sample sheet"),
    (lambda s: json.dumps({**s, "shard": [1, 10**30]}), "shard"),
    (lambda s: "[" * 100_000, "not valid JSON"),
])
def test_a_hostile_study_json_is_one_line(shards, tmp_path, capsys, edit, phrase):
    copies = _edited_copy(shards, tmp_path, edit)
    _one_line_error(capsys, main(["merge", *map(str, copies), "-o", str(tmp_path / "merged")]), phrase)
    assert not (tmp_path / "merged" / "study.json").exists()


def test_a_shard_claiming_2_61_shards_builds_no_list_of_them(shards, tmp_path, capsys):
    """Every shard agrees on n = 2**61: merge names at most 10 missing shards (was: list(range(1, n + 1)))."""
    copies = _edited_copy(shards, tmp_path, lambda s: json.dumps({**s, "shard": [1, 2**61]}))
    study = json.loads((copies[1] / "study.json").read_text())
    (copies[1] / "study.json").write_text(json.dumps({**study, "shard": [2, 2**61]}))
    for copy, k in zip(copies, (1, 2)):  # the statuses stay consistent with n: sample k-1 done
        assert json.loads((copy / "study.json").read_text())["samples"][k - 1]["status"] == "done"
    code = main(["merge", *map(str, copies), "-o", str(tmp_path / "merged")])
    _one_line_error(capsys, code, "need shards 1..2,305,843,009,213,693,952 once each; missing [3, 4, 5")


def test_merge_never_copies_into_a_symlinked_sample_dir(shards, tmp_path, capsys):
    _, dirs = shards
    out, elsewhere = tmp_path / "merged", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "A").symlink_to(elsewhere)
    _one_line_error(capsys, main(["merge", *map(str, dirs), "-o", str(out), "--force"]), "is a symbolic link")
    assert not list(elsewhere.iterdir())


def _journal(directory: Path, edit) -> Path:
    """Shard 1's study made unfinished: its journal rewritten (checksum matching) by `edit`."""
    study = json.loads((directory / "study.json").read_text())
    entries = [{"name": e["name"], "r1": str(directory.parent / f"{e['name']}.fa"), "r2": None}
               for e in study["samples"]]
    journal = {"sheet": study["sheet"], "sheet_sha256": study["sheet_sha256"], "samples": entries,
               "shard": [1, 2], "parameters": {}, "started": [], "done": {}}
    journal = edit(journal)
    text = json.dumps({"version": 1, **journal, "checksum": _checksum(journal)})
    (directory / "study.json").unlink()
    (directory / ".virnucpro").mkdir(exist_ok=True)
    (directory / ".virnucpro" / "study_journal.json").write_text(text)
    return directory


@pytest.mark.parametrize("edit, phrase", [
    (lambda j: {**j, "samples": [j["samples"][0], *j["samples"]]}, "listed twice"),
    (lambda j: {**j, "shard": [1, 10**30]}, "shard is out of range"),
    (lambda j: {**j, "shard": [True, 2]}, "shard is not an integer"),
    (lambda j: {**j, "started": ["../../etc"]}, "started names a sample not in its sheet"),
    (lambda j: {**j, "samples": [{**j["samples"][0], "name": "/etc"}, j["samples"][1]]}, "not a safe directory"),
    (lambda j: {**j, "parameters": [1]}, "parameters is not a JSON object"),
    (lambda j: {**j, "parameters": {"threshold": float("nan")}}, "holds NaN"),
    (lambda j: {**j, "done": {"A": {"row": {}, "files": {"../x": "0" * 64}}}}, "not a samples.tsv row"),
])
def test_a_hostile_study_journal_is_one_line(shards, tmp_path, capsys, model_args, edit, phrase):
    sheet, dirs = shards
    out = _journal(shutil.copytree(dirs[0], tmp_path / "study"), edit)
    code = main(["predict", "--samples", str(sheet), "-o", str(out), "--shard", "1/2", "--resume", *model_args])
    _one_line_error(capsys, code, "study journal", phrase)


def test_a_journal_version_true_is_not_version_1(shards, tmp_path, capsys, model_args):
    sheet, dirs = shards
    out = _journal(shutil.copytree(dirs[0], tmp_path / "study"), lambda j: j)
    path = out / ".virnucpro" / "study_journal.json"
    path.write_text(path.read_text().replace('"version": 1', '"version": true'))
    code = main(["predict", "--samples", str(sheet), "-o", str(out), "--shard", "1/2", "--resume", *model_args])
    _one_line_error(capsys, code, "its version is not this virnucpro's")


def test_a_symlinked_sample_dir_is_refused_before_anything_is_written(shards, tmp_path, capsys, model_args):
    sheet, _ = shards
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "B").symlink_to(elsewhere)
    for extra in ([], ["--force"]):
        code = main(["predict", "--samples", str(sheet), "-o", str(out), *extra, *model_args])
        _one_line_error(capsys, code, f"{out / 'B'} (sample B) is a symbolic link")
        assert not list(elsewhere.iterdir()) and not (out / "A").exists()


@pytest.mark.parametrize("where", ["A/viral.fa", "A/reads.fa", "samples.tsv"])
def test_a_read_file_among_the_studys_outputs_is_refused_even_with_force(shards, tmp_path, capsys, model_args,
                                                                         where):
    _, dirs = shards
    out = shutil.copytree(dirs[0], tmp_path / "out")
    (out / where).write_text(f">r\n{SEQUENCE}\n")  # FASTA, so it passes the input format check
    kept = (out / where).read_bytes()
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"sample\tr1\nA\t{out / where}\nB\t{dirs[0].parent / 'B.fa'}\n")
    code = main(["predict", "--samples", str(sheet), "-o", str(out), "--force", *model_args])
    _one_line_error(capsys, code, "choose another output directory")
    assert (out / where).read_bytes() == kept  # --force removed nothing
