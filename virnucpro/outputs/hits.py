"""virus_summary.tsv: the hits table a user opens first (after geNomad's `*_virus_summary.tsv`).

One row per sequence called `virus`, and one per viral region that does not span its whole
sequence (a prophage inside a bacterial contig is listed even when the contig is called `others`).
Rows are sorted by mean virus score, then viral fraction, then length (all descending), then name,
so the table cannot be streamed: it is built from the finished sequences.tsv and regions.tsv
(by the writer at the end of a run, and the same way by merge). Only hits are held in memory.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from virnucpro.fsutil.atomic import write_bytes_atomic
from virnucpro.outputs.formats import NA, stat_text
from virnucpro.outputs.pairs import pair_counts
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.results import CALLS
from virnucpro.outputs.tables import read_regions, read_sequences

VIRUS_SUMMARY_COLUMNS = (
    "name", "sequence_id", "kind", "start", "end", "length", "n_chunks_scored", "viral_fraction",
    "mean_virus_score", "max_virus_score", "n_regions",
)


def write_virus_summary(paths: OutputPaths) -> Path:
    """Write OUTDIR/virus_summary.tsv atomically from the finished tables (it holds hits only)."""
    rows = sorted(_hits(paths), key=lambda row: row[0])
    lines = ["\t".join(VIRUS_SUMMARY_COLUMNS) + "\n", *("\t".join(fields) + "\n" for _, fields in rows)]
    write_bytes_atomic(paths.virus_summary, "".join(lines).encode())
    return paths.virus_summary


def _hits(paths: OutputPaths) -> list[tuple[tuple, tuple[str, ...]]]:
    """(sort key, fields) of every hit."""
    hits = []
    n_regions: Counter[str] = Counter()
    for region in read_regions(paths.regions):
        n_regions[region.sequence_id] += 1
        if not region.whole_sequence:
            fraction = region.n_viral_chunks / region.n_chunks_scored
            fields = (region.region_id, region.sequence_id, "region", str(region.start), str(region.end),
                      str(region.length), str(region.n_chunks_scored), stat_text(fraction),
                      stat_text(region.mean_virus_score), stat_text(region.max_virus_score), NA)
            hits.append((_key(region.mean_virus_score, fraction, region.length, region.region_id), fields))
    for row in read_sequences(paths.sequences):
        if row.call == "virus":
            fields = (row.sequence_id, row.sequence_id, "sequence", "0", str(row.length), str(row.length),
                      str(row.n_chunks_scored), stat_text(row.viral_fraction), stat_text(row.mean_virus_score),
                      stat_text(row.max_virus_score), str(n_regions[row.sequence_id]))
            hits.append((_key(row.mean_virus_score, row.viral_fraction, row.length, row.sequence_id), fields))
    return hits


def result_counts(paths: OutputPaths, pairs: bool = False) -> dict:
    """Sequences per call and regions found, counted from the finished tables (run.json of a merge)."""
    calls = Counter(row.call for row in read_sequences(paths.sequences))
    counts = {"records": calls.total(), "calls": {call: calls[call] for call in CALLS},
              "regions": sum(1 for _ in read_regions(paths.regions))}
    if pairs:  # a paired-end run's
        counts.update(pair_counts(paths.pairs))
    return counts


def _key(mean: float, fraction: float, length: int, name: str) -> tuple:
    """Scores as printed (6 digits), so the order is the same whatever produced the tables."""
    return (-float(stat_text(mean)), -float(stat_text(fraction)), -length, name)
