"""kill -9 at every stage of a predict run, then --resume: byte-identical results; SIGINT and SIGTERM
stop cleanly with one line that says how to resume.

Each kill point is reached by a small driver that wraps one pipeline function in a subprocess and
pauses there (writing a marker file), so the test kills at exactly that moment, not at a race.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import reads_and_phix

from virnucpro.cli.main import main

RESULT_FILES = ("prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv",
                "viral.fa", "regions.tsv", "regions.fa", "virus_summary.tsv")

_DRIVER = r'''
import os, sys, time
from pathlib import Path
point, marker, args = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]

def pause():
    marker.write_text(point)
    time.sleep(600)

import virnucpro.pipeline.predict as predict
from virnucpro.outputs.writer import ResultWriter
from virnucpro.pipeline.journal import Journal

if point == "model_load":
    predict.load_models = lambda *a, **k: pause()
elif point == "after_block_2":
    save = Journal.save
    def save_then_pause(self, path):
        save(self, path)
        if self.blocks_done == 2:
            pause()
    Journal.save = save_then_pause
elif point == "torn_block_3":  # rows of block 3 reach the disk, its checkpoint never happens
    checkpoint = ResultWriter.checkpoint
    def flush_then_pause(self):
        if self.calls.total() > 60:
            for handle in self._handles.values():
                handle.flush()
            pause()
        return checkpoint(self)
    ResultWriter.checkpoint = flush_then_pause
elif point in ("before_rename", "between_renames"):
    replace = os.replace
    def replace_with_pause(src, dst):
        if str(src).endswith(".partial"):
            if point == "between_renames":
                replace(src, dst)
            pause()
        replace(src, dst)
    os.replace = replace_with_pause
elif point == "before_journal_removed":
    predict.OutputState.done = lambda self: pause()

from virnucpro.cli.main import main
sys.exit(main(args))
'''

KILL_POINTS = ["model_load", "after_block_2", "torn_block_3", "before_rename", "between_renames",
               "before_journal_removed"]


def _args(inputs: list[str], out: Path, model_args: list[str]) -> list[str]:
    return ["predict", *inputs, "-o", str(out), "--block-records", "30", "--write-hits", "--threshold", "0.45",
            "--region-length", "1", "--min-region-length", "0", "--min-region-chunks", "1", *model_args]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, model_args) -> tuple[list[str], Path]:
    """The inputs and the results of an uninterrupted run."""
    tmp = tmp_path_factory.mktemp("reference")
    inputs = reads_and_phix(tmp)
    out = tmp / "out"
    assert main(_args(inputs, out, model_args)) == 0
    return inputs, out


def _start_paused(point: str, args: list[str], marker: Path) -> subprocess.Popen:
    """Run predict under the driver; return once it pauses at `point`."""
    process = subprocess.Popen([sys.executable, "-c", _DRIVER, point, str(marker), *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run never reached {point}: {process.communicate()[1][-2000:]}")
        time.sleep(0.05)
    return process


def _assert_same_results(out: Path, reference_out: Path) -> None:
    for name in RESULT_FILES:
        assert (out / name).read_bytes() == (reference_out / name).read_bytes(), name
    assert not (out / ".virnucpro").exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_then_resume_is_byte_identical(tmp_path, model_args, reference, point):
    inputs, reference_out = reference
    out = tmp_path / "out"
    process = _start_paused(point, _args(inputs, out, model_args), tmp_path / "marker")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    if point not in ("between_renames", "before_journal_removed"):
        assert not (out / "sequences.tsv").exists()  # nothing that looks complete
    assert main(_args(inputs, out, model_args) + ["--resume"]) == 0
    _assert_same_results(out, reference_out)


@pytest.mark.parametrize(("sent", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_cleanly_and_say_how_to_resume(tmp_path, model_args, reference, sent, exit_code):
    inputs, reference_out = reference
    out = tmp_path / "out"
    process = _start_paused("after_block_2", _args(inputs, out, model_args), tmp_path / "marker")
    process.send_signal(sent)
    _, err = process.communicate(timeout=60)
    assert process.returncode == exit_code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--resume" in lines[0] and "Traceback" not in err, err
    assert (out / ".virnucpro" / "journal.json").is_file()
    assert not (out / "sequences.tsv").exists()
    assert main(_args(inputs, out, model_args) + ["--resume"]) == 0
    _assert_same_results(out, reference_out)
