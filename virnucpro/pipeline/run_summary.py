"""The run summary (run.json): what ran, on what, with which models and parameters, the counts,
per-stage timings and how busy the devices were. `RunTotals` adds up the blocks as they finish."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import torch

from virnucpro import __version__
from virnucpro.engine.worker import STAGES, BlockOutput
from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.models.load_timer import process_age_seconds
from virnucpro.outputs.pairs import pair_counts
from virnucpro.outputs.paths import OutputPaths
from virnucpro.pipeline.options import RunOptions


@dataclass
class RunTotals:
    records: int = 0  # this session
    records_resumed: int = 0  # written by the sessions before this one (the journal's checkpoint)
    chunks: int = 0
    frames: int = 0
    unique_frames: int = 0
    esm_tokens: int = 0
    dnabert_tokens: int = 0
    oom_splits: int = 0
    gpu_utilization: dict[str, float] | None = None  # NVML, per GPU
    stream_peak_rss_mib: float | None = None  # host memory while the stream ran (models loaded)
    stream_rss_timeline: list[tuple[float, float, float]] = field(default_factory=list)  # every 5 s
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    host_stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    calls: dict[str, int] = field(default_factory=dict)  # sequences per call, over the whole run
    regions: int = 0  # viral regions found, over the whole run
    first_block_seconds: float | None = None  # from the process's start to the first block written

    def add(self, output: BlockOutput) -> None:
        if self.first_block_seconds is None:
            self.first_block_seconds = process_age_seconds()
        block = output.block
        self.records += block.records_completed
        self.chunks += len(block.table.chunk_ids)
        self.frames += block.num_frames
        self.unique_frames += block.num_unique
        self.esm_tokens += block.esm_tokens
        self.dnabert_tokens += block.dnabert_tokens
        self.oom_splits += output.splits
        for stage, seconds in output.stage_seconds().items():
            self.stage_seconds[stage] += seconds
        for stage, seconds in output.host_stage_seconds().items():
            self.host_stage_seconds[stage] += seconds

    def add_monitor(self, monitor) -> None:
        """What the StreamMonitor saw while the stream ran."""
        self.gpu_utilization = monitor.busy_fractions()
        self.stream_peak_rss_mib = monitor.rss_peak_bytes / 2**20
        self.stream_rss_timeline = monitor.rss_timeline


def write_summary(options: RunOptions, parameters: dict, load_seconds: float, totals: RunTotals, reader,
                  threads: int, device_names: list[str], wall_start: float, stream_start: float,
                  load_phases: dict | None = None, input_files: list[dict] | None = None) -> dict:
    """run.json: versions, models, parameters, counts, per-stage timings and GPU busy fraction.
    `input_files`: the inputs' identity the run started with (a finished run resumed is checked
    against it, pipeline/finished_run.py)."""
    now = time.perf_counter()
    stream_seconds = now - stream_start
    device_seconds = sum(totals.stage_seconds.values())
    finished = datetime.now(timezone.utc)
    summary = {
        "virnucpro_version": __version__,
        "started_at": (finished - timedelta(seconds=now - wall_start)).isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "command_line": list(sys.argv),
        "torch_version": torch.__version__,
        "command": "embed" if options.embed_only else "predict",
        "inputs": list(options.inputs),
        "input_files": input_files if input_files is not None else [],
        "engine": options.engine,
        "devices": device_names,
        "threads": threads,
        "models": parameters["models"],
        "parameters": {k: v for k, v in parameters.items() if k != "models"},
        "counts": {"records": reader.stats.records, "empty_records": reader.stats.empty,
                   "bases": reader.stats.bases, "records_this_session": totals.records,
                   "records_resumed": totals.records_resumed,
                   "chunks_this_session": totals.chunks, "frames_this_session": totals.frames,
                   "unique_frames_this_session": totals.unique_frames, "esm_tokens_this_session": totals.esm_tokens,
                   "dnabert_tokens_this_session": totals.dnabert_tokens, "oom_splits": totals.oom_splits,
                   "calls": totals.calls, "regions": totals.regions},
        "timings_seconds": {"model_load": load_seconds, "load_phases": dict(load_phases or {}),
                            "first_block_written_since_process_start": totals.first_block_seconds,
                            "stream": stream_seconds,
                            "total": now - wall_start,
                            **{f"device_{stage}": s for stage, s in totals.stage_seconds.items()},
                            **{f"host_issue_{stage}": s for stage, s in totals.host_stage_seconds.items()}},
        "throughput": {"records_per_second": totals.records / max(stream_seconds, 1e-9),
                       "frames_per_second": totals.frames / max(stream_seconds, 1e-9),
                       "esm_tokens_per_second": totals.esm_tokens / max(stream_seconds, 1e-9)},
        # NVML utilization when available (GPUs); else device time inside stages over wall time.
        "device_busy_fraction": (sum(totals.gpu_utilization.values()) / len(totals.gpu_utilization)
                                 if totals.gpu_utilization else device_seconds / max(stream_seconds, 1e-9) / len(device_names)),
        "gpu_utilization": totals.gpu_utilization,
        "stage_busy_fraction": device_seconds / max(stream_seconds, 1e-9) / len(device_names),
        "stream_peak_rss_mib": totals.stream_peak_rss_mib,
        "stream_rss_mib_timeline": [{"seconds": seconds, "rss_mib": rss, "shared_mib": shared}
                                    for seconds, rss, shared in totals.stream_rss_timeline],
    }
    if options.pairs and not options.embed_only:  # counted from the finished pairs.tsv
        summary["counts"].update(pair_counts(OutputPaths(options.output).pairs))
    if not options.embed_only:
        write_json_atomic(OutputPaths(options.output).run_json, summary)
    return summary
