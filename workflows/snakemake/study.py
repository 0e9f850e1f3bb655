"""The study table of the Snakemake workflow: one row per sample, counted from its sequences.tsv
(and, for a paired sample, its pairs.tsv).

Kept to the columns every finished run has; `virnucpro plot` makes each sample's report.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

RESULT_FILES = ["prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv",
                "sequences.tsv", "run.json"]
PAIRED_FILES = ["pairs.tsv"]  # a paired sample's directory holds these too
COLUMNS = ["sample", "sequences", "virus", "others", "no_call", "viral_fraction", "pairs", "virus_pairs", "report"]


def _calls(table: Path) -> list[str]:
    with open(table, newline="", encoding="utf-8") as handle:
        return [row["call"] for row in csv.DictReader(handle, delimiter="\t")]


def sample_row(name: str, outdir: Path, paired: bool) -> dict[str, str]:
    """Counts of calls over one sample's sequences.tsv (mates count separately); viral_fraction is
    over called sequences. pairs and virus_pairs count pairs.tsv's pair calls (empty: single-end)."""
    calls = _calls(outdir / "sequences.tsv")
    pair_calls = _calls(outdir / "pairs.tsv") if paired else None
    counts = {call: calls.count(call) for call in ("virus", "others", "no_call")}
    called = counts["virus"] + counts["others"]
    fraction = f"{counts['virus'] / called:.4f}" if called else "NA"
    return {"sample": name, "sequences": str(len(calls)), **{k: str(v) for k, v in counts.items()},
            "viral_fraction": fraction, "pairs": "" if pair_calls is None else str(len(pair_calls)),
            "virus_pairs": "" if pair_calls is None else str(pair_calls.count("virus")),
            "report": f"../{name}/report.html"}


def write_study_table(sample_dirs: dict[str, Path], path: Path, paired: frozenset[str] = frozenset()) -> None:
    """Write PATH (via PATH.partial) with one row per sample, in sheet order; `paired`: the paired samples."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        for name, outdir in sample_dirs.items():
            writer.writerow(sample_row(name, outdir, name in paired))
    os.replace(partial, path)
