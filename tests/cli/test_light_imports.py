"""Commands that compile nothing never import torch's compiler stack (torch._dynamo alone took 3.9 s
on an H200): `--help`, `doctor`, `plot`, `merge`, and a CPU predict's model load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_PROBE = ("import sys; from virnucpro.cli.main import _run; sys.argv[0] = 'virnucpro'; code = _run(sys.argv[1:]);"
          " heavy = [m for m in ('torch._dynamo', 'torch._inductor') if m in sys.modules];"
          " sys.stderr.write(f'HEAVY={heavy} CODE={code}\\n')")


def _heavy_modules(*args, cwd: Path) -> tuple[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               XDG_CACHE_HOME=str(cwd / "cache"))
    done = subprocess.run([sys.executable, "-c", _PROBE, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=240)
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("HEAVY="), done.stderr
    return line.split(" CODE=")[0].removeprefix("HEAVY="), line.split(" CODE=")[1]


@pytest.mark.parametrize("args", [["--help"], ["doctor"], ["plot", "--help"], ["merge", "--help"],
                                  ["plot", "missing-dir", "-o", "plots"], ["merge", "missing-1", "-o", "merged"]],
                         ids=["help", "doctor", "plot-help", "merge-help", "plot", "merge"])
def test_light_commands_do_not_import_the_compiler(tmp_path, args):
    heavy, _ = _heavy_modules(*args, cwd=tmp_path)
    assert heavy == "[]"


def test_a_cpu_predict_does_not_import_the_compiler(tmp_path, model_args):
    from conftest import reads_and_phix

    inputs = reads_and_phix(tmp_path, reads=20)
    heavy, code = _heavy_modules("predict", *inputs, "-o", tmp_path / "out", *model_args, cwd=tmp_path)
    assert code == "0" and heavy == "[]"
