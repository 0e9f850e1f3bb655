"""`virnucpro benchmark`: the real pipeline on a synthetic W1-style workload with random-weight
models of the published sizes, so users can size runs and compare machines without downloads.

It reports wall time, per-stage device time, device busy fraction and peak host memory of one
`predict` run, then times ESM-2 alone on exactly the same frames (same blocks, same batches): the
ratio end-to-end / ESM-2-only says how much of the pipeline is hidden behind ESM-2.
"""

from __future__ import annotations

import logging
import resource
import tempfile
import time
from pathlib import Path

import torch

from virnucpro.devtools.random_models import write_random_models
from virnucpro.devtools.workloads import write_reads
from virnucpro.engine.devices import resolve_precision
from virnucpro.engine.encoders import ModelChoice
from virnucpro.engine.local import LocalEngine
from virnucpro.engine.monitor import StreamMonitor
from virnucpro.io import read_records
from virnucpro.pipeline.blocks import iter_blocks
from virnucpro.pipeline.options import RunOptions
from virnucpro.pipeline.predict import load_workers, run
from virnucpro.pipeline.stream import StreamEngine


def run_benchmark(reads: int, size: str, workdir: Path | None, logger: logging.Logger, esm_only: bool = True,
                  **run_args) -> dict:
    """Generate models and reads (kept in `workdir` for reuse), run predict, then ESM-2 alone."""
    with tempfile.TemporaryDirectory(prefix="virnucpro-bench-") as scratch:
        root = Path(workdir or scratch)
        models, reads_file = _prepare(root, reads, size, logger)
        tag = "-".join(str(v) for v in (run_args.get("gpus"), run_args.get("precision")) if v)
        options = RunOptions(
            inputs=[str(reads_file)], output=root / f"out-{reads}{'-' + tag if tag else ''}", force=True,
            models=ModelChoice(esm=str(models / "esm2"), dnabert=str(models / "dnabert-s"),
                               classifier=str(models / "classifier.pth"), model_type=300, models_dir=None),
            **run_args,
        )
        started = time.perf_counter()
        summary = run(options, logger)
        wall = time.perf_counter() - started
        esm_only, esm_only_busy = _esm_only(options, logger) if esm_only else (None, None)
    stream = summary["timings_seconds"]["stream"]
    return {
        "output": str(options.output),
        "workload": {"reads": reads, "read_length": 150, "model_size": size, "chunk_size": 300},
        "devices": summary["devices"], "torch_version": torch.__version__,
        "wall_seconds": wall, "model_load_seconds": summary["timings_seconds"]["model_load"],
        "stream_seconds": stream, "esm2_only_seconds": esm_only, "esm2_only_busy_fraction": esm_only_busy,
        "end_to_end_over_esm2_only": stream / esm_only if esm_only else None,
        "device_busy_fraction": summary["device_busy_fraction"],
        "gpu_utilization": summary["gpu_utilization"], "stage_busy_fraction": summary["stage_busy_fraction"],
        "device_stage_seconds": {k: v for k, v in summary["timings_seconds"].items() if k.startswith("device_")},
        "host_issue_seconds": {k: v for k, v in summary["timings_seconds"].items() if k.startswith("host_issue_")},
        "counts": summary["counts"], "throughput": summary["throughput"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # incl. writing/loading models
        "stream_peak_rss_mib": summary["stream_peak_rss_mib"],
        "stream_rss_mib_timeline": summary["stream_rss_mib_timeline"],
        "parameters": summary["parameters"],
    }


def _prepare(root: Path, reads: int, size: str, logger: logging.Logger) -> tuple[Path, Path]:
    models = root / f"models-{size}"
    if not (models / "classifier.pth").is_file():
        logger.info("writing random %s-size models to %s", size, models)
        write_random_models(models, size=size, seed=0)
    reads_file = root / f"w1-{reads}.fa"
    if not reads_file.is_file():
        logger.info("writing %d W1-style reads to %s", reads, reads_file)
        write_reads(reads_file, reads)
    return models, reads_file


def _esm_only(options: RunOptions, logger: logging.Logger) -> tuple[float, float | None]:
    """ESM-2 over the same blocks and batches as the run, overlapped the same way, nothing else:
    (seconds, mean NVML GPU busy fraction or None)."""
    engine = LocalEngine(logger)
    devices = engine.devices(options.device, options.gpus, options.workers)
    dtype = resolve_precision(options.precision, devices[0])
    loaded, settings = load_workers(options, engine, devices, dtype, logger)  # as in the run
    blocks = iter_blocks(read_records(options.inputs), settings, loaded.tokenizer)
    stream = StreamEngine(blocks, loaded.workers, lambda worker, block: worker.run_esm2_only(block))
    started = time.perf_counter()
    with StreamMonitor(devices) as monitor:
        for event in stream.results():
            if event is not None:
                event.synchronize()
    busy = monitor.busy_fractions()
    return time.perf_counter() - started, sum(busy.values()) / len(busy) if busy else None
