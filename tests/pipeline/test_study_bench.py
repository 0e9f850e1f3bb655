"""benchmarks/bench_study.py runs end to end on the CPU with tiny models (the lead runs it on a GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # ~35 s on a shared 2-core machine: five predict processes
def test_bench_study_runs_on_the_cpu_with_tiny_models(tmp_path):
    result = tmp_path / "study.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_study.py"), "--samples", "3", "--pairs", "10",
                    "--separate", "2", "--size", "tiny", "--device", "cpu", "-o", str(result)],
                   check=True, capture_output=True, timeout=600)
    data = json.loads(result.read_text())
    assert data["study"]["model_loads"] == 1 and data["separate"]["model_loads"] == 3
    assert data["study"]["records"] == 3 * 10 * 2  # both mates of every pair
    assert sorted(data["study"]["per_sample_seconds"]) == ["s000", "s001", "s002"]
    assert data["separate"]["runs_measured"] == 2 and "extrapolated" in data["separate"]["note"]
    assert data["speedup"] > 0 and data["settings"]["mates"] == "both mates from the same synthetic fragment"
