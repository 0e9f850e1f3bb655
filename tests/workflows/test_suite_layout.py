"""The test suite's own rules: one folder per package, a fast plain `pytest`, and a CI command that runs
everything (slow tests included)."""

from __future__ import annotations

import subprocess
import sys

from workflow_tools import REPO

TESTS = REPO / "tests"
NOT_PACKAGES = {"data", "workflows", "__pycache__"}  # test data; packaging, containers and workflow managers


def test_tests_live_in_the_folder_of_their_package():
    assert not sorted(path.name for path in TESTS.glob("test_*.py"))  # none left at the top
    packages = {path.name for path in (REPO / "virnucpro").iterdir() if (path / "__init__.py").is_file()}
    folders = {path.name for path in TESTS.iterdir() if path.is_dir()} - NOT_PACKAGES
    assert folders <= packages, folders - packages


def _collected(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args,
                           "tests/workflows/test_packaging.py", "tests/workflows/test_suite_layout.py"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_plain_pytest_deselects_slow_tests_and_scripts_test_runs_them():
    plain = _collected()
    assert plain and not [test for test in plain if "test_packaging.py" in test]  # all marked slow
    script = (REPO / "scripts" / "test").read_text()
    (command,) = [line for line in script.splitlines() if "-m pytest" in line]
    marker = command.split("-m pytest", 1)[1].split('"')[1]
    assert marker == "slow or not slow"
    everything = _collected("-m", marker)
    assert set(plain) < set(everything) and [test for test in everything if "test_packaging.py" in test]
    assert "bash scripts/test" in (REPO / ".ci" / "run").read_text()
