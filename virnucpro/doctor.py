"""`virnucpro doctor`: what this machine has (software, GPUs, attention kernels, models, disk).

The report is a plain dict (also the `--json` output). Problems carry a severity: "error" when
predictions cannot run (a missing or corrupt model), "warning" when they run but slowly or
may fail later (no GPU, little disk). Each problem comes with the one thing to do about it.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
from pathlib import Path

from virnucpro import __version__
from virnucpro.models.manifest import ModelIntegrityError
from virnucpro.models.registry import (
    CLASSIFIER_TYPES,
    ENCODERS,
    ModelNotFoundError,
    check_location,
    default_models_dir,
    find_model,
)

# DNABERT-S (~0.5 GB) + ESM-2 3B safetensors (~11.4 GB) + classifiers, with some room.
DOWNLOAD_BYTES = 13 * 10**9
_HOW_TO_GET = "run `virnucpro download`, or copy a models directory and set VIRNUCPRO_MODELS"


def collect_report(models_dir: str | Path | None = None) -> dict:
    """Everything doctor checks; sha256 of each model file is computed once per file version."""
    torch_info, problems = _torch_report()
    models = _models_report(models_dir, problems)
    disk = _disk_report(models_dir, any(m["status"] == "missing" for m in models), problems)
    return {
        "virnucpro": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **torch_info,
        "models": models,
        "disk": disk,
        "compile_caches": _compile_cache_report(),
        "problems": problems,
        "ok": not any(problem["severity"] == "error" for problem in problems),
    }


def _problem(severity: str, message: str, advice: str) -> dict:
    return {"severity": severity, "message": message, "advice": advice}


def _torch_report() -> tuple[dict, list[dict]]:
    import torch

    from virnucpro.models.attention import describe_backend, flash_varlen

    problems = []
    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            name = torch.cuda.get_device_name(index)
            gpus.append({"index": index, "name": name, "free_bytes": free, "total_bytes": total})
    else:
        advice = "ESM-2 3B on CPU is very slow; run on a GPU node (check CUDA_VISIBLE_DEVICES)"
        problems.append(_problem("warning", "no CUDA GPU visible", advice))
    attention = {
        "flash_attn": flash_varlen() is not None,
        "torch_varlen": _has_module("torch.nn.attention.varlen"),
        "cpu_float32": describe_backend("cpu", torch.float32),
        "cuda_bfloat16": describe_backend("cuda", torch.bfloat16) if gpus else None,
    }
    report = {"torch": torch.__version__, "cuda": {"version": torch.version.cuda, "gpus": gpus}, "attention": attention}
    return report, problems


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _models_report(models_dir, problems: list[dict]) -> list[dict]:
    wanted = [(kind, None, spec.label) for kind, spec in ENCODERS.items()]
    wanted += [("classifier", model_type, f"{model_type}-bp classifier") for model_type in CLASSIFIER_TYPES]
    return [_model_entry(kind, model_type, label, models_dir, problems) for kind, model_type, label in wanted]


def _model_entry(kind: str, model_type: int | None, label: str, models_dir, problems: list[dict]) -> dict:
    entry = {"kind": kind, "model_type": model_type, "label": label}
    try:
        location = find_model(kind, None, model_type or 0, models_dir=models_dir)
    except ModelNotFoundError as error:
        problems.append(_problem("error", str(error).split(";")[0], _HOW_TO_GET))
        return {**entry, "status": "missing"}
    entry.update(path=str(location.path), source=location.source, size_bytes=_size_bytes(location.path))
    try:
        checked = check_location(location, verify=True)
    except ModelIntegrityError as error:
        message, _, advice = str(error).partition("; ")
        problems.append(_problem("error", message, advice))
        return {**entry, "status": "corrupt", "checksum": "failed"}
    return {**entry, "status": "ok", "checksum": "ok" if checked else "no manifest"}


def _size_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)


def _disk_report(models_dir, models_missing: bool, problems: list[dict]) -> list[dict]:
    chosen = models_dir or os.environ.get("VIRNUCPRO_MODELS") or default_models_dir()
    places = {"models directory": Path(chosen).expanduser(), "working directory": Path.cwd()}
    disk = []
    for role, path in places.items():
        existing = next(parent for parent in (path, *path.parents) if parent.exists())
        free = shutil.disk_usage(existing).free
        disk.append({"role": role, "path": str(path), "free_bytes": free})
        if role == "models directory" and models_missing and free < DOWNLOAD_BYTES:
            problems.append(
                _problem(
                    "warning",
                    f"only {_gb(free)} free at {existing}, the models need about {_gb(DOWNLOAD_BYTES)}",
                    "free space or pass `virnucpro download --dir` a bigger disk",
                )
            )
    return disk


def _compile_cache_report() -> list[dict]:
    """Where the Inductor and Triton kernel caches are (runs set them there) and how big they are."""
    from virnucpro.engine.compile_cache import compile_cache_dirs, directory_bytes

    return [{"variable": variable, "path": path, "size_bytes": directory_bytes(path)}
            for variable, path in compile_cache_dirs().items()]


def _gb(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.1f} GB"


def format_report(report: dict) -> str:
    """The human-readable form of `collect_report`'s result."""
    cuda = report["cuda"]
    lines = [
        (f"virnucpro {report['virnucpro']}  Python {report['python']}  torch {report['torch']}"
         f"  CUDA {cuda['version'] or 'none'}  ({report['platform']})")
    ]
    for gpu in cuda["gpus"]:
        lines.append(f"GPU {gpu['index']}: {gpu['name']}, {_gb(gpu['free_bytes'])} free of {_gb(gpu['total_bytes'])}")
    lines.append(_format_attention(report["attention"]))
    lines.append("models:")
    for model in report["models"]:
        where = ""
        if "path" in model:
            where = f"{model['path']} ({model['source']}, {_gb(model['size_bytes'])}, sha256 {model['checksum']})"
        lines.append(f"  {model['status']:<8} {model['label']:<18} {where}".rstrip())
    lines += [f"disk: {d['role']} {d['path']}: {_gb(d['free_bytes'])} free" for d in report["disk"]]
    lines += [f"compile cache ({c['variable']}): {c['path']}, {c['size_bytes'] / 1e6:.1f} MB"
              for c in report["compile_caches"]]
    for problem in report["problems"]:
        lines.append(f"{problem['severity']}: {problem['message']}\n  -> {problem['advice']}")
    if report["ok"]:
        lines.append("ready: all needed pieces are in place")
    return "\n".join(lines)


def _format_attention(attention: dict) -> str:
    def yes_no(flag: bool) -> str:
        return "yes" if flag else "no"

    text = f"attention: flash-attn {yes_no(attention['flash_attn'])}, torch varlen {yes_no(attention['torch_varlen'])};"
    text += f" cpu/fp32 -> {attention['cpu_float32']}"
    if attention["cuda_bfloat16"]:
        text += f", cuda/bf16 -> {attention['cuda_bfloat16']}"
    return text
