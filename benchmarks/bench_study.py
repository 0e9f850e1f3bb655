"""A study of N samples x M read pairs as ONE `predict --samples` run vs separate runs (issue #19).

Reads are W1-style (benchmarks/reads.py): each pair is ONE synthetic fragment (`--fragment` bp,
default 400, drawn like a W1 read) whose mates are its first `--length` bases (R1) and the reverse
complement of its last `--length` bases (R2), IDs `W1_n/1` and `W1_n/2`; each sample draws its own
fragments (seed = sample number). A sample is r1 + r2 in the sheet (read as --paired); with
`--single-end` its mates go into one single-end file instead (the same 2 x M sequences, IDs distinct
by their /1 /2), and the JSON says `"layout": "single-end mates"`.

The study runs once. Separate runs are `predict SAMPLE -o DIR`, one process each as a user runs
them, for the first K samples only (default 5, to stay inside a 10-minute call); the JSON gives
their mean wall time and the extrapolation to N samples (`separate.extrapolated_total_seconds`,
marked as such). Recorded: total wall time, model loads, stream seconds, GPU busy over the study's
stream (NVML, from study.json), per-sample seconds (samples.tsv). Models are random-weight, full
size by default (`--size tiny` runs on a CPU in seconds).

    python benchmarks/bench_study.py [--samples 50] [--pairs 2000] [--separate 5] [--size full]
        [--device auto] [-o benchmarks/results/study_h200.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from virnucpro.devtools.random_models import write_random_models  # noqa: E402
from virnucpro.devtools.workloads import sample_reads  # noqa: E402

_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def write_sample(directory: Path, index: int, pairs: int, fragment: int, length: int, paired: bool) -> list[Path]:
    """One sample's FASTQ file(s): mates from the same fragment."""
    quality = "I" * length
    mates = ([directory / f"s{index:03d}_R1.fq", directory / f"s{index:03d}_R2.fq"] if paired
             else [directory / f"s{index:03d}.fq"])
    handles = [open(path, "w") for path in mates]
    try:
        for name, sequence in sample_reads(pairs, fragment, seed=1000 + index):
            read_id = name.split()[0]
            r1, r2 = sequence[:length], sequence[-length:].translate(_COMPLEMENT)[::-1]
            first, second = (handles[0], handles[1]) if paired else (handles[0], handles[0])
            first.write(f"@{read_id}/1\n{r1}\n+\n{quality}\n")
            second.write(f"@{read_id}/2\n{r2}\n+\n{quality}\n")
    finally:
        for handle in handles:
            handle.close()
    return mates


def predict(args: list[str]) -> float:
    """Wall seconds of one `virnucpro predict` process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "virnucpro", "predict", *args, "-q"], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    return time.perf_counter() - start


def run(arguments: argparse.Namespace) -> dict:
    paired = not arguments.single_end
    with tempfile.TemporaryDirectory(prefix="bench_study_") as tmp:
        tmp = Path(tmp)
        write_random_models(tmp / "models", size=arguments.size, seed=0)
        model_args = ["--esm", str(tmp / "models" / "esm2"), "--dnabert", str(tmp / "models" / "dnabert-s"),
                      "--classifier", str(tmp / "models" / "classifier.safetensors"), "--device", arguments.device]
        data = tmp / "data"
        data.mkdir()
        files = [write_sample(data, i, arguments.pairs, arguments.fragment, arguments.length, paired)
                 for i in range(arguments.samples)]
        sheet = data / "sheet.tsv"
        sheet.write_text("sample\tr1\tr2\n" + "".join(
            f"s{i:03d}\t{mates[0].name}\t{mates[1].name if paired else ''}\n" for i, mates in enumerate(files)))
        study_wall = predict(["--samples", str(sheet), "-o", str(tmp / "study"), *model_args])
        study = json.loads((tmp / "study" / "study.json").read_text())
        with open(tmp / "study" / "samples.tsv", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        separate = []
        for i, mates in enumerate(files[: arguments.separate]):
            out = tmp / f"single{i}"
            inputs = [str(m) for m in mates] + (["--paired"] if paired else [])
            wall = predict([*inputs, "-o", str(out), *model_args])
            summary = json.loads((out / "run.json").read_text())
            separate.append({"sample": f"s{i:03d}", "wall_seconds": wall,
                             "model_load_seconds": summary["timings_seconds"]["model_load"],
                             "stream_seconds": summary["timings_seconds"]["stream"],
                             "device_busy_fraction": summary["device_busy_fraction"]})
    mean_wall = float(np.mean([s["wall_seconds"] for s in separate])) if separate else None
    extrapolated = mean_wall * arguments.samples if mean_wall is not None else None
    return {
        "benchmark": "bench_study.py", "issue": 19, "machine": platform.node(), "python": platform.python_version(),
        "settings": {"samples": arguments.samples, "pairs_per_sample": arguments.pairs, "size": arguments.size,
                     "device": arguments.device, "fragment": arguments.fragment, "read_length": arguments.length,
                     "layout": "paired (r1 + r2 per sample)" if paired else "single-end mates (R1 and R2 of each"
                     " fragment interleaved in one file, IDs /1 /2)",
                     "mates": "both mates from the same synthetic fragment"},
        "study": {"wall_seconds": study_wall, "model_loads": study["model_loads"],
                  "model_load_seconds": study["timings_seconds"]["model_load"],
                  "stream_seconds": study["timings_seconds"]["stream"],
                  "gpu_utilization": study["gpu_utilization"],
                  "gpu_busy_over_stream": study["device_busy_fraction"],
                  "records": study["totals"]["records"],
                  "per_sample_seconds": {row["sample"]: float(row["seconds"]) for row in rows}},
        "separate": {"runs_measured": len(separate), "runs": separate, "model_loads": arguments.samples,
                     "mean_wall_seconds": mean_wall,
                     "extrapolated_total_seconds": extrapolated,
                     "note": f"{len(separate)} of {arguments.samples} separate runs measured; the total is their"
                             f" mean wall time x {arguments.samples} (extrapolated, not measured)"},
        "speedup": extrapolated / study_wall if extrapolated else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=2000, help="read pairs per sample")
    parser.add_argument("--separate", type=int, default=5, help="separate runs measured (then extrapolated)")
    parser.add_argument("--size", choices=["tiny", "full"], default="full")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--fragment", type=int, default=400)
    parser.add_argument("--length", type=int, default=150)
    parser.add_argument("--single-end", action="store_true", help="both mates in one single-end file per sample")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "benchmarks" / "results" / "study.json")
    arguments = parser.parse_args()
    result = run(arguments)
    arguments.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("study", "speedup")}, indent=2)[:3000])


if __name__ == "__main__":
    main()
