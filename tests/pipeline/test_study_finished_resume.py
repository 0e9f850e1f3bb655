"""`--resume` of a finished study or a finished run: checked without loading the models, exit 0 with
one line; an edited output or other inputs are refused as a resume refuses (pipeline/finished_run.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_study import SAMPLE_SIZES, make_study, read_table, sample_inputs, single_args, study_args

import virnucpro.pipeline.predict as predict_module
import virnucpro.pipeline.study as study_module
from virnucpro.cli.main import main


def _log(tmp_path) -> list[str]:
    return ["--log-file", str(tmp_path / "run.log")]


def _said(tmp_path) -> str:
    return (tmp_path / "run.log").read_text()


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading the models fails: a resume with nothing left to run must not try."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the models were loaded")

    monkeypatch.setattr(predict_module, "load_workers", refuse)
    monkeypatch.setattr(study_module, "load_workers", refuse)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, model_args):
    """(sheet, a finished study, a finished single run of sample S1)."""
    tmp = tmp_path_factory.mktemp("finished")
    sheet = make_study(tmp, {name: SAMPLE_SIZES[name] for name in ("S1", "empty", "P")})
    assert main(study_args(sheet, tmp / "study", model_args)) == 0
    assert main(single_args(sample_inputs(sheet, "S1"), tmp / "single", model_args)) == 0
    return sheet, tmp / "study", tmp / "single"


def test_a_finished_study_resumed_loads_no_model_and_exits_0(finished, tmp_path, model_args, no_model_load, capsys):
    sheet, study, _ = finished
    out = tmp_path / "study"
    shutil.copytree(study, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(study_args(sheet, out, model_args, "--resume", *_log(tmp_path))) == 0
    assert "error" not in capsys.readouterr().err
    assert f"the study in {out} is already complete (3 samples verified)" in _said(tmp_path)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(study_args(sheet, out, model_args, "--resume", "--min-length", "50")) == 1  # stale: refused
    assert "parameter min_length changed 0 -> 50" in capsys.readouterr().err
    (out / "P" / "pairs.tsv").write_text("edited\n")
    assert main(study_args(sheet, out, model_args, "--resume")) == 1
    assert "pairs.tsv of finished sample P changed since it was written" in capsys.readouterr().err


def test_a_finished_single_run_resumed_loads_no_model_and_exits_0(finished, tmp_path, model_args, no_model_load,
                                                                  capsys):
    sheet, _, single = finished
    out = tmp_path / "single"
    shutil.copytree(single, out)
    capsys.readouterr()
    assert main(single_args(sample_inputs(sheet, "S1"), out, model_args) + ["--resume", *_log(tmp_path)]) == 0
    assert "error" not in capsys.readouterr().err
    assert f"{out} holds a finished run: already complete, nothing to resume" in _said(tmp_path)
    assert main(single_args(sample_inputs(sheet, "empty"), out, model_args) + ["--resume"]) == 1
    assert "holds a finished run and input 1 changed from" in capsys.readouterr().err
    # exit 0 only for this command's run: another threshold, or an input edited since, is stale
    assert main(single_args(sample_inputs(sheet, "S1"), out, model_args) + ["--resume", "--threshold", "0.7"]) == 1
    assert "parameter threshold changed 0.5 -> 0.7" in capsys.readouterr().err
    assert main(single_args(sample_inputs(sheet, "S1"), out, model_args) + ["--resume", "--batch-tokens", "128"]) == 1
    assert "parameter esm_batch_tokens changed" in capsys.readouterr().err
    reads = Path(sample_inputs(sheet, "S1")[0])
    text, stat = reads.read_text(), reads.stat()
    try:
        reads.write_text(text.replace("A", "C", 1))
        assert main(single_args(sample_inputs(sheet, "S1"), out, model_args) + ["--resume"]) == 1
        assert f"input {reads.name} changed (" in capsys.readouterr().err
    finally:  # the fixture's reads are shared by the other tests
        reads.write_text(text)
        os.utime(reads, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (out / "run.json").write_text("[]")
    assert main(single_args(sample_inputs(sheet, "S1"), out, model_args) + ["--resume"]) == 1
    assert "run.json is not a run.json virnucpro wrote" in capsys.readouterr().err


def test_a_study_stopped_after_its_last_sample_finishes_without_loading_the_models(finished, tmp_path, model_args,
                                                                                 monkeypatch):
    sheet, study, _ = finished
    out = tmp_path / "study"

    def stopped(*_args, **_kwargs):
        raise KeyboardInterrupt  # killed after the last sample, before samples.tsv and study.json

    with monkeypatch.context() as patch:
        patch.setattr(study_module, "write_study_files", stopped)
        assert main(study_args(sheet, out, model_args)) != 0
    assert (out / ".virnucpro" / "study_journal.json").is_file() and not (out / "study.json").exists()
    monkeypatch.setattr(study_module, "load_workers", lambda *_a, **_k: pytest.fail("the models were loaded"))
    assert main(study_args(sheet, out, model_args, "--resume", *_log(tmp_path))) == 0
    assert "was already complete (3 samples): wrote samples.tsv and study.json" in _said(tmp_path)
    assert [r["records"] for r in read_table(out / "samples.tsv")] == \
        [r["records"] for r in read_table(study / "samples.tsv")]
    totals = [json.loads((directory / "study.json").read_text())["totals"] for directory in (out, study)]
    assert totals[0] == totals[1]
    assert not (out / ".virnucpro" / "study_journal.json").exists()
