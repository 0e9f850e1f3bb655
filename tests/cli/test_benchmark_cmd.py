"""`virnucpro benchmark` runs the real pipeline on a synthetic workload (tiny models on the CPU)."""

from __future__ import annotations

import json

from virnucpro.cli.main import main


def test_benchmark_tiny_on_cpu(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["benchmark", "--reads", "300", "--size", "tiny", "--device", "cpu", "--workdir", str(tmp_path / "w"),
            "-o", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["counts"]["records"] == 300
    assert result["esm2_only_seconds"] > 0 and result["end_to_end_over_esm2_only"] > 0
    assert 0 < result["device_busy_fraction"] <= 1.5
    assert result["esm2_only_busy_fraction"] is None  # NVML: GPUs only
    assert set(result["host_issue_seconds"]) == {"host_issue_dnabert", "host_issue_esm2", "host_issue_classifier"}
    assert result["stream_peak_rss_mib"] > 10 and result["stream_rss_mib_timeline"] is not None
    assert (tmp_path / "w" / "out-300" / "sequences.tsv").is_file()
    capsys.readouterr()
    assert main(args[:-2] + ["--no-time-esm-alone", "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["esm2_only_seconds"] is None
    assert (tmp_path / "w" / "out-300-fp32" / "sequences.tsv").is_file()
