"""Where a run computes and how: devices (one per worker), precision, the token budget and CPU
threads, resolved once from the options and refused with one line when they cannot be honoured."""

from __future__ import annotations

import os

import torch

from virnucpro.engine.batching import auto_token_budget
from virnucpro.errors import VirnucproError

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
CPU_BATCH_TOKENS = 4096
GPU_BATCH_TOKENS_MAX = 65_536  # the measured sweet spot for ESM-2 3B packed batches
ESM_BYTES_PER_TOKEN = 96 * 1024  # activations of one ESM-2 3B layer per token, bf16, with headroom


class SetupError(VirnucproError):
    """A device, precision or model option cannot be honoured."""


def resolve_devices(name: str, gpus: str | None = None, workers: int = 1) -> list[torch.device]:
    """One device per worker. `auto` uses the GPUs chosen by `gpus` (default all) or else the CPU;
    `cuda:N` is that one GPU; `cpu` runs `workers` CPU workers. An explicit GPU request that this
    machine cannot honour is refused: running it on the CPU instead could take days."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() or gpus is not None else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise SetupError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cpu":
        if gpus is not None:
            raise SetupError(f"--gpus {gpus} asks for GPUs but --device is {name}; drop one of them")
        return [device] * _cpu_workers(workers)
    if device.type != "cuda":
        raise SetupError(f"unsupported device {name!r} (use auto, cpu, cuda or cuda:N)")
    if not torch.cuda.is_available():
        asked = f"--gpus {gpus}" if gpus is not None else f"--device {name}"
        raise SetupError(f"{asked}: no CUDA GPU is visible (use --device cpu)")
    count = torch.cuda.device_count()
    indices = [device.index] if device.index is not None else _gpu_indices(gpus or "all", count)
    for index in indices:
        if index >= count:
            raise SetupError(f"GPU {index} requested but only {count} GPU(s) visible")
    return [torch.device("cuda", index) for index in indices]


def _gpu_indices(gpus: str, count: int) -> list[int]:
    """`all`, a count `N` (the first N GPUs) or a list `0,2`."""
    text = gpus.strip()
    if text == "all":
        return list(range(count))
    try:
        if "," in text:
            indices = [int(part) for part in text.split(",")]
        else:
            wanted = int(text)
            if wanted > count:
                raise SetupError(f"--gpus {gpus}: {wanted} GPUs requested but only {count} visible")
            indices = list(range(wanted))
    except ValueError:
        raise SetupError(f"--gpus {gpus!r}: use all, a number, or a list such as 0,2") from None
    if not indices or len(set(indices)) != len(indices) or min(indices) < 0:
        raise SetupError(f"--gpus {gpus!r}: give at least one GPU, each once")
    return indices


def resolve_precision(name: str | None, device: torch.device) -> torch.dtype:
    """bf16 on a GPU, fp32 on the CPU unless asked otherwise (half precision on CPU is refused)."""
    if name is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype = PRECISIONS[name]
    if device.type == "cpu" and dtype != torch.float32:
        raise SetupError(f"--precision {name} needs a GPU; the CPU runs fp32")
    return dtype


def resolve_batch_tokens(requested: int | None, device: torch.device) -> int:
    """The ESM-2 token budget: as asked, or sized from the GPU's total memory (stable across runs)."""
    if requested is not None:
        if requested < 64:
            raise SetupError("--batch-tokens must be at least 64")
        return requested
    if device.type != "cuda":
        return CPU_BATCH_TOKENS
    total = torch.cuda.get_device_properties(device).total_memory
    return min(GPU_BATCH_TOKENS_MAX, auto_token_budget(total, ESM_BYTES_PER_TOKEN))


def _cpu_workers(workers: int) -> int:
    """More CPU workers than CPUs only thrash (and 100000 threads exhaust the process)."""
    cpus = os.cpu_count() or 1
    if not 1 <= workers <= cpus:
        raise SetupError(f"--workers {workers}: this machine has {cpus} CPU(s); use 1 to {cpus}")
    return workers


def set_threads(threads: int | None) -> int:
    """CPU threads for torch and the tokenizer; default: every CPU this process may use. More
    threads than the machine has are refused: torch's thread pool crashes on huge counts."""
    cpus = os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= cpus:
        raise SetupError(f"--threads {threads}: this machine has {cpus} CPU(s); use 1 to {cpus}")
    threads = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
    return threads
