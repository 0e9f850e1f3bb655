"""The local engine: this host's devices, one DeviceWorker thread each (engine/backend.py's interface).

CPU workers share one set of models (torch runs one op on all threads anyway); every GPU gets its
own, compiled and warmed up before the stream starts.
"""

from __future__ import annotations

import logging
import time

import torch

from virnucpro.engine.backend import LoadedWorkers
from virnucpro.engine.devices import resolve_batch_tokens, resolve_devices
from virnucpro.engine.encoders import Encoders, ModelChoice, load_encoders, model_paths, tokenizer_for, warm_up
from virnucpro.engine.worker import DeviceWorker
from virnucpro.models.classifier import chunk_size_mismatch


class LocalEngine:
    def __init__(self, logger: logging.Logger):
        self._logger = logger

    def devices(self, device: str, gpus: str | None, workers: int) -> list[torch.device]:
        return resolve_devices(device, gpus, workers)

    def load(self, choice: ModelChoice, devices: list[torch.device], dtype: torch.dtype,
             batch_tokens: int | None) -> LoadedWorkers:
        """Resolve the model paths, load the models once per distinct device and warm them up."""
        started = time.perf_counter()
        tokens = resolve_batch_tokens(batch_tokens, devices[0])
        paths = model_paths(choice)
        for kind, path in paths.items():
            self._logger.info("model %s: %s", kind, path)
        loaded: dict[torch.device, Encoders] = {}
        info = None
        for device in dict.fromkeys(devices):
            loaded[device], info = load_encoders(paths, device, dtype)
        if info is not None and (mismatch := chunk_size_mismatch(info, paths["classifier"], choice.model_type)):
            self._logger.warning(mismatch)
        first = loaded[devices[0]]
        self._logger.info("models loaded in %.1f s on %s (%s); ESM-2 attention: %s; DNABERT-S attention: %s",
                          time.perf_counter() - started, ", ".join(str(d) for d in loaded),
                          str(dtype).removeprefix("torch."), first.esm.describe_attention(),
                          first.dnabert.describe_attention())
        for encoders in loaded.values():  # compiled at load time, not mid-stream
            warm_up(encoders, tokens)
        names = [str(d) if d.type == "cpu" else f"{d}: {torch.cuda.get_device_name(d)}" for d in devices]
        return LoadedWorkers([DeviceWorker(loaded[d]) for d in devices], names, devices, tokenizer_for(paths["dnabert"]),
                             paths, first.dnabert_dim, first.esm_parameters, tokens, time.perf_counter() - started)
