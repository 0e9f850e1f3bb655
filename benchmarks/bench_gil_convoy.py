"""Why the streaming engine lowers the interpreter's switch interval: measured side by side.

PyTorch releases the GIL inside every op. When another thread is busy in Python, the default 5 ms
switch interval lets that thread keep the GIL ~5 ms each time the op-issuing thread lets go of it
(the "convoy effect"); a GPU fed with short kernels then waits for its host thread.

  python benchmarks/bench_gil_convoy.py -o benchmarks/results/gil_convoy.json [--reads 20000]

Part 1 (micro): latency of a small torch op in one thread while another thread runs pure Python,
and that Python thread's own speed, at several intervals. Part 2 (whole pipeline, CPU, tiny
random models): `virnucpro predict` stream time with the engine's interval vs the default 5 ms,
alternated. Tiny models make the worker issue-bound, as DNABERT-S's short kernels make it on a GPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

INTERVALS = (5e-3, 5e-4, 2e-4, 1e-4)


def _python_work() -> None:
    sum(i * i for i in range(1000))


def micro(interval: float, ops: int = 2000) -> dict:
    """Per-op latency alone / beside a busy Python thread, and that thread's rate alone / beside."""
    sys.setswitchinterval(interval)
    x = torch.randn(16, 16)

    def issue(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            torch.add(x, x)
        return (time.perf_counter() - start) / n

    def python_rate(stop: threading.Event, out: list) -> None:
        count, start = 0, time.perf_counter()
        while not stop.is_set():
            _python_work()
            count += 1
        out.append(count / (time.perf_counter() - start))

    alone = issue(ops)
    stop, rate = threading.Event(), []
    thread = threading.Thread(target=python_rate, args=(stop, rate))
    thread.start()
    beside = issue(ops)
    stop.set()
    thread.join()
    stop, rate_alone = threading.Event(), []
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    python_rate(stop, rate_alone)
    return {"interval_ms": interval * 1e3, "op_us_alone": alone * 1e6, "op_us_beside_python": beside * 1e6,
            "python_rate_alone": rate_alone[0], "python_rate_beside_ops": rate[0]}  # fmt: skip


def pipeline(reads: int, workdir: Path, repeats: int) -> dict:
    """Stream seconds of the CPU pipeline with tiny models, engine interval vs the default."""
    from virnucpro.pipeline import stream
    from virnucpro.pipeline.benchmark import run_benchmark

    logger = logging.getLogger("bench")
    seconds: dict[str, list[float]] = {"engine_0.2ms": [], "default_5ms": []}
    for _ in range(repeats):
        for name, interval in (("engine_0.2ms", 2e-4), ("default_5ms", 5e-3)):
            stream.SWITCH_INTERVAL_SECONDS = interval
            sys.setswitchinterval(5e-3)
            result = run_benchmark(reads, "tiny", workdir, logger, esm_only=False, device="cpu", threads=1)
            seconds[name].append(result["stream_seconds"])
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    return {"reads": reads, "seconds": seconds, "median_seconds": medians,
            "speedup": medians["default_5ms"] / medians["engine_0.2ms"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/virnucpro-gil-bench"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = {"python": sys.version.split()[0], "torch": torch.__version__,
              "micro": [micro(interval) for interval in INTERVALS]}  # fmt: skip
    for row in result["micro"]:
        print(json.dumps(row), flush=True)
    result["pipeline_cpu_tiny"] = pipeline(args.reads, args.workdir, args.repeats)
    print(json.dumps(result["pipeline_cpu_tiny"]), flush=True)
    sys.setswitchinterval(5e-3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
