"""Find the external tools the packaging and workflow tests drive.

They are installed by `scripts/test` (the `workflows` extra) next to the test interpreter, which need
not be on PATH. Outside CI a missing tool skips its test; in CI (CI=true) it fails, so a broken
install step cannot pass as a skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def require_tool(name: str) -> str:
    """The path of executable NAME: beside sys.executable first, then on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found:
        return found
    _missing(name)


def require_module(name: str) -> None:
    """Skip (fail in CI) unless Python module NAME is importable by the test interpreter."""
    if importlib.util.find_spec(name) is None:
        _missing(f"python module {name}")


def _missing(what: str) -> None:
    message = f"{what} is not installed (pip install -e '.[workflows]')"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def virnucpro_env() -> dict[str, str]:
    """The environment for a subprocess that must import this checkout's virnucpro."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


def same_results(left: Path, right: Path, names: list[str]) -> list[str]:
    """The result files among NAMES whose bytes differ between two output directories."""
    return [name for name in names if (left / name).read_bytes() != (right / name).read_bytes()]
