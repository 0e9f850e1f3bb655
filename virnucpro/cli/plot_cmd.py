"""`virnucpro plot OUTDIR`: score tracks, histograms and an HTML report of a finished run."""

from __future__ import annotations

from pathlib import Path

import click

from virnucpro.cli.checks import FiniteFloatRange

MAX_TRACKS = 100  # one panel each; matplotlib refuses a figure taller than 2**16 pixels (~300 panels)


@click.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Report file (.html, default OUTDIR/report.html); a .png/.pdf/.svg name writes the "
                   "histograms there and the score tracks to NAME_tracks.EXT instead; other extensions are refused.")
@click.option("--max-tracks", type=click.IntRange(0, MAX_TRACKS), default=10, show_default=True,
              help="Score tracks for at most this many sequences (those with the most chunks, at least two scored).")
@click.option("--threshold", type=FiniteFloatRange(0, 1), default=None,
              help="Chunk score cut drawn and coloured [default: the run's, from run.json, else 0.5].")
def plot(outdir: Path, output: Path | None, max_tracks: int, threshold: float | None) -> None:
    """Plot chunk score tracks along long sequences (a prophage-region scan), score histograms and a
    self-contained HTML report from a finished run in OUTDIR. On a study (`predict --samples`; OUTDIR
    holds samples.tsv): each sample's report and OUTDIR/report.html linking them, with a bar of
    each sample's viral read fraction."""
    from virnucpro.outputs.report import make_report
    from virnucpro.outputs.study_report import is_study, make_study_report

    def warn(line: str) -> None:
        click.echo(f"virnucpro: warning: {line}", err=True)

    if is_study(outdir):
        written = make_study_report(outdir, output, max_tracks, threshold, warn)
    else:
        written = make_report(outdir, output, max_tracks, threshold)
    for path in written:
        click.echo(f"wrote {path}", err=True)
