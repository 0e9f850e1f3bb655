"""`virnucpro plot OUTDIR` on a study (OUTDIR holds samples.tsv): OUTDIR/report.html with a bar of
each sample's viral read fraction, the counts table, and a link to each sample's own report (made
here too, by outputs/report.py). samples.tsv is untrusted: names are HTML-escaped and URL-quoted,
a name that is not one plain directory name is refused, NaN / NA fractions draw no bar, and a
missing or unfinished sample directory is one line in the report (and on stderr), not a failure.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from urllib.parse import quote

from virnucpro import __version__
from virnucpro.errors import VirnucproError
from virnucpro.fsutil.atomic import write_bytes_atomic
from virnucpro.outputs.paths import StudyPaths
from virnucpro.outputs.plots import VIRUS_COLOR
from virnucpro.outputs.report import _STYLE, REPORT_FORMATS, _png_tag, make_report
from virnucpro.outputs.samples_table import COLUMNS, fraction_value, read_samples_table

MAX_BARS = 1000  # the figure stays under matplotlib's 2**16-pixel limit; the table lists every sample
BAR_HEIGHT_IN = 0.22


def is_study(outdir: Path) -> bool:
    return StudyPaths(outdir).samples_table.is_file()


def make_study_report(outdir: Path, output: Path | None, max_tracks: int, threshold: float | None,
                      warn) -> list[Path]:
    """Each sample's report, then the study's; returns the paths written. `warn(line)` is told of
    every sample whose report could not be made."""
    paths = StudyPaths(outdir)
    output = output or paths.report_html
    if output.suffix.lower() not in REPORT_FORMATS:
        raise VirnucproError(f"-o {output}: a study's report is HTML; use a .html name")
    rows = read_samples_table(paths.samples_table)
    written, problems = [], {}
    for row in rows:
        name = row["sample"]
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise VirnucproError(f"{paths.samples_table}: sample name {name[:40]!r} is not a directory name")
        try:
            if paths.sample_dir(name).is_symlink():  # its report would be written wherever the link points
                raise VirnucproError(f"{paths.sample_dir(name)} is a symbolic link, not the sample's directory")
            written += make_report(paths.sample_dir(name), None, max_tracks, threshold)
        except VirnucproError as error:
            problems[name] = str(error)
            warn(f"sample {name}: no report ({error})")
    links = os.path.relpath(outdir, output.parent)  # the sample reports, seen from where the report is
    write_bytes_atomic(output, study_html(outdir, rows, problems, links).encode())
    return [*written, output]


def study_html(outdir: Path, rows: list[dict[str, str]], problems: dict[str, str], links: str = ".") -> str:
    title = f"virnucpro study: {outdir.resolve().name}"
    records = sum(int(row["records"]) for row in rows)
    virus = sum(int(row["virus"]) for row in rows)
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted">{len(rows):,} samples, {records:,} sequences, {virus:,} called virus;'
        f" virnucpro {html.escape(__version__)}</p>",
        "<h2>Viral read fraction per sample</h2>", _fraction_figure(rows),
        "<h2>Samples</h2>", _samples_table(rows, problems, links),
    ]
    body = "\n".join(sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def _fraction_figure(rows: list[dict[str, str]]) -> str:
    if not rows:
        return '<p class="muted">No samples.</p>'
    from matplotlib.figure import Figure

    shown = rows[:MAX_BARS]
    figure = Figure(figsize=(8, 1.2 + BAR_HEIGHT_IN * len(shown)))
    ax = figure.add_subplot()
    fractions = [fraction_value(row["viral_fraction"]) for row in shown]
    positions = range(len(shown))
    ax.barh(positions, [0 if math.isnan(f) else f for f in fractions], color=VIRUS_COLOR)
    for position, fraction in zip(positions, fractions):
        if math.isnan(fraction):
            ax.text(0.005, position, "NA", va="center", fontsize=8, color="#666")
    ax.set_yticks(list(positions), [row["sample"] for row in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(0.05, *(f for f in fractions if not math.isnan(f))) * 1.05 if any(
        not math.isnan(f) for f in fractions) else 1)
    ax.set_xlabel("viral read fraction (sequences called virus / sequences read)")
    figure.tight_layout()
    note = (f'<p class="muted">The first {MAX_BARS:,} samples of {len(rows):,}; the table lists all.</p>'
            if len(rows) > MAX_BARS else "")
    return _png_tag(figure, "viral read fraction per sample") + note


def _samples_table(rows: list[dict[str, str]], problems: dict[str, str], links: str) -> str:
    shown = [column for column in COLUMNS if column not in ("r1", "r2")]
    head = "".join(f"<th>{html.escape(column)}</th>" for column in [*shown, "report"])
    body = []
    for row in rows:
        name = row["sample"]
        cells = "".join(f"<td>{html.escape(row[column])}</td>" for column in shown)
        link = (f'<td class="muted">{html.escape(problems[name])}</td>' if name in problems else
                f'<td><a href="{html.escape(_href(links, name))}">report</a></td>')
        body.append(f"<tr>{cells}{link}</tr>")
    return f'<table id="samples"><tr>{head}</tr>{"".join(body)}</table>'


def _href(links: str, name: str) -> str:
    """A relative link to a sample's report (the name URL-quoted: it may hold '#', '?', '%')."""
    prefix = "" if links == "." else "/".join(quote(part) for part in Path(links).parts) + "/"
    return f"{prefix}{quote(name, safe='')}/report.html"
