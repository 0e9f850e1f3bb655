"""`virnucpro frames`: write the chunks and kept frames that the models would see."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from virnucpro.cli.checks import check_inputs, chunk_size_type
from virnucpro.frames.bounds import CHUNKING_MODES

log = logging.getLogger("virnucpro")


@click.command("frames")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for chunks.fa, nucleotide.fa and protein.faa.")
@click.option("--chunk-size", type=chunk_size_type(1), default=300, show_default=True,
              help="Chunk length: 300 or 500 for the published models.")
@click.option("--chunking", type=click.Choice(CHUNKING_MODES), default="even", show_default=True,
              help="even: equal chunks, overlap spread evenly; legacy: the original's rule, defect included.")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output (repeatable).")
def frames(inputs: tuple[str, ...], outdir: Path, chunk_size: int, chunking: str, verbose: int, quiet: int) -> None:
    """Chunk and six-frame translate INPUT... (FASTA/FASTQ, any compression, - for stdin).

    Keeps the stop-free frames exactly as VirNucPro does; records in input order, frames in order
    F1 F2 F3 R1 R2 R3.
    """
    from virnucpro.console import setup_logging
    from virnucpro.frames.output import write_frames

    check_inputs(inputs)
    setup_logging(verbose - quiet)
    summary = write_frames(inputs, outdir, chunk_size, chunking)
    if summary.records == 0:
        log.warning("no sequences in the input; wrote empty files to %s", outdir)
    if summary.empty_skipped:
        log.warning("skipped %d empty records", summary.empty_skipped)
    rate = summary.records / summary.seconds if summary.seconds > 0 else 0.0
    log.info("%d records (%d bases) -> %d chunks, %d kept frames in %.1f s (%.0f records/s); wrote %s",
             summary.records, summary.bases, summary.chunks, summary.frames, summary.seconds, rate, outdir)
