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


_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def write_mates(reads: Path, r1: Path, r2: Path, first: int, count: int) -> tuple[Path, Path]:
    """R1 and R2 of `count` reads of the FASTQ `reads` from read `first` (IDs `ID/1`, `ID/2`):
    mate 2 is the reverse complement of mate 1, so the two mates are scored differently."""
    lines = reads.read_text().splitlines()[4 * first: 4 * (first + count)]
    texts = ["", ""]
    for number in range(count):
        read_id, sequence = lines[4 * number][1:].split()[0].removesuffix("/1"), lines[4 * number + 1]
        quality = lines[4 * number + 3]
        texts[0] += f"@{read_id}/1\n{sequence}\n+\n{quality}\n"
        texts[1] += f"@{read_id}/2\n{sequence.translate(_COMPLEMENT)[::-1]}\n+\n{quality[::-1]}\n"
    r1.write_text(texts[0])
    r2.write_text(texts[1])
    return r1, r2
