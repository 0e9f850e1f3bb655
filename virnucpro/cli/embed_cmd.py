"""`virnucpro embed`: the predict pipeline up to the features, one parquet row per kept frame."""

from __future__ import annotations

from pathlib import Path

import click

from virnucpro.cli.run_options import build_run_options, run_options, start_logging


@click.command("embed")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Parquet file: columns id, dnabert, esm (float32 lists), in frame order.")
@run_options
def embed(inputs: tuple[str, ...], output: Path, **params) -> None:
    """Write DNABERT-S and ESM-2 embeddings of every kept frame of INPUT... to a parquet file."""
    from virnucpro.pipeline.predict import run

    logger = start_logging(params)
    options = build_run_options(inputs, output, params, embed_only=True)
    summary = run(options, logger)
    counts = summary["counts"]
    logger.info("%d sequences -> %d frames embedded in %.1f s; wrote %s", counts["records"],
                counts["frames_this_session"], summary["timings_seconds"]["total"], output)
