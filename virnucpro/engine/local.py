"""The local engine: this host's devices, one DeviceWorker thread each (engine/backend.py's interface).

CPU workers share one set of models (torch runs one op on all threads anyway); every GPU gets its
own, compiled and warmed up before the stream starts.
"""

from __future__ import annotations

import logging
import time

import torch

from virnucpro.engine.backend import LoadedWorkers
from virnucpro.engine.compile_cache import (
    compile_in_process_if_warm,
    compile_setting,
    remember_warm,
    use_persistent_compile_caches,
)
from virnucpro.engine.devices import resolve_batch_tokens, resolve_devices
from virnucpro.engine.encoders import Encoders, ModelChoice, load_encoders, model_paths, tokenizer_for, warm_up
from virnucpro.engine.model_hashes import start_hashing, wait_for_hashing
from virnucpro.engine.worker import DeviceWorker
from virnucpro.models.classifier import chunk_size_mismatch
from virnucpro.models.load_timer import process_age_seconds


class LocalEngine:
    def __init__(self, logger: logging.Logger):
        self._logger = logger

    def devices(self, device: str, gpus: str | None, workers: int) -> list[torch.device]:
        return resolve_devices(device, gpus, workers)

    def load(self, choice: ModelChoice, devices: list[torch.device], dtype: torch.dtype,
             batch_tokens: int | None) -> LoadedWorkers:
        """Resolve the model paths, load the models once per distinct device and warm them up
        while the model files are hashed for the resume fingerprint (engine/model_hashes.py);
        each phase's seconds go to `LoadedWorkers.load_phases` (run.json)."""
        started = time.perf_counter()
        phases: dict[str, float] = {"process_start_to_load": process_age_seconds()}
        caches = use_persistent_compile_caches()
        self._logger.debug("compile caches: %s", caches)
        for device in dict.fromkeys(devices):
            if device.type == "cuda":  # the CUDA context, on its own (else the first copy pays for it)
                torch.empty(0, device=device)
        phases["cuda_context"] = time.perf_counter() - started
        tokens = resolve_batch_tokens(batch_tokens, devices[0])
        paths = model_paths(choice)
        start_hashing(paths.values())  # the resume fingerprint's sha256, while the models load
        for kind, path in paths.items():
            self._logger.info("model %s: %s", kind, path)
        phases["resolve_paths"] = time.perf_counter() - started - phases["cuda_context"]
        gpus = [torch.cuda.get_device_name(d) for d in dict.fromkeys(devices) if d.type == "cuda"]
        setting = compile_setting(gpus, dtype, paths) if gpus else None
        if setting is not None and compile_in_process_if_warm(setting):
            self._logger.info("compile caches warm for these models and GPUs: compiling in-process (no worker pool)")
        loaded: dict[torch.device, Encoders] = {}
        info = None
        models_started = time.perf_counter()
        for device in dict.fromkeys(devices):
            loaded[device], info = load_encoders(paths, device, dtype, phases)
        phases["models_wall"] = time.perf_counter() - models_started
        if info is not None and (mismatch := chunk_size_mismatch(info, paths["classifier"], choice.model_type)):
            self._logger.warning(mismatch)
        first = loaded[devices[0]]
        self._logger.info("models loaded in %.1f s on %s (%s); ESM-2 attention: %s; DNABERT-S attention: %s",
                          time.perf_counter() - started, ", ".join(str(d) for d in loaded),
                          str(dtype).removeprefix("torch."), first.esm.describe_attention(),
                          first.dnabert.describe_attention())
        for encoders in loaded.values():  # compiled at load time, not mid-stream
            warm_up(encoders, tokens, phases)
        if setting is not None:
            remember_warm(setting)
        waited = time.perf_counter()
        phases["model_hash_thread"] = wait_for_hashing()
        phases["model_hash_wait"] = time.perf_counter() - waited  # what hashing added to the load
        names = [str(d) if d.type == "cpu" else f"{d}: {torch.cuda.get_device_name(d)}" for d in devices]
        return LoadedWorkers([DeviceWorker(loaded[d]) for d in devices], names, devices, tokenizer_for(paths["dnabert"]),
                             paths, first.dnabert_dim, first.esm_parameters, tokens, time.perf_counter() - started,
                             phases)
