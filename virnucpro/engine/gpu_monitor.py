"""GPU busy fraction as the driver sees it: NVML utilization (share of time a kernel was running),
sampled in a background thread while the stream runs. CUDA events around each stage also count
time the GPU waited for the host inside a stage; NVML does not."""

from __future__ import annotations

import threading

import torch

_INTERVAL_SECONDS = 0.5


class UtilizationSampler:
    def __init__(self, devices: list[torch.device]):
        self.indices = sorted({d.index for d in devices if d.type == "cuda"})
        self.samples: dict[int, list[float]] = {i: [] for i in self.indices}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> UtilizationSampler:
        if self.indices and _nvml_available():
            self._thread = threading.Thread(target=self._sample, name="virnucpro-gpu-monitor", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def busy_fractions(self) -> dict[str, float] | None:
        """Mean utilization per GPU over the run (None without NVML or without GPUs)."""
        if not any(self.samples.values()):
            return None
        return {f"cuda:{i}": sum(s) / len(s) / 100 for i, s in self.samples.items() if s}

    def _sample(self) -> None:
        while not self._stop.wait(_INTERVAL_SECONDS):
            for index in self.indices:
                self.samples[index].append(float(torch.cuda.utilization(index)))


def _nvml_available() -> bool:
    try:
        torch.cuda.utilization(0)
    except (ImportError, RuntimeError, ValueError):  # no pynvml / NVML not initialisable
        return False
    return True
