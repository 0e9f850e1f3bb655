"""The three models of the pipeline on one device: which files (resolved once, on the driver),
loading them and warming them up. Every engine loads its models here, so a local worker and a Ray
actor hold exactly the same models."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from virnucpro.engine.devices import SetupError
from virnucpro.engine.threads import start_thread
from virnucpro.models.classifier import ClassifierInfo, MLPClassifier, load_classifier
from virnucpro.models.dnabert_loader import load_dnabert
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.models.load_timer import LoadTimer
from virnucpro.models.registry import resolve_model
from virnucpro.tokenize.dnabert import DnabertTokenizer
from virnucpro.tokenize.packing import pack


@dataclass(frozen=True)
class ModelChoice:
    """What the user asked for; None means the published default."""

    esm: str | None
    dnabert: str | None
    classifier: str | None
    model_type: int
    models_dir: str | None
    with_classifier: bool = True  # `embed` needs only the two encoders


@dataclass
class Encoders:
    """The three models of the pipeline, loaded on one device."""

    dnabert: torch.nn.Module
    esm: torch.nn.Module
    classifier: MLPClassifier | None  # None for embed, which needs only the features
    device: torch.device

    @property
    def dnabert_dim(self) -> int:
        return self.dnabert.config.hidden_size

    @property
    def esm_dim(self) -> int:
        return self.esm.cfg.hidden_size

    @property
    def esm_parameters(self) -> int:
        return sum(p.numel() for p in self.esm.parameters())


def model_paths(choice: ModelChoice) -> dict[str, Path]:
    """The local path of each model (hub names resolved through the cache); no classifier for embed."""
    paths = {
        "dnabert": resolve_model("dnabert", choice.dnabert, choice.model_type, models_dir=choice.models_dir),
        "esm2": resolve_model("esm2", choice.esm, choice.model_type, models_dir=choice.models_dir),
    }
    if choice.with_classifier:
        paths["classifier"] = resolve_model("classifier", choice.classifier, choice.model_type,
                                            models_dir=choice.models_dir)
    return paths


def load_encoders(paths: dict[str, Path], device: torch.device, dtype: torch.dtype,
                  phases: dict[str, float] | None = None) -> tuple[Encoders, ClassifierInfo | None]:
    """The models on `device`. On a GPU, DNABERT-S loads on a thread (read straight onto the GPU)
    while ESM-2 (11 GB at full size) loads here, so it costs no extra wall time; the weights are
    the same bit for bit as loading one after the other (tests/engine/test_load_parallel.py). On
    the CPU they load one after the other: both loads are CPU work there, and a second thread
    running torch ops left the stream ~4x slower on a 2-core machine (its own OpenMP team). On a
    GPU the compiler is imported first, here, before the thread starts (`import_compiler`).
    `phases` gets each phase's seconds (the two threads' phases overlap in time)."""
    timer = LoadTimer(device)
    if device.type == "cuda":
        import_compiler()
        timer.mark("compiler_import")
    side = _SideLoad(paths["dnabert"], device, dtype) if device.type == "cuda" else None
    try:
        esm = load_esm2(paths["esm2"], device, dtype, timer=timer)
    finally:  # the thread joined even if ESM-2 failed
        dnabert, side_phases = side.result() if side is not None else (None, {})
    if dnabert is None:
        dnabert = load_dnabert(paths["dnabert"], device, dtype)
        timer.mark("dnabert_load")
    if phases is not None:
        phases.update(side_phases)
    if "classifier" not in paths:
        _report(timer, phases)
        return Encoders(dnabert, esm, None, device), None
    classifier, info = load_classifier(paths["classifier"])
    encoders = Encoders(dnabert, esm, classifier.to(device), device)
    timer.mark("classifier_load")
    _report(timer, phases)
    expected = encoders.dnabert_dim + encoders.esm_dim
    if info.input_dim != expected:
        raise SetupError(
            f"classifier {paths['classifier']} takes {info.input_dim} features but the encoders give"
            f" {encoders.dnabert_dim} + {encoders.esm_dim} = {expected}"
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return encoders, info


def _report(timer: LoadTimer, phases: dict[str, float] | None) -> None:
    if phases is not None:
        phases.update(timer.seconds)


class _SideLoad:
    """DNABERT-S loaded on its own (joined) thread."""

    def __init__(self, path: Path, device: torch.device, dtype: torch.dtype):
        self._outcome: tuple | BaseException | None = None
        self._thread = start_thread("load-dnabert", self._load, path, device, dtype)

    def _load(self, path: Path, device: torch.device, dtype: torch.dtype) -> None:
        try:
            if device.type == "cuda" and device.index is not None:  # set_device refuses a bare "cuda"
                torch.cuda.set_device(device)
            timer = LoadTimer(device)
            dnabert = load_dnabert(path, device, dtype, read_onto_device=True)
            timer.mark("dnabert_load_parallel")
            self._outcome = (dnabert, timer.seconds)
        except BaseException as error:  # noqa: BLE001 (re-raised in the loading thread by result())
            self._outcome = error

    def result(self) -> tuple:
        self._thread.join()
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome


COMPILER_MODULES = ("torch._dynamo", "torch._inductor.compile_fx")


def import_compiler() -> None:
    """torch's compiler stack, imported by one thread before any other loads (a GPU run compiles
    both encoders, so it is needed anyway). Its packages import each other in a cycle: two threads
    importing them at once can see a half-initialised module ("cannot import name ... from
    partially initialized module torch._inductor.utils", seen on the H200 when it ran on a thread
    beside the DNABERT-S load), so it is never left to whichever thread gets there first."""
    for name in COMPILER_MODULES:
        importlib.import_module(name)


def tokenizer_for(dnabert_dir: Path) -> DnabertTokenizer:
    """The model directory's own tokenizer.json when it has one, else the packaged public copy."""
    if (dnabert_dir / "tokenizer.json").is_file():
        return DnabertTokenizer.from_dir(dnabert_dir)
    return DnabertTokenizer.default()


@torch.inference_mode()
def warm_up(encoders: Encoders, batch_tokens: int, phases: dict[str, float] | None = None) -> None:
    """Run dummy batches once so compilation happens at load time, not mid-stream.

    ESM-2: short proteins (Triton attention with rotary inside), with a token count that is a
    multiple of 16 and one that is not (Triton specialises integer arguments on divisibility by 16),
    and longer ones (compiled rotary + varlen attention). DNABERT-S compiles for dynamic shapes on
    its second distinct shape, so it gets two. GPUs only. `phases` gets each batch's seconds
    (`warm_up_esm2_48_aa`, ...): the first of a path pays for tracing and the compile-cache
    lookups, the others show what the batches themselves cost.
    """
    if encoders.device.type != "cuda":
        return
    if encoders.device.index is not None:  # set_device refuses a bare "cuda" (the current device then)
        torch.cuda.set_device(encoders.device)
    timer = LoadTimer(encoders.device)
    for tokens in (48, 49, 100):  # 48 * n is a multiple of 16; 49 * n is not unless 16 divides n
        protein = np.concatenate(([0], np.full(tokens - 2, 5), [2]))  # <cls> A... <eos>
        copies = max(1, batch_tokens // tokens)
        copies -= 1 if tokens == 49 and copies % 16 == 0 else 0
        encoders.esm.embed(pack([protein] * copies))
        timer.mark(f"warm_up_esm2_{tokens}_aa")
    for length in (34, 41):
        dna = np.concatenate(([1], np.full(length - 2, 5 + length % 4), [2]))  # [CLS] ... [SEP]
        encoders.dnabert.embed(pack([dna] * max(1, batch_tokens // length)))
        timer.mark(f"warm_up_dnabert_{length}_tokens")
    if phases is not None:
        for name, seconds in timer.seconds.items():
            phases[name] = phases.get(name, 0.0) + seconds
