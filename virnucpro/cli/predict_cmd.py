"""`virnucpro predict`: reads or contigs in, viral calls out."""

from __future__ import annotations

from pathlib import Path

import click

from virnucpro.cli.checks import FiniteFloatRange
from virnucpro.cli.run_options import build_run_options, run_options, start_logging


@click.command("predict")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory for the result files.")
@click.option("--threshold", type=FiniteFloatRange(0, 1), default=0.5, show_default=True,
              help="Chunk virus score needed to call a chunk viral (0.5 = the original rule).")
@click.option("--write-hits", is_flag=True, help="Also write viral.fa with the sequences called viral.")
@click.option("--save-embeddings", is_flag=True, help="Also write embeddings.parquet (one row per kept frame).")
@run_options
def predict(inputs: tuple[str, ...], outdir: Path, threshold: float, write_hits: bool, save_embeddings: bool,
            **params) -> None:
    """Call viral sequences in INPUT... (FASTA/FASTQ, gz/bz2/xz/zst, - for stdin)."""
    from virnucpro.pipeline.predict import run

    logger = start_logging(params)
    options = build_run_options(inputs, outdir, params, threshold=threshold, write_hits=write_hits,
                                save_embeddings=save_embeddings)
    summary = run(options, logger)
    _report(summary, outdir, logger)


def _report(summary: dict, outdir: Path, logger) -> None:
    counts, timings = summary["counts"], summary["timings_seconds"]
    if counts["records"] == 0:
        logger.warning("the input held no sequences; wrote empty result files")
    if counts["empty_records"]:
        logger.warning("%d records have no sequence (listed in sequences.tsv as no_call)", counts["empty_records"])
    logger.info("%d sequences, %d chunks, %d kept frames (%d distinct) in %.1f s; device busy %.0f%%",
                counts["records"], counts["chunks_this_session"], counts["frames_this_session"],
                counts["unique_frames_this_session"], timings["total"], 100 * summary["device_busy_fraction"])
    stages = ", ".join(f"{k.removeprefix('device_')} {v:.1f} s" for k, v in timings.items() if k.startswith("device_"))
    logger.info("device time per stage: %s; results in %s", stages, outdir)
