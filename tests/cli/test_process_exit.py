"""The `virnucpro` process ends without the interpreter's finalization (seconds of module and
torch teardown after a finished run, issue #20) and loses nothing by it: exit codes, result files,
run.json, the --log-file and stdout are those of an in-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import reads_and_phix
from interrupt_driver import assert_same_results

from virnucpro.cli.main import main

# the process entry point, with an atexit hook that tells whether the interpreter was finalized
_ENTRY = ("import atexit, sys; atexit.register(lambda: sys.stderr.write('FINALIZED\\n'));"
          " from virnucpro.cli.main import main; sys.argv[0] = 'virnucpro'; sys.exit(main())")


def _process(*args, stdout=subprocess.PIPE, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", _ENTRY, *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, env=env, cwd=cwd, timeout=240)


def test_the_process_ends_without_finalizing_and_keeps_its_exit_code():
    done = _process("--version")
    assert done.returncode == 0 and "virnucpro" in done.stdout
    assert "FINALIZED" not in done.stderr
    usage = _process("predict", "--no-such-option")
    assert usage.returncode == 2 and "FINALIZED" not in usage.stderr


def test_a_user_error_still_exits_1_with_one_line(tmp_path):
    done = _process("predict", tmp_path / "missing.fa", "-o", tmp_path / "out")
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("virnucpro: error:"), done.stderr


def test_stdout_that_cannot_be_flushed_fails_the_exit_code():
    with open("/dev/full", "w") as full:
        done = _process("--help", stdout=full)
    assert done.returncode in (1, 120)  # click's own flush fails first (1); ours would give 120
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("virnucpro: error:"), done.stderr


def test_a_finished_run_leaves_the_files_of_an_in_process_run(tmp_path, model_args):
    inputs = reads_and_phix(tmp_path, reads=40)
    args = ["--write-hits", *model_args]
    assert main(["predict", *inputs, "-o", str(tmp_path / "inproc"), *args]) == 0
    log = tmp_path / "run.log"
    done = _process("predict", *inputs, "-o", tmp_path / "proc", "--log-file", log, *args)
    assert done.returncode == 0, done.stderr
    assert "FINALIZED" not in done.stderr
    assert_same_results(tmp_path / "proc", tmp_path / "inproc")
    assert json.loads((tmp_path / "proc" / "run.json").read_text())["counts"] == \
        json.loads((tmp_path / "inproc" / "run.json").read_text())["counts"]
    assert "done:" in log.read_text().splitlines()[-1]
