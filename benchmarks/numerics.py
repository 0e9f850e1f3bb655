"""Numerics report: the fast path (bf16) against an fp32 reference run of the same pipeline.

    python benchmarks/numerics.py FAST_OUTDIR REFERENCE_OUTDIR -o result.json

Compares prediction_results.txt frame by frame (max and mean |score difference|, label agreement)
and prediction_results_highestscore.csv chunk by chunk (call agreement).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle, delimiter="\t"))[1:]


def compare(fast: Path, reference: Path) -> dict:
    frames_fast = _rows(fast / "prediction_results.txt")
    frames_ref = _rows(reference / "prediction_results.txt")
    assert [r[0] for r in frames_fast] == [r[0] for r in frames_ref], "different frames"
    scores_fast = np.array([[float(r[2]), float(r[3])] for r in frames_fast])
    scores_ref = np.array([[float(r[2]), float(r[3])] for r in frames_ref])
    difference = np.abs(scores_fast - scores_ref).max(axis=1) if len(frames_fast) else np.zeros(0)
    chunks_fast = _rows(fast / "prediction_results_highestscore.csv")
    chunks_ref = _rows(reference / "prediction_results_highestscore.csv")
    assert [r[0] for r in chunks_fast] == [r[0] for r in chunks_ref], "different chunks"
    chunk_agree = sum(a[1] == b[1] for a, b in zip(chunks_fast, chunks_ref))
    label_agree = sum(a[1] == b[1] for a, b in zip(frames_fast, frames_ref))
    return {
        "frames": len(frames_fast), "chunks": len(chunks_fast),
        "frame_score_max_abs_diff": float(difference.max()) if difference.size else 0.0,
        "frame_score_mean_abs_diff": float(difference.mean()) if difference.size else 0.0,
        "frame_label_agreement": label_agree / max(len(frames_fast), 1),
        "chunk_call_agreement": chunk_agree / max(len(chunks_fast), 1),
        "chunk_calls_differing": len(chunks_fast) - chunk_agree,
        "reference_virus_fraction": sum(r[1] == "True" for r in chunks_ref) / max(len(chunks_ref), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fast", type=Path)
    parser.add_argument("reference", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    result = compare(args.fast, args.reference)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
