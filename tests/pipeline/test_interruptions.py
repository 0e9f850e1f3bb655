"""kill -9 at every stage of a predict run, then --resume: byte-identical results (SIGINT and SIGTERM:
test_signals.py).

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
