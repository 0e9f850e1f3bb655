"""Peak RSS of `virnucpro predict` on single-record FASTA files of growing length (issue #15, point 10).

Each input is one random-base record (60-column lines, gzip level 1), generated on the fly into a
temporary directory and deleted afterwards. predict runs on the CPU with tiny random-weight models
(the models do not change the host memory of the reading, chunking and writing paths), in a child
process whose peak RSS (VmHWM) is sampled from /proc; a run that passes `--timeout` is stopped and
its peak so far, wall time and the chunks it had written are recorded. `--baseline SRC` runs the
same command with another checkout first on PYTHONPATH (e.g. the code before this change) for the
lengths given in `--baseline-lengths`. Writes benchmarks/results/long_record_rss.json.

    python benchmarks/bench_long_record_rss.py [--lengths 10e6 100e6 1e9] [--timeout 600]
        [--composition uniform|at-rich] [--baseline /path/to/old/checkout]
"""

from __future__ import annotations

import argparse
import gzip
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
RESULT = ROOT / "benchmarks" / "results" / "long_record_rss.json"
_LINE = 60


COMPOSITIONS = {"uniform": (0.25, 0.25, 0.25, 0.25), "at-rich": (0.4, 0.05, 0.15, 0.4)}  # A C G T


def write_record(path: Path, length: int, composition: str = "uniform", seed: int = 0) -> None:
    """One FASTA record of `length` random bases, 60 per line, gzip level 1, 6 Mb at a time.
    `at-rich` bases put a stop codon in nearly every frame of every chunk (few kept frames), so
    the tiny models' CPU time stops dominating and longer records fit in the time budget."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    weights = COMPOSITIONS[composition]
    step = _LINE * 100_000
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(b">chr1 random bases\n")
        for start in range(0, length, step):
            count = min(step, length - start)
            bases = letters[rng.choice(4, size=count, p=weights).astype(np.uint8)]
            rows = -(-count // _LINE)
            padded = np.full(rows * (_LINE + 1), ord("\n"), dtype=np.uint8)
            grid = padded.reshape(rows, _LINE + 1)
            full = count // _LINE
            grid[:full, :_LINE] = bases[: full * _LINE].reshape(full, _LINE)
            tail = count - full * _LINE
            text = padded.tobytes()
            if tail:
                text = text[: full * (_LINE + 1)] + bases[full * _LINE :].tobytes() + b"\n"
            out.write(text)


def peak_rss_run(command: list[str], env: dict, timeout: float, out: Path) -> dict:
    """Run `command`; sample its VmHWM every 0.2 s; stop it at `timeout` seconds."""
    began = time.monotonic()
    # cwd outside any checkout: `python -m` puts the cwd first on sys.path, before PYTHONPATH
    process = subprocess.Popen(command, env=env, cwd=out.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    finished = True
    while process.poll() is None:
        peak_kib = max(peak_kib, _vm_hwm_kib(process.pid))
        if time.monotonic() - began > timeout:
            finished = False
            process.kill()
            break
        time.sleep(0.2)
    _, stderr = process.communicate()
    wall = time.monotonic() - began
    chunks = _chunks_written(out)
    return {"finished": finished, "returncode": process.returncode, "peak_rss_mib": round(peak_kib / 1024, 1),
            "wall_seconds": round(wall, 1), "chunks_written": chunks,
            "stderr_tail": stderr.decode(errors="replace")[-400:] if process.returncode else ""}


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _chunks_written(out: Path) -> int:
    for name in ("chunks.tsv", "chunks.tsv.partial"):
        path = out / name
        if path.is_file():
            with open(path, "rb") as rows:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: rows.read(1 << 20), b"")) - 1
    return 0


def _commit(source: Path = ROOT) -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                           capture_output=True, text=True, check=False).stdout.strip()
    return done.stdout.strip() + ("-dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[10e6, 100e6, 1e9])
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with (PYTHONPATH)")
    parser.add_argument("--baseline-lengths", type=float, nargs="*", default=[10e6])
    parser.add_argument("--composition", choices=sorted(COMPOSITIONS), default="uniform")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    from virnucpro.devtools.random_models import write_random_models

    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-long-record-") as work:
        work = Path(work)
        write_random_models(work / "models", size="tiny", seed=0)
        model_args = ["--esm", str(work / "models" / "esm2"), "--dnabert", str(work / "models" / "dnabert-s"),
                      "--classifier", str(work / "models" / "classifier.pth"), "--device", "cpu", "-q"]
        candidates = [("this commit", ROOT, args.lengths)]
        if args.baseline:
            candidates.append(("baseline", args.baseline.resolve(), args.baseline_lengths))
        for label, source, lengths in candidates:
            for length in map(int, lengths):
                fasta = work / f"record_{length}.fa.gz"
                if not fasta.exists():
                    write_record(fasta, length, args.composition)
                out = work / f"out_{label.replace(' ', '_')}_{length}"
                env = {**os.environ, "PYTHONPATH": str(source)}
                command = [sys.executable, "-m", "virnucpro", "predict", str(fasta), "-o", str(out), *model_args]
                run = {"code": label, "source": str(source), "source_commit": _commit(source), "record_bases": length,
                       "input_gz_bytes": fasta.stat().st_size,
                       **peak_rss_run(command, env, args.timeout, out)}
                print(json.dumps(run), flush=True)
                runs.append(run)
                subprocess.run(["rm", "-rf", str(out)], check=False)
    result = {"benchmark": "peak RSS of predict on one-record FASTA (tiny random models, CPU)",
              "commit": _commit(), "python": platform.python_version(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "composition": args.composition, "timeout_seconds": args.timeout,
              "runs": runs}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
