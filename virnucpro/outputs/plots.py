"""Figures of a run: chunk score tracks along long sequences (a prophage-region scan) and score
histograms. matplotlib is imported here only, and Figure objects are used without pyplot, so no
global backend state or display is involved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virnucpro.outputs.summary import HISTOGRAM_BINS, Histogram, ReportData, Track

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

VIRUS_COLOR = "#d62728"
OTHERS_COLOR = "#1f3a93"
UNSCORED_COLOR = "#b0b0b0"
TRACK_HEIGHT_IN = 1.9


def tracks_figure(data: ReportData) -> Figure:
    """One panel per tracked sequence: each chunk's virus score drawn across its span."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(11, TRACK_HEIGHT_IN * len(data.tracks) + 0.7), layout="constrained")
    axes = figure.subplots(len(data.tracks), 1, squeeze=False)[:, 0]
    for ax, track in zip(axes, data.tracks):
        _draw_track(ax, track, data.threshold)
    axes[-1].set_xlabel("position (bp)")
    figure.legend(
        handles=[
            Line2D([], [], color=VIRUS_COLOR, lw=3, label=f"viral chunk (score \u2265 {data.threshold:g})"),
            Line2D([], [], color=OTHERS_COLOR, lw=3, label="other chunk"),
            Line2D([], [], color=UNSCORED_COLOR, lw=3, label="no kept frame"),
            Line2D([], [], color="0.35", lw=1, ls="--", label="threshold"),
        ],
        loc="outside upper center", ncols=4, frameon=False, fontsize=9,
    )
    return figure


def _draw_track(ax: Axes, track: Track, threshold: float) -> None:
    row = track.sequence
    scored = [chunk for chunk in track.chunks if chunk.virus_score is not None]
    viral = [chunk for chunk in scored if chunk.virus_score >= threshold]
    others = [chunk for chunk in scored if chunk.virus_score < threshold]
    unscored = [chunk for chunk in track.chunks if chunk.virus_score is None]
    for start, end in _merged_spans(viral):
        ax.axvspan(start, end, color=VIRUS_COLOR, alpha=0.12, lw=0)
    for chunks, color in ((others, OTHERS_COLOR), (viral, VIRUS_COLOR)):
        ax.hlines([c.virus_score for c in chunks], [c.start for c in chunks], [c.end for c in chunks],
                  color=color, lw=2.5)
    ax.hlines([-0.05] * len(unscored), [c.start for c in unscored], [c.end for c in unscored],
              color=UNSCORED_COLOR, lw=4)
    ax.axhline(threshold, color="0.35", lw=1, ls="--")
    ax.set_xlim(0, max(row.length, 1))
    ax.set_ylim(-0.1, 1.05)
    ax.set_yticks([0, 0.5, 1])
    ax.set_ylabel("virus score", fontsize=9)
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax.xaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
    ax.set_title(
        f"{row.sequence_id}   {row.length:,} bp, {len(viral)}/{len(scored)} scored chunks viral,"
        f" sequence call: {row.call}", loc="left", fontsize=10, parse_math=False,  # IDs may hold `$...$`
    )
    ax.spines[["top", "right"]].set_visible(False)


def _merged_spans(chunks: list) -> list[tuple[int, int]]:
    """Union of the chunks' [start, end) spans, so overlapping viral chunks shade one region."""
    spans: list[tuple[int, int]] = []
    for chunk in sorted(chunks, key=lambda c: c.start):
        if spans and chunk.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], chunk.end))
        else:
            spans.append((chunk.start, chunk.end))
    return spans


def histograms_figure(data: ReportData) -> Figure:
    """Chunk virus scores and per-sequence viral fractions, coloured by the side of the cut."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 3.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    _draw_histogram(left, data.chunk_scores, data.threshold, "chunk virus score", "chunks")
    _draw_histogram(right, data.viral_fractions, 0.5, "viral fraction of scored chunks", "sequences")
    return figure


def _draw_histogram(ax: Axes, histogram: Histogram, cut: float, xlabel: str, unit: str) -> None:
    width = 1 / HISTOGRAM_BINS
    lefts = [i * width for i in range(HISTOGRAM_BINS)]
    colors = [VIRUS_COLOR if left + width / 2 >= cut else OTHERS_COLOR for left in lefts]
    ax.bar(lefts, histogram.counts, width=width, align="edge", color=colors, edgecolor="white", lw=0.3)
    ax.axvline(cut, color="0.35", lw=1, ls="--")
    if max(histogram.counts) > 0:
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.7)  # a bin holding a single item stays visible
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{unit} (log scale)")
    ax.set_title(f"{sum(histogram.counts):,} scored {unit}", loc="left", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
