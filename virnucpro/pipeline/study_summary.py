"""The end of a study: samples.tsv (one row per sample, sheet order) and study.json (the sheet and its
sha256, per-sample status, totals, the one model load, the stream's timings and GPU busy)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from virnucpro import __version__
from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.outputs.samples_table import viral_fraction, write_samples_table

COUNTED = ("records", "virus", "others", "no_call", "too_short", "regions")


@dataclass
class StudyTotals:
    model_load_seconds: float = 0.0
    stream_seconds: float = 0.0  # from the first sample's first block to the last sample's end
    gpu_utilization: dict[str, float] | None = None  # NVML over the whole stream, across sample boundaries
    stream_peak_rss_mib: float | None = None

    def add_monitor(self, monitor, stream_seconds: float) -> None:
        self.stream_seconds = stream_seconds
        self.gpu_utilization = monitor.busy_fractions()
        self.stream_peak_rss_mib = monitor.rss_peak_bytes / 2**20


def write_study_files(state, journal, totals: StudyTotals, device_names: list[str],
                      wall_start: float) -> dict:
    """samples.tsv (via .partial) and study.json; returns study.json's content."""
    names = [entry["name"] for entry in journal.samples]
    rows = [journal.done[name]["row"] for name in names if name in journal.done]
    write_samples_table(state.paths.samples_table, rows)
    sums = {column: sum(int(row[column]) for row in rows) for column in COUNTED}
    now = time.perf_counter()
    finished = datetime.now(timezone.utc)
    busy = totals.gpu_utilization
    summary = {
        "virnucpro_version": __version__,
        "started_at": (finished - timedelta(seconds=now - wall_start)).isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "command_line": list(sys.argv),
        "sheet": journal.sheet, "sheet_sha256": journal.sheet_sha256,
        "shard": journal.shard,
        "samples": [{"name": name, "status": "done", "seconds": float(journal.done[name]["row"]["seconds"]),
                     "files": journal.done[name]["files"]} if name in journal.done else
                    {"name": name, "status": "not in this shard", "seconds": None, "files": {}} for name in names],
        "totals": {"samples": len(rows), **sums, "viral_fraction": viral_fraction(sums["virus"], sums["records"])},
        "devices": device_names,
        "parameters": {k: v for k, v in (journal.parameters or {}).items() if k != "models"},
        "models": (journal.parameters or {}).get("models"),
        "timings_seconds": {"model_load": totals.model_load_seconds, "stream": totals.stream_seconds,
                            "total": now - wall_start},
        "model_loads": 1,
        "gpu_utilization": busy,
        "device_busy_fraction": sum(busy.values()) / len(busy) if busy else None,
        "stream_peak_rss_mib": totals.stream_peak_rss_mib,
    }
    write_json_atomic(state.paths.study_json, summary)
    return summary
