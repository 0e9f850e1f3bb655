"""Run set-up: device, precision, token budgets and the three models, resolved once and logged."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from virnucpro.engine.batching import auto_token_budget
from virnucpro.engine.worker import Encoders, warm_up
from virnucpro.errors import VirnucproError
from virnucpro.models.classifier import ClassifierInfo, chunk_size_mismatch, load_classifier
from virnucpro.models.dnabert_loader import load_dnabert
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.models.registry import resolve_model
from virnucpro.tokenize.dnabert import DnabertTokenizer

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
CPU_BATCH_TOKENS = 4096
GPU_BATCH_TOKENS_MAX = 65_536  # the measured sweet spot for ESM-2 3B packed batches
ESM_BYTES_PER_TOKEN = 96 * 1024  # activations of one ESM-2 3B layer per token, bf16, with headroom


class SetupError(VirnucproError):
    """A device, precision or model option cannot be honoured."""


@dataclass(frozen=True)
class ModelChoice:
    """What the user asked for; None means the published default."""

    esm: str | None
    dnabert: str | None
    classifier: str | None
    model_type: int
    models_dir: str | None


@dataclass
class LoadedModels:
    workers: list[Encoders]  # one per worker; CPU workers share one set of models
    tokenizer: DnabertTokenizer
    classifier_info: ClassifierInfo
    paths: dict[str, Path]
    load_seconds: float

    @property
    def dnabert_dim(self) -> int:
        return self.workers[0].dnabert_dim


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


def load_models(choice: ModelChoice, devices: list[torch.device], dtype: torch.dtype,
                logger: logging.Logger) -> LoadedModels:
    """Resolve the three model paths and load them once per distinct device."""
    started = time.perf_counter()
    paths = model_paths(choice)
    for kind, path in paths.items():
        logger.info("model %s: %s", kind, path)
    loaded: dict[torch.device, Encoders] = {}
    info = None
    for device in dict.fromkeys(devices):
        loaded[device], info = load_encoders(paths, device, dtype)
    if mismatch := chunk_size_mismatch(info, paths["classifier"], choice.model_type):
        logger.warning(mismatch)
    seconds = time.perf_counter() - started
    first = loaded[devices[0]]
    logger.info("models loaded in %.1f s on %s (%s); ESM-2 attention: %s; DNABERT-S attention: %s", seconds,
                ", ".join(str(d) for d in loaded), str(dtype).removeprefix("torch."),
                first.esm.describe_attention(), first.dnabert.describe_attention())
    return LoadedModels([loaded[d] for d in devices], tokenizer_for(paths["dnabert"]), info, paths, seconds)


def prepare_workers(workers: list[Encoders], batch_tokens: int) -> None:
    """Compile and warm every distinct set of models before the stream starts."""
    for encoders in {id(e): e for e in workers}.values():  # CPU workers share one set of models
        warm_up(encoders, batch_tokens)


def model_paths(choice: ModelChoice) -> dict[str, Path]:
    """The local path of each of the three models (hub names resolved through the cache)."""
    return {
        "dnabert": resolve_model("dnabert", choice.dnabert, choice.model_type, models_dir=choice.models_dir),
        "esm2": resolve_model("esm2", choice.esm, choice.model_type, models_dir=choice.models_dir),
        "classifier": resolve_model("classifier", choice.classifier, choice.model_type,
                                    models_dir=choice.models_dir),
    }


def load_encoders(paths: dict[str, Path], device: torch.device,
                  dtype: torch.dtype) -> tuple[Encoders, ClassifierInfo]:
    dnabert = load_dnabert(paths["dnabert"], device, dtype)
    esm = load_esm2(paths["esm2"], device, dtype)
    classifier, info = load_classifier(paths["classifier"])
    encoders = Encoders(dnabert, esm, classifier.to(device), device)
    expected = encoders.dnabert_dim + encoders.esm_dim
    if info.input_dim != expected:
        raise SetupError(
            f"classifier {paths['classifier']} takes {info.input_dim} features but the encoders give"
            f" {encoders.dnabert_dim} + {encoders.esm_dim} = {expected}"
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return encoders, info


def tokenizer_for(dnabert_dir: Path) -> DnabertTokenizer:
    """The model directory's own tokenizer.json when it has one, else the packaged public copy."""
    if (dnabert_dir / "tokenizer.json").is_file():
        return DnabertTokenizer.from_dir(dnabert_dir)
    return DnabertTokenizer.default()
