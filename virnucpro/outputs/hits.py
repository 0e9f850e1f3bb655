"""virus_summary.tsv: the hits table a user opens first (after geNomad's `*_virus_summary.tsv`).

One row per sequence called `virus`, and one per viral region that does not span its whole
sequence (a prophage inside a bacterial contig is listed even when the contig is called `others`).
Rows are sorted by mean virus score, then viral fraction, then length (all descending), then name,
so the table cannot be streamed: it is built from the finished sequences.tsv and regions.tsv
(by the writer at the end of a run, and the same way by merge). Millions of reads can be called
virus, so the sort is an external one: at most `SORT_RUN_ROWS` rows are sorted in memory at a
time, each full run is spilled to a file in the state directory, and the runs are merged
(`heapq.merge`, stable like `sorted`, so the table is the same however many runs there were).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from itertools import chain, islice
from pathlib import Path

from virnucpro.fsutil.atomic import write_chunks_atomic
from virnucpro.fsutil.safe_files import open_exclusive
from virnucpro.outputs.formats import NA, stat_text
from virnucpro.outputs.pairs import pair_counts
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.results import CALLS
from virnucpro.outputs.tables import read_regions, read_sequences

VIRUS_SUMMARY_COLUMNS = (
    "name", "sequence_id", "kind", "start", "end", "length", "n_chunks_scored", "viral_fraction",
    "mean_virus_score", "max_virus_score", "n_regions",
)


SORT_RUN_ROWS = 50_000  # hits sorted in memory at a time (~1 kB each); more are spilled in sorted runs
_WRITE_ROWS = 4096  # rows joined per write of the final table


def write_virus_summary(paths: OutputPaths) -> Path:
    """Write OUTDIR/virus_summary.tsv atomically from the finished tables (external sort of the hits)."""
    runs: list[Path] = []
    try:
        with ExitStack() as open_runs:
            rows = _sorted_rows(paths, runs, open_runs)
            header = "\t".join(VIRUS_SUMMARY_COLUMNS) + "\n"
            write_chunks_atomic(paths.virus_summary, (
                "".join(batch).encode() for batch in _batches(chain([header], rows), _WRITE_ROWS)))
    finally:
        for run in runs:
            run.unlink(missing_ok=True)
    return paths.virus_summary


def _sorted_rows(paths: OutputPaths, runs: list[Path], open_runs: ExitStack) -> Iterator[str]:
    """Every hit row (a line) in table order; full runs of SORT_RUN_ROWS rows are spilled to
    `paths.summary_run(n)` (appended to `runs`, for the caller to remove) and read back merged."""
    for batch in _batches(_hit_rows(paths), SORT_RUN_ROWS):
        batch.sort(key=_row_key)
        if len(batch) < SORT_RUN_ROWS and not runs:  # everything fits in one run: no file
            return iter(batch)
        run = paths.summary_run(len(runs))
        if not runs:
            run.parent.mkdir(exist_ok=True)
        runs.append(run)
        with open_exclusive(run) as spill:
            spill.writelines(row.encode() for row in batch)
    readers = [_read_run(open_runs.enter_context(open(run, "rb"))) for run in runs]
    return heapq.merge(*readers, key=_row_key)


def _read_run(handle) -> Iterator[str]:
    return (line.decode() for line in handle)


def _batches(rows: Iterable[str], size: int) -> Iterator[list[str]]:
    rows = iter(rows)
    while batch := list(islice(rows, size)):
        yield batch


def _hit_rows(paths: OutputPaths) -> Iterator[str]:
    """Every hit as its table line, regions first, each table in file order (the sort is stable)."""
    n_regions: Counter[str] = Counter()
    for region in read_regions(paths.regions):
        n_regions[region.sequence_id] += 1
        if not region.whole_sequence:
            fraction = region.n_viral_chunks / region.n_chunks_scored
            yield _line(region.region_id, region.sequence_id, "region", str(region.start), str(region.end),
                        str(region.length), str(region.n_chunks_scored), stat_text(fraction),
                        stat_text(region.mean_virus_score), stat_text(region.max_virus_score), NA)
    for row in read_sequences(paths.sequences):
        if row.call == "virus":
            yield _line(row.sequence_id, row.sequence_id, "sequence", "0", str(row.length), str(row.length),
                        str(row.n_chunks_scored), stat_text(row.viral_fraction), stat_text(row.mean_virus_score),
                        stat_text(row.max_virus_score), str(n_regions[row.sequence_id]))


def _line(*fields: str) -> str:
    return "\t".join(fields) + "\n"


_NAME, _LENGTH, _FRACTION, _MEAN = (VIRUS_SUMMARY_COLUMNS.index(c) for c in ("name", "length", "viral_fraction",
                                                                            "mean_virus_score"))


def _row_key(line: str) -> tuple:
    """Mean score, viral fraction, length (descending), then name; scores as printed (6 digits), so
    the order is the same whatever produced the tables."""
    fields = line.split("\t")
    return (-float(fields[_MEAN]), -float(fields[_FRACTION]), -int(fields[_LENGTH]), fields[_NAME])


def result_counts(paths: OutputPaths, pairs: bool = False) -> dict:
    """Sequences per call and regions found, counted from the finished tables (run.json of a merge)."""
    calls = Counter(row.call for row in read_sequences(paths.sequences))
    counts = {"records": calls.total(), "calls": {call: calls[call] for call in CALLS},
              "regions": sum(1 for _ in read_regions(paths.regions))}
    if pairs:  # a paired-end run's
        counts.update(pair_counts(paths.pairs))
    return counts

