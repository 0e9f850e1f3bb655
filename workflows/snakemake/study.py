"""The study table of the Snakemake workflow: one row per sample, counted from its sequences.tsv.

Kept to the columns every finished run has; `virnucpro plot` makes each sample's report.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

RESULT_FILES = ["prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv",
                "sequences.tsv", "run.json"]
COLUMNS = ["sample", "sequences", "virus", "others", "no_call", "viral_fraction", "report"]


def sample_row(name: str, outdir: Path) -> dict[str, str]:
    """Counts of calls over one sample's sequences.tsv; viral_fraction is over called sequences."""
    with open(outdir / "sequences.tsv", newline="", encoding="utf-8") as handle:
        calls = [row["call"] for row in csv.DictReader(handle, delimiter="\t")]
    counts = {call: calls.count(call) for call in ("virus", "others", "no_call")}
    called = counts["virus"] + counts["others"]
    fraction = f"{counts['virus'] / called:.4f}" if called else "NA"
    return {"sample": name, "sequences": str(len(calls)), **{k: str(v) for k, v in counts.items()},
            "viral_fraction": fraction, "report": f"../{name}/report.html"}


def write_study_table(sample_dirs: dict[str, Path], path: Path) -> None:
    """Write PATH (via PATH.partial) with one row per sample, in sheet order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        for name, outdir in sample_dirs.items():
            writer.writerow(sample_row(name, outdir))
    os.replace(partial, path)
