"""Time to first result (issue #20): `virnucpro predict` of W1-style reads end to end, BEFORE and AFTER,
as separate processes on the same machine in the same call, with random-weight models.

For each run: wall time from process start to exit, the time to the first written block (the
journal's first checkpoint, polled from outside, so the same clock for both code trees), the time
from run.json appearing (the run's last file) to the process exit, load + warm-up time and, for
AFTER, its load phases (run.json `timings_seconds.load_phases`: file reads, kernel set-up, each
warm-up batch, the compiler imports and the model-file hashing on their threads, ...).

Runs, in order (each skipped once `--budget-seconds` is spent; the JSON is rewritten after each run,
so a cut-off call still leaves what it measured):
  after_cold   empty compile caches (fresh TORCHINDUCTOR_CACHE_DIR / TRITON_CACHE_DIR) and a cold page
               cache (fsync + posix_fadvise(DONTNEED) on every model file; `page_cache` says what
               fraction of the model bytes was still resident afterwards, via mincore)
  before_warm  BEFORE's code (`--before`, a directory holding its `virnucpro` package): page cache
               and compile caches warm (from after_cold; the same cache directories)
  after_warm   AFTER's code, the same command
  before_warm2, after_warm2  repeats, for the spread

    python benchmarks/bench_first_result.py --size tiny --reads 200 --device cpu -o /tmp/fr.json  # seconds, on a CPU
    python3 benchmarks/bench_first_result.py --size full --reads 2000 --before BEFORE_DIR -o OUT.json
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # the AFTER code tree (this checkout)
WARM_LOAD_TARGET_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["tiny", "full"], default="full")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--before", type=Path, help="directory holding BEFORE's virnucpro package")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "virnucpro-first-result")
    parser.add_argument("--budget-seconds", type=float, default=1e9, help="start no run after this many seconds")
    parser.add_argument("--deadline-seconds", type=float, default=1e9,
                        help="kill a run still going this many seconds after the start (its entry says so)")
    parser.add_argument("--repeats", type=int, default=2, help="warm runs of each code tree")
    parser.add_argument("--probe-seconds", type=float, default=0.0,
                        help="after the runs, this long for the ESM-2 read probe (GPU only; 0: none)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    models, reads = prepare(args.workdir, args.size, args.reads)
    result = {"workload": {"reads": args.reads, "read_length": 150, "model_size": args.size, "device": args.device},
              "machine": machine(), "prepare_seconds": time.perf_counter() - started, "runs": {}}
    caches = args.workdir / "compile-caches"
    plan = [("after_cold", HERE, True)]  # it warms the page cache and the compile caches for both trees
    for repeat in range(1, args.repeats + 1):
        suffix = "" if repeat == 1 else str(repeat)
        if args.before:  # BEFORE first: a call cut short by its budget still has one of each
            plan.append((f"before_warm{suffix}", args.before.resolve(), False))
        plan.append((f"after_warm{suffix}", HERE, False))
    for name, code, cold in plan:
        if time.perf_counter() - started > args.budget_seconds:
            result["runs"][name] = {"skipped": "out of the call's time budget"}
            continue
        if cold:
            caches = args.workdir / f"compile-caches-{time.time_ns()}"  # fresh: nothing compiled yet
        page_cache = drop_page_cache(models) if cold else None
        run = predict(code, models, reads, args.workdir / f"out-{name}", caches, args.device,
                      started + args.deadline_seconds)
        run["page_cache"] = page_cache
        result["runs"][name] = run
        result["summary"] = summarize(result["runs"])
        write(args.output, result)
        print(f"{name}: {json.dumps({k: run.get(k) for k in ('wall_seconds', 'first_block_seconds', 'load_seconds')})}",
              flush=True)
    result["summary"] = summarize(result["runs"])
    if args.probe_seconds > 0:
        try:
            result["esm2_read_probe"] = probe_esm2_reads(models / "esm2", time.perf_counter() + args.probe_seconds)
        except Exception as error:  # noqa: BLE001 (the runs above are what counts; say why the probe failed)
            result["esm2_read_probe"] = {"failed": repr(error)}
    write(args.output, result)


def prepare(workdir: Path, size: str, reads: int) -> tuple[Path, Path]:
    """Random-weight models of `size` and the W1-style reads (kept in `workdir` for reuse)."""
    sys.path.insert(0, str(HERE))
    from virnucpro.devtools.random_models import write_random_models
    from virnucpro.devtools.workloads import write_reads

    models, reads_file = workdir / f"models-{size}", workdir / f"w1-{reads}.fa"
    workdir.mkdir(parents=True, exist_ok=True)
    if not (models / "classifier.pth").is_file():
        write_random_models(models, size=size, seed=0)
    if not reads_file.is_file():
        write_reads(reads_file, reads)
    return models, reads_file


def predict(code: Path, models: Path, reads: Path, out: Path, caches: Path, device: str,
            deadline: float = float("inf")) -> dict:
    """One `predict` in its own process with `code` first on the path; timed from outside; killed
    at `deadline` (a perf_counter time)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(code), *_extra_path()]),
               TORCHINDUCTOR_CACHE_DIR=str(caches / "inductor"), TRITON_CACHE_DIR=str(caches / "triton"))
    command = [sys.executable, "-m", "virnucpro", "predict", str(reads), "-o", str(out), "--force",
               "--esm", str(models / "esm2"), "--dnabert", str(models / "dnabert-s"),
               "--classifier", str(models / "classifier.pth"), "--device", device]
    journal, summary_file = out / ".virnucpro" / "journal.json", out / "run.json"
    log = out.with_name(out.name + "-log.txt")
    summary_file.unlink(missing_ok=True)  # an earlier call's, else it would be "seen" at once
    started = time.perf_counter()
    with open(log, "w") as sink:
        # cwd: `python -m` puts it first on sys.path, so it must hold no virnucpro of its own
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=out.parent)
        first_block, summary_seen, killed = None, None, False
        while process.poll() is None:
            if first_block is None and journal.exists():  # written at the first checkpoint, not before
                first_block = time.perf_counter() - started
            if summary_seen is None and summary_file.exists():  # the last file a run writes
                summary_seen = time.perf_counter()
            if time.perf_counter() > deadline:
                process.kill()
                process.wait()
                killed = True
            time.sleep(0.001)
    ended = time.perf_counter()
    wall = ended - started
    run = {"code": str(code), "returncode": process.returncode, "killed_at_deadline": killed, "wall_seconds": wall,
           "first_block_seconds": first_block, "log_tail": log.read_text()[-1500:],
           "run_json_to_exit_seconds": None if summary_seen is None else ended - summary_seen,
           # engine/compile_cache.py: caches recorded warm for this setting, so no compile-worker pool
           "compiled_in_process": "compiling in-process (no worker pool)" in log.read_text()}
    if first_block is None and process.returncode == 0:
        run["first_block_note"] = "no poll saw the journal (removed when the run ends): first block <= wall"
    if (out / "run.json").is_file():
        summary = json.loads((out / "run.json").read_text())
        timings = summary["timings_seconds"]
        run.update(load_seconds=timings["model_load"], stream_seconds=timings["stream"],
                   total_in_process_seconds=timings["total"], load_phases=timings.get("load_phases"),
                   first_block_since_process_start=timings.get("first_block_written_since_process_start"),
                   devices=summary["devices"], records=summary["counts"]["records"])
    return run


def _extra_path() -> list[str]:
    """The caller's PYTHONPATH minus this checkout (the device image's wheels live there)."""
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != HERE]


def drop_page_cache(models: Path) -> dict:
    """Evict every model file from the page cache: fsync (dirty pages stay otherwise), then
    posix_fadvise(DONTNEED); report the resident fraction before and after (mincore)."""
    files = [p for p in models.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    before = sum(resident_bytes(p) for p in files)
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    after = sum(resident_bytes(p) for p in files)
    return {"model_bytes": total, "resident_before": before / max(total, 1), "resident_after": after / max(total, 1),
            "took_effect": after < 0.05 * max(total, 1)}


def resident_bytes(path: Path) -> int:
    """Bytes of `path` in the page cache (mincore on a read-only mapping)."""
    size = path.stat().st_size
    if size == 0:
        return 0
    page = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype, libc.mmap.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                                               ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            return 0
        pages = (size + page - 1) // page
        vector = ctypes.create_string_buffer(pages)
        try:
            if libc.mincore(address, size, vector) != 0:
                return 0
            return sum(byte & 1 for byte in vector.raw) * page
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)


def probe_esm2_reads(esm2: Path, deadline: float) -> dict:
    """What the largest load phase could cost: the ESM-2 safetensors (page cache warm) onto the GPU
    three ways, and the one-time `import torch._dynamo` (in a fresh interpreter). Measured, not
    adopted: the next step's evidence."""
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no GPU"}
    from concurrent.futures import ThreadPoolExecutor

    from safetensors import safe_open
    from safetensors.torch import load_file

    files = sorted(esm2.glob("*.safetensors"))
    size = sum(f.stat().st_size for f in files)

    def threaded(workers: int) -> dict:
        def one(item):
            file, name = item
            with safe_open(str(file), framework="pt", device="cuda:0") as handle:
                return name, handle.get_tensor(name)
        names = [(f, n) for f in files for n in safe_open(str(f), framework="pt").keys()]
        with ThreadPoolExecutor(workers) as pool:
            return dict(pool.map(one, names))

    def pinned_copy() -> dict:
        state = {}
        for file in files:
            for name, tensor in load_file(file).items():
                state[name] = tensor.pin_memory().to("cuda", non_blocking=True)
        return state

    def staged() -> dict:  # what the loaders do now (models/staged_safetensors.py)
        from virnucpro.models.staged_safetensors import read_safetensors_staged

        return {k: v for f in files for k, v in read_safetensors_staged(f, "cuda").items()}

    ways = {"virnucpro_staged_pinned (as now)": staged,
            "load_file_to_cuda (before)": lambda: {k: v for f in files for k, v in load_file(f, device="cuda").items()},
            "load_file_cpu_then_to_cuda": lambda: {k: v.to("cuda") for f in files for k, v in load_file(f).items()},
            "pinned_then_non_blocking_copy": pinned_copy,
            "8_threads_get_tensor_to_cuda": lambda: threaded(8)}
    result: dict = {"bytes": size}
    for name, read in ways.items():
        if time.perf_counter() > deadline:
            result[name] = "skipped: out of time"
            continue
        torch.cuda.synchronize()
        began = time.perf_counter()
        state = read()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - began
        result[name] = {"seconds": seconds, "gb_per_second": size / seconds / 1e9}
        del state
        torch.cuda.empty_cache()
    if time.perf_counter() < deadline:
        code = "import time, torch; t = time.perf_counter(); import torch._dynamo; print(time.perf_counter() - t)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=15)
        result["import_torch_dynamo_seconds"] = float(done.stdout.strip() or "nan")
    return result


def summarize(runs: dict) -> dict:
    """The figures the issue asks for, from the runs that exist so far."""
    def best(prefix: str, key: str):
        values = [r[key] for n, r in runs.items() if n.startswith(prefix) and r.get(key) is not None
                  and r.get("returncode") == 0]
        return min(values) if values else None

    cold, warm = runs.get("after_cold", {}), best("after_warm", "load_seconds")
    phases = next((r["load_phases"] for n, r in runs.items() if n.startswith("after_warm") and r.get("load_phases")),
                  None)
    return {
        "end_to_end_seconds": {"before": best("before_warm", "wall_seconds"),
                               "after": best("after_warm", "wall_seconds"), "after_cold": cold.get("wall_seconds")},
        "run_json_to_exit_seconds": {"before": best("before_warm", "run_json_to_exit_seconds"),
                                     "after": best("after_warm", "run_json_to_exit_seconds"),
                                     "after_cold": cold.get("run_json_to_exit_seconds")},
        "first_block_seconds": {"before": best("before_warm", "first_block_seconds"),
                                "after": best("after_warm", "first_block_seconds"),
                                "after_cold": cold.get("first_block_seconds")},
        "load_and_warm_up_seconds": {"before_warm": best("before_warm", "load_seconds"), "after_warm": warm,
                                     "after_cold": cold.get("load_seconds")},
        # BEFORE's run.json has no load phases: a BEFORE run with them ran AFTER's code by mistake
        "before_ran_before_code": all(r.get("load_phases") is None for n, r in runs.items() if n.startswith("before")),
        "warm_load_target_seconds": WARM_LOAD_TARGET_SECONDS,
        "warm_load_target_met": None if warm is None else warm <= WARM_LOAD_TARGET_SECONDS,
        "after_warm_load_phases_largest_first": None if phases is None else dict(
            sorted(((k, v) for k, v in phases.items() if v is not None), key=lambda kv: -kv[1])),
    }


def machine() -> dict:
    info = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    try:
        info["gpu"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["gpu"] = None
    return info


def write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(temporary, path)


if __name__ == "__main__":
    main()
