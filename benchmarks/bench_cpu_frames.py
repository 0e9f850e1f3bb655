"""CPU frames path (parse + chunk + translate + select + write) on W1 reads, on one core.

Candidate: `virnucpro.frames.output.write_frames` on W1 (1M 150-bp reads, FASTQ). Baseline: an
original-style implementation (line-by-line parsing, per-codon dict translation, one record at
a time) on a subset, alternated with the candidate on the same subset; both must write the same
bytes. Both are also run under callgrind on a few thousand reads, for instructions per read: on
a shared machine seconds depend on the neighbours, instruction counts do not. Writes
benchmarks/results/cpu_frames.json.

    python benchmarks/bench_cpu_frames.py [--reads 1000000] [--subset 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import product
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reads import write_reads

from virnucpro.frames.output import OUTPUT_NAMES, write_frames

RESULT = Path(__file__).resolve().parent / "results" / "cpu_frames.json"
_CODONS = dict(zip(("".join(c) for c in product("TCAG", repeat=3)),
                   "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"))
_PAIRS = {"A": "T", "T": "A", "C": "G", "G": "C"}


def original_style(fastq: Path, outdir: Path, chunk_size: int) -> None:
    """The original's way: one record at a time, one codon at a time (reads <= chunk size)."""
    outdir.mkdir(parents=True, exist_ok=True)
    with open(fastq) as reads, open(outdir / "chunks.fa", "w") as chunks, \
            open(outdir / "nucleotide.fa", "w") as nucleotides, open(outdir / "protein.faa", "w") as proteins:
        for header in reads:
            sequence = next(reads).rstrip("\n")
            next(reads), next(reads)
            assert len(sequence) <= chunk_size, "the baseline handles reads only"
            chunk_id = header[1:].split()[0] + "_chunk_1"
            chunks.write(f">{chunk_id}\n{sequence}\n")
            upper = sequence.upper()
            reverse = "".join(_PAIRS.get(base, base) for base in reversed(upper))
            for strand, text in (("F", upper), ("R", reverse)):
                for k in (1, 2, 3):
                    protein = "".join(_CODONS.get(text[i : i + 3], "") for i in range(k - 1, len(text) - 2, 3))
                    if protein and "*" not in protein:
                        nucleotides.write(f">{chunk_id}{strand}{k}\n{text[k - 1 : k + 3 * len(protein)]}\n")
                        proteins.write(f">{chunk_id}{strand}{k}\n{protein}\n")


def timed(function, *args) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def host_info() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent, check=False).stdout.strip()
    return {"cpu": model, "cpus_visible": os.cpu_count(), "pinned_to_cpus": sorted(os.sched_getaffinity(0)),
            "python": platform.python_version(), "numpy": np.__version__, "git_commit": commit,
            "git_dirty": bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                                             cwd=Path(__file__).parent, check=False).stdout.strip()),
            "load_average_at_start": os.getloadavg()}


def instructions_per_read(kind: str, reads: Path, count: int, scratch: Path) -> float | None:
    """CPU instructions per read under callgrind (input minus empty input): a figure that, unlike
    seconds, does not depend on what else runs on a shared machine. None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    empty = scratch / "empty.fq"
    empty.write_text("")
    totals = []
    for path in (empty, reads):
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                   __file__, "--run-one", kind, str(path), str(scratch / f"ir-{kind}")]
        log = subprocess.run(command, capture_output=True, text=True, check=True).stderr
        totals.append(int(re.search(r"Collected : (\d+)", log).group(1)))
    return (totals[1] - totals[0]) / count


def run_one(kind: str, reads: Path, outdir: Path) -> None:
    if kind == "candidate":
        write_frames([reads], outdir, 300, "even")
    else:
        original_style(reads, outdir, 300)


def same_outputs(a: Path, b: Path) -> bool:
    return all((a / name).read_bytes() == (b / name).read_bytes() for name in OUTPUT_NAMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=1_000_000)
    parser.add_argument("--subset", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--instruction-reads", type=int, default=2000, help="reads run under callgrind; 0: skip")
    parser.add_argument("--run-one", nargs=3, metavar=("KIND", "READS", "OUTDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        kind, reads, outdir = args.run_one
        run_one(kind, Path(reads), Path(outdir))
        return
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    info = host_info()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        w1, subset = scratch / "w1.fq", scratch / "subset.fq"
        write_reads(w1, args.reads)
        write_reads(subset, args.subset)
        full = [timed(write_frames, [w1], scratch / "full", 300, "even") for _ in range(args.repeats)]
        candidate, baseline = [], []
        for _ in range(args.repeats):  # alternate, same input
            candidate.append(timed(write_frames, [subset], scratch / "candidate", 300, "even"))
            baseline.append(timed(original_style, subset, scratch / "baseline", 300))
        identical = same_outputs(scratch / "candidate", scratch / "baseline")
        instructions = {}
        if args.instruction_reads:
            small = scratch / "instructions.fq"
            write_reads(small, args.instruction_reads)
            instructions = {kind: instructions_per_read(kind, small, args.instruction_reads, scratch)
                            for kind in ("candidate", "baseline")}
        frames = (scratch / "full" / "protein.faa").read_text().count(">")

    def rate(runs, n, key):
        return n / statistics.median(r[key] for r in runs)

    result = {
        "benchmark": "cpu_frames", "workload": f"W1 {args.reads} x 150-bp reads, FASTQ, chunk 300, even",
        "host": info, "load_average_at_end": os.getloadavg(), "kept_frames": frames,
        "candidate_w1": {"runs": full, "reads_per_s_wall": rate(full, args.reads, "wall_s"),
                         "reads_per_s_cpu": rate(full, args.reads, "cpu_s")},
        "subset": {"reads": args.subset, "outputs_identical": identical,
                   "candidate_runs": candidate, "baseline_runs": baseline,
                   "candidate_reads_per_s_wall": rate(candidate, args.subset, "wall_s"),
                   "baseline_reads_per_s_wall": rate(baseline, args.subset, "wall_s"),
                   "candidate_reads_per_s_cpu": rate(candidate, args.subset, "cpu_s"),
                   "baseline_reads_per_s_cpu": rate(baseline, args.subset, "cpu_s")},
    }
    result["speedup_vs_baseline_cpu"] = (result["subset"]["candidate_reads_per_s_cpu"]
                                         / result["subset"]["baseline_reads_per_s_cpu"])
    if instructions.get("candidate"):
        result["instructions_per_read"] = instructions | {
            "reads": args.instruction_reads, "ratio": instructions["baseline"] / instructions["candidate"]}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result.get(k) for k in ("candidate_w1", "speedup_vs_baseline_cpu", "instructions_per_read")},
                     indent=2))


if __name__ == "__main__":
    main()
