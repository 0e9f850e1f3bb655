"""`virnucpro benchmark`: measure the whole pipeline on this machine with random full-size models."""

from __future__ import annotations

import json
from pathlib import Path

import click

from virnucpro.cli.checks import MAX_BATCH_TOKENS


@click.command("benchmark")
@click.option("--reads", type=click.IntRange(1, 100_000_000), default=100_000, show_default=True,
              help="W1-style 150-bp reads to generate and classify.")
@click.option("--size", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
              help="Model size: full = DNABERT-S + ESM-2 3B shapes; tiny for a quick check.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--gpus", metavar="all|N|0,2", help="GPUs to use [default: all visible].")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="CPU workers.")
@click.option("--batch-tokens", type=click.IntRange(64, MAX_BATCH_TOKENS), help="Tokens per encoder batch.")
@click.option("--precision", type=click.Choice(["bf16", "fp16", "fp32"]), help="Encoder precision.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep generated models and reads here (reused by later runs) [default: a temp dir].")
@click.option("--time-esm-alone/--no-time-esm-alone", default=True, show_default=True,
              help="Also time ESM-2 alone on the same frames: the baseline of end_to_end_over_esm2_only.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON here.")
def benchmark(reads: int, size: str, device: str, gpus: str | None, workers: int, batch_tokens: int | None,
              precision: str | None, workdir: Path | None, time_esm_alone: bool, output: Path | None) -> None:
    """Throughput of the whole pipeline and of ESM-2 alone on a synthetic W1-style workload."""
    from virnucpro.console import setup_logging
    from virnucpro.fsutil.atomic import write_json_atomic
    from virnucpro.pipeline.benchmark import run_benchmark

    logger = setup_logging(0)
    result = run_benchmark(reads, size, workdir, logger, esm_only=time_esm_alone, device=device, gpus=gpus,
                           workers=workers, batch_tokens=batch_tokens, precision=precision)
    if output is not None:
        write_json_atomic(output, result)
    click.echo(json.dumps({k: result[k] for k in ("devices", "wall_seconds", "stream_seconds", "esm2_only_seconds",
                                                  "end_to_end_over_esm2_only", "device_busy_fraction",
                                                  "peak_rss_mib", "throughput")}, indent=2))
