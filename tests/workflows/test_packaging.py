"""The built distributions: `python -m build` makes an sdist and a wheel that pass `twine check` and
`check-wheel-contents`, and the wheel, installed into a fresh virtual environment, runs
`virnucpro --version`, `virnucpro doctor` and a tiny-model predict.

The fresh environment gets virnucpro ONLY from the wheel (`pip install --no-deps --no-index`); its
third-party dependencies (torch is ~1 GB even as a CPU build) are borrowed from the test environment
through a .pth line naming that environment's site-packages. A .pth line only adds a directory to
sys.path; the .pth files inside it are not run, so the test environment's editable install of this
checkout stays inactive. The test also checks that `import virnucpro` resolves inside the fresh
environment, so a module, package-data file or entry point missing from the wheel fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import GENOMES, RESULT_TABLES
from workflow_tools import REPO, require_module, require_tool, same_results

pytestmark = [pytest.mark.packaging, pytest.mark.slow]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist + wheel of this checkout, built offline (--no-isolation: the test environment's setuptools)."""
    require_module("build")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def fresh_env(dist, tmp_path_factory) -> Path:
    """A new venv holding the wheel's virnucpro, with the test environment's dependencies on its path."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], env=_without_checkout(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    borrowed = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site) / "borrowed_test_dependencies.pth").write_text("\n".join(borrowed) + "\n")
    return venv


def _fresh(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a command of the fresh venv without this checkout on the path (no PYTHONPATH, cwd elsewhere)."""
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=_without_checkout(),
                          capture_output=True, text=True, timeout=600)


def _without_checkout() -> dict[str, str]:
    """This environment less PYTHONPATH, which names the checkout (and its build's virnucpro.egg-info)."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def test_sdist_and_wheel_pass_twine_and_check_wheel_contents(dist):
    twine, checker = require_tool("twine"), require_tool("check-wheel-contents")
    files = sorted(str(path) for path in dist.iterdir())
    assert sorted(Path(name).suffix for name in files) == [".gz", ".whl"]
    done = subprocess.run([twine, "check", "--strict", *files], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([checker, next(str(p) for p in dist.glob("*.whl"))], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_wheel_holds_every_package_data_file(dist):
    from virnucpro import __version__

    wheel = next(dist.glob("*.whl"))
    assert wheel.name == f"virnucpro-{__version__}-py3-none-any.whl"
    data = {str(path.relative_to(REPO)) for path in (REPO / "virnucpro" / "data").rglob("*") if path.is_file()}
    assert data and data <= set(zipfile.ZipFile(wheel).namelist())


def test_installed_wheel_reports_its_version_from_the_fresh_env(fresh_env, tmp_path):
    from virnucpro import __version__

    where = _fresh(fresh_env, "python", "-c", "import virnucpro; print(virnucpro.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(fresh_env)), where.stdout + where.stderr
    done = _fresh(fresh_env, "virnucpro", "--version", cwd=tmp_path)
    assert done.returncode == 0 and re.search(rf"\b{re.escape(__version__)}\b", done.stdout), done.stdout + done.stderr


def test_installed_wheel_doctor_reports_all_but_missing_models(fresh_env, tmp_path):
    done = _fresh(fresh_env, "virnucpro", "doctor", "--json", "--models-dir", str(tmp_path / "none"), cwd=tmp_path)
    report = json.loads(done.stdout)
    errors = [problem["message"] for problem in report["problems"] if problem["severity"] == "error"]
    assert errors and all("models directory" in message for message in errors), errors
    assert done.returncode == 1 and "virnucpro: error: not ready" in done.stderr


def test_installed_wheel_predicts_like_the_checkout(fresh_env, tmp_path, model_args):
    genome = str(GENOMES / "phiX174_NC_001422.fa")
    installed = _fresh(fresh_env, "virnucpro", "predict", genome, "-o", "installed", *model_args, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    checkout = subprocess.run([sys.executable, "-m", "virnucpro", "predict", genome, "-o", "checkout", *model_args],
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                              text=True, timeout=600)
    assert checkout.returncode == 0, checkout.stderr
    assert same_results(tmp_path / "installed", tmp_path / "checkout", RESULT_TABLES) == []
