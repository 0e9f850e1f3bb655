"""kill -9 at every stage of a predict run, then --resume: byte-identical results (SIGINT and SIGTERM:
test_signals.py); what an unfinished, finished or unresumable run does with and without --resume.

Each kill point is reached by a small driver (interrupt_driver.py) that wraps one pipeline function
in a subprocess and pauses there (writing a marker file), so the test kills at exactly that moment.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from interrupt_driver import assert_same_results, start_paused

from virnucpro.cli.main import main

KILL_POINTS = ["model_load", "after_block_2", "torn_block_3", "before_rename", "between_renames",
               "before_journal_removed"]


def _args(inputs: list[str], out: Path, model_args: list[str]) -> list[str]:
    return ["predict", *inputs, "-o", str(out), "--block-records", "30", "--write-hits", "--threshold", "0.45",
            "--region-length", "1", "--min-region-length", "0", "--min-region-chunks", "1", *model_args]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_then_resume_is_byte_identical(tmp_path, model_args, reference, point):
    inputs, reference_out = reference
    out = tmp_path / "out"
    process = start_paused(point, _args(inputs, out, model_args), tmp_path / "marker")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    if point not in ("between_renames", "before_journal_removed"):
        assert not (out / "sequences.tsv").exists()  # nothing that looks complete
    assert main(_args(inputs, out, model_args) + ["--resume"]) == 0
    assert_same_results(out, reference_out)


def _killed_after_block_2(args: list[str], marker: Path) -> None:
    """Run `args` under the driver and SIGKILL it right after its second checkpoint."""
    process = start_paused("after_block_2", args, marker)
    process.send_signal(signal.SIGKILL)
    process.communicate()


def test_unfinished_run_needs_resume_or_force(tmp_path, model_args, reference, capsys):
    inputs, _ = reference
    out = tmp_path / "out"
    _killed_after_block_2(_args(inputs, out, model_args), tmp_path / "marker")
    capsys.readouterr()
    assert main(_args(inputs, out, model_args)) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(_args(inputs, out, model_args) + ["--resume", "--chunk-size", "500"]) == 1
    assert "changed" in capsys.readouterr().err
    assert main(_args(inputs, out, model_args) + ["--force"]) == 0
    assert (out / "sequences.tsv").is_file()


def test_resume_of_a_finished_run_is_refused(tmp_path, model_args, reference, capsys):
    inputs, _ = reference
    out = tmp_path / "out"
    assert main(_args(inputs[1:], out, model_args)) == 0
    assert main(_args(inputs[1:], out, model_args) + ["--resume"]) == 1
    assert "finished" in capsys.readouterr().err


def test_stdin_cannot_be_resumed(tmp_path, model_args, capsys):
    assert main(["predict", "-", "-o", str(tmp_path / "o"), "--resume", *model_args]) == 1
    assert "stdin" in capsys.readouterr().err


@pytest.mark.slow  # ~25 s
def test_killed_embed_resumes_to_the_same_parquet(tmp_path, model_args, reference):
    import pyarrow.parquet as pq

    inputs = reference[0][:1]
    args = ["embed", *inputs, "--block-records", "30", *model_args]
    assert main(args + ["-o", str(tmp_path / "ref.parquet")]) == 0
    out = tmp_path / "killed.parquet"
    _killed_after_block_2(args + ["-o", str(out)], tmp_path / "marker")
    assert (tmp_path / "killed.parquet.parts" / "journal.json").is_file()
    assert main(args + ["-o", str(out), "--resume"]) == 0
    assert pq.read_table(out).equals(pq.read_table(tmp_path / "ref.parquet"))
