"""`virnucpro plot`: a self-contained HTML report (PNG figures embedded as base64), or the figures
alone as PNG/PDF/SVG files. The report opens from disk without a server or network.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from virnucpro import __version__
from virnucpro.errors import VirnucproError
from virnucpro.fsutil.atomic import write_bytes_atomic
from virnucpro.outputs.formats import stat_text
from virnucpro.outputs.pairs import pair_counts
from virnucpro.outputs.paths import PARTIAL_SUFFIX, OutputPaths
from virnucpro.outputs.plots import histograms_figure, tracks_figure
from virnucpro.outputs.results import CALLS, DEFAULT_THRESHOLD
from virnucpro.outputs.summary import ReportData, gather
from virnucpro.outputs.tables import SequenceRow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_FORMATS = (".png", ".pdf", ".svg")
REPORT_FORMATS = (".html", ".htm")
PNG_DPI = 110
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.muted { color: #666; } img { max-width: 100%; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f3f3f3; }
td.virus { color: #d62728; font-weight: 600; } pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
"""


def make_report(outdir: Path, output: Path | None, max_tracks: int, threshold: float | None) -> list[Path]:
    """Write the report (default OUTDIR/report.html) or figure files; returns the paths written."""
    paths = _checked(outdir)
    output = _checked_output(output or paths.report_html)
    run = _run_info(paths)
    data = gather(paths, _run_threshold(run, paths) if threshold is None else threshold, max_tracks,
                  _run_viral_fraction(run))
    if output.suffix.lower() in FIGURE_FORMATS:
        return _write_figures(data, output)
    write_bytes_atomic(output, report_html(paths, data, run).encode())
    return [output]


def _checked_output(output: Path) -> Path:
    """Write what the extension says: an HTML report or figure files; refuse anything else
    (a `fig.jpg` holding HTML would be a broken image)."""
    if output.suffix.lower() not in REPORT_FORMATS + FIGURE_FORMATS:
        supported = ", ".join(REPORT_FORMATS + FIGURE_FORMATS)
        raise VirnucproError(f"-o {output}: cannot write {output.suffix or 'a file without an extension'};"
                             f" use {supported} (.html: the report; the others: the figures)")
    if not output.parent.is_dir():
        raise VirnucproError(f"-o {output}: directory {output.parent} does not exist")
    return output


def _checked(outdir: Path) -> OutputPaths:
    """Refuse a directory without a finished run: plots of half-written tables would mislead."""
    if not outdir.is_dir():
        raise VirnucproError(f"output directory {outdir} not found")
    paths = OutputPaths(outdir)
    leftovers = [paths.journal] + [p for p in paths.owned_files() if p.name.endswith(PARTIAL_SUFFIX)]
    unfinished = next((p for p in leftovers if os.path.lexists(p)), None)
    if unfinished is not None:
        raise VirnucproError(f"{outdir}: the run did not finish ({unfinished.relative_to(outdir)} is there);"
                             " finish it with `virnucpro predict ... --resume` first")
    if not paths.sequences.is_file():
        raise VirnucproError(f"{outdir} holds no finished run ({paths.sequences.name} not found);"
                             " run `virnucpro predict` first")
    return paths


def _run_info(paths: OutputPaths) -> dict:
    """run.json if present; the report only needs it for the threshold and the run details."""
    try:
        run = json.loads(paths.run_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as error:
        raise VirnucproError(f"{paths.run_json}: not valid JSON ({error.msg}, line {error.lineno})") from None
    except UnicodeDecodeError:
        raise VirnucproError(f"{paths.run_json}: not UTF-8 text") from None
    except RecursionError:
        raise VirnucproError(f"{paths.run_json}: nested too deeply to be a virnucpro run.json") from None
    return run if isinstance(run, dict) else {}


def _run_threshold(run: dict, paths: OutputPaths) -> float:
    """The chunk threshold the run used (run.json `parameters.threshold`), else the default."""
    parameters = run.get("parameters")
    threshold = parameters.get("threshold", DEFAULT_THRESHOLD) if isinstance(parameters, dict) else DEFAULT_THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise VirnucproError(f"{paths.run_json}: parameters.threshold must be a number in [0, 1]")
    return float(threshold)


def _run_viral_fraction(run: dict) -> float:
    """The sequence rule the run used (run.json `parameters.viral_fraction`), else the default 0.5."""
    parameters = run.get("parameters")
    value = parameters.get("viral_fraction", 0.5) if isinstance(parameters, dict) else 0.5
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1 else 0.5


def _write_figures(data: ReportData, output: Path) -> list[Path]:
    """The histograms go to OUTPUT, the tracks (when any) to OUTPUT's stem + `_tracks`."""
    written = [output]
    if data.tracks:
        written.append(output.with_name(f"{output.stem}_tracks{output.suffix}"))
    file_format = output.suffix.lower().removeprefix(".")
    for path, figure in zip(written, (histograms_figure, tracks_figure)):
        buffer = io.BytesIO()
        _save(figure(data), buffer, file_format)
        write_bytes_atomic(path, buffer.getvalue())
    return written


def _save(figure: Figure, target: Path | io.BytesIO, file_format: str | None = None) -> None:
    figure.savefig(target, format=file_format, dpi=PNG_DPI)


def _png_tag(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    _save(figure, buffer, "png")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def report_html(paths: OutputPaths, data: ReportData, run: dict) -> str:
    title = f"virnucpro report: {paths.outdir.resolve().name}"
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        _subtitle(paths, data, run),
        _inputs(run),
        "<h2>Summary</h2>", _summary_table(data), _pairs_table(paths),
        "<h2>Score distributions</h2>", _png_tag(histograms_figure(data), "score histograms"),
        "<h2>Score tracks</h2>", _tracks_section(data),
        "<h2>Viral regions</h2>", _regions_table(data),
        "<h2>Top hits</h2>", _hits_table(data.top_hits),
        "<h2>Sequences not called</h2>", _not_called(data),
    ]
    if run:
        details = html.escape(json.dumps(run, indent=2))
        sections += ["<h2>Run</h2>", f"<details><summary>run.json</summary><pre>{details}</pre></details>"]
    body = "\n".join(sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _subtitle(paths: OutputPaths, data: ReportData, run: dict) -> str:
    where = html.escape(str(paths.outdir.resolve()))
    threshold = f"chunk threshold {data.threshold:g}{_threshold_note(data, run, paths)}"
    return f'<p class="muted">{where} &middot; virnucpro {__version__} &middot; {threshold}</p>'


def _threshold_note(data: ReportData, run: dict, paths: OutputPaths) -> str:
    """Sequence calls come from the run; say so when the pictures use another chunk threshold."""
    used = _run_threshold(run, paths)
    return "" if used == data.threshold else f" (sequences were called at {used:g})"


def _inputs(run: dict) -> str:
    """What was run: the inputs and the models (from run.json), at the top of the page."""
    parameters = run.get("parameters") if isinstance(run.get("parameters"), dict) else {}
    models = run.get("models") if isinstance(run.get("models"), dict) else {}
    items = [("inputs", ", ".join(map(str, run.get("inputs") or [])) or "unknown (no run.json)"),
             ("chunk size", str(parameters.get("chunk_size", "unknown")))]
    items += [(f"{kind} model", str(entry.get("path", "")) if isinstance(entry, dict) else str(entry))
              for kind, entry in models.items()]
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>" for name, value in items)
    return f'<table class="inputs" id="inputs">{rows}</table>'


def _summary_table(data: ReportData) -> str:
    total, calls = data.n_sequences, data.calls
    of_all, of_scored = "of all sequences", "of scored chunks"
    rows = [
        ("sequences", total, "", ""),
        ("called virus", calls["virus"], _percent(calls["virus"], total), of_all),
        ("called others", calls["others"], _percent(calls["others"], total), of_all),
        ("no_call (no stop-free frame)", calls["no_call"], _percent(calls["no_call"], total), of_all),
        ("too_short (below --min-length)", calls["too_short"], _percent(calls["too_short"], total), of_all),
        ("viral regions", data.n_regions, "", ""),
        ("chunks", data.n_chunks, "", ""),
        ("chunks with a kept frame (scored)", data.n_chunks_scored, _percent(data.n_chunks_scored, data.n_chunks),
         "of all chunks"),
        (f"viral chunks (score \u2265 {data.threshold:g})", data.n_chunks_viral,
         _percent(data.n_chunks_viral, data.n_chunks_scored), of_scored),
        ("kept frames", data.n_frames, "", ""),
    ]
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{count:,}</td><td>{share}</td><td>{of}</td></tr>"
        for name, count, share, of in rows
    )
    return f'<table id="summary"><tr><th></th><th>count</th><th>share</th><th></th></tr>{cells}</table>'


def _pairs_table(paths: OutputPaths) -> str:
    """A paired-end run's pair calls (pairs.tsv), under the sequence (mate) counts; '' otherwise."""
    if not paths.pairs.is_file():
        return ""
    counts = pair_counts(paths.pairs)
    total, calls = counts["pairs"], counts["pair_calls"]
    rows = [("read pairs", total, "", "")]
    rows += [(f"pairs called {call}", calls[call], _percent(calls[call], total), "of all pairs") for call in CALLS]
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{count:,}</td><td>{share}</td><td>{of}</td></tr>"
        for name, count, share, of in rows
    )
    return (f'<table id="pairs"><tr><th></th><th>count</th><th>share</th><th></th></tr>{cells}</table>'
            '<p class="muted">The sequences above are mates (ID/1, ID/2); a pair is called on the scored chunks'
            " of both mates pooled (pairs.tsv).</p>")


def _regions_table(data: ReportData) -> str:
    if not data.regions:
        return '<p class="muted">No viral region was found (regions.tsv).</p>'
    header = "".join(f"<th>{name}</th>" for name in (
        "region", "start", "end", "length", "scored chunks", "viral chunks", "mean score", "max score", "whole sequence"))
    rows = "".join(
        f"<tr><td>{html.escape(r.region_id)}</td><td>{r.start:,}</td><td>{r.end:,}</td><td>{r.length:,}</td>"
        f"<td>{r.n_chunks_scored}</td><td>{r.n_viral_chunks}</td><td>{stat_text(r.mean_virus_score)}</td>"
        f"<td>{stat_text(r.max_virus_score)}</td><td>{'yes' if r.whole_sequence else 'no'}</td></tr>"
        for r in data.regions
    )
    note = (f'<p class="muted">{data.n_regions:,} viral regions (0-based, end exclusive); the first'
            f" {len(data.regions)} in input order. All are in regions.tsv, the hits sorted by score in"
            " virus_summary.tsv.</p>")
    return f'{note}<table id="regions"><tr>{header}</tr>{rows}</table>'


def _not_called(data: ReportData) -> str:
    count = data.calls["no_call"] + data.calls["too_short"]
    if not count:
        return '<p class="muted">Every sequence was scored.</p>'
    reasons = {"no_call": "no stop-free frame in any chunk", "too_short": "shorter than --min-length"}
    rows = "".join(
        f"<tr><td>{html.escape(row.sequence_id)}</td><td>{row.length:,}</td><td>{row.call}</td>"
        f"<td>{reasons[row.call]}</td></tr>" for row in data.not_called
    )
    note = (f'<p class="muted">{count:,} sequences were not scored: {data.calls["no_call"]:,} no_call,'
            f' {data.calls["too_short"]:,} too_short; the first {len(data.not_called)}:</p>')
    return (f'{note}<table id="not-called"><tr><th>sequence</th><th>length</th><th>call</th><th>why</th></tr>'
            f"{rows}</table>")


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else ""


def _tracks_section(data: ReportData) -> str:
    if not data.tracks:
        return '<p class="muted">No sequence has more than one scored chunk, so there is nothing to scan along.</p>'
    note = (f'<p class="muted">The {len(data.tracks)} sequences with the most chunks (at least two scored);'
            " each bar is one chunk's virus score across its span, shaded where viral chunks lie; the dark"
            " bar on top marks the viral regions found (regions.tsv).</p>")
    return note + _png_tag(tracks_figure(data), "chunk score tracks")


def _hits_table(hits: list[SequenceRow]) -> str:
    if not hits:
        return '<p class="muted">No sequence was called virus.</p>'
    header = "".join(f"<th>{name}</th>" for name in (
        "sequence", "length", "chunks", "scored", "viral", "viral fraction", "max score", "mean score", "call"))
    rows = "".join(
        f"<tr><td>{html.escape(row.sequence_id)}</td><td>{row.length:,}</td><td>{row.n_chunks}</td>"
        f"<td>{row.n_chunks_scored}</td><td>{row.n_viral_chunks}</td><td>{stat_text(row.viral_fraction)}</td>"
        f"<td>{stat_text(row.max_virus_score)}</td><td>{stat_text(row.mean_virus_score)}</td>"
        f'<td class="virus">{row.call}</td></tr>'
        for row in hits
    )
    note = (f'<p class="muted">The {len(hits)} sequences called virus with the most viral chunks,'
            " then the highest mean score.</p>")
    return f"{note}<table><tr>{header}</tr>{rows}</table>"
