"""What the machine did while the stream ran, sampled in a background thread every half second:
- GPU busy fraction as the driver sees it: NVML utilization (share of time a kernel was running).
  CUDA events around each stage also count time the GPU waited for the host inside a stage; NVML
  does not.
- Host resident memory (RSS) of this process, whose peak during the stream (models already
  loaded) shows whether memory grows with the input. The timeline also splits off the file-backed
  and shared part (mapped weights, libraries), so growth can be told apart from heap growth."""

from __future__ import annotations

import os
import threading
import time

import torch

from virnucpro.engine.threads import start_thread

_INTERVAL_SECONDS = 0.5
_TIMELINE_EVERY = 10  # one RSS point per 5 s in the timeline (the peak uses every sample)
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class StreamMonitor:
    def __init__(self, devices: list[torch.device]):
        self.indices = sorted({d.index for d in devices if d.type == "cuda"})
        self.samples: dict[int, list[float]] = {i: [] for i in self.indices}
        self.rss_peak_bytes = current_rss_bytes() or 0
        self.rss_timeline: list[tuple[float, float, float]] = []  # (seconds in, RSS MiB, of it shared MiB)
        self._started = time.perf_counter()
        self._gpus = bool(self.indices) and _nvml_available()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StreamMonitor:
        self._thread = start_thread("monitor", self._sample)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)  # it wakes within one sample (an NVML query at most)
        self._sample_memory()

    def busy_fractions(self) -> dict[str, float] | None:
        """Mean utilization per GPU over the run (None without NVML or without GPUs)."""
        if not any(self.samples.values()):
            return None
        return {f"cuda:{i}": sum(s) / len(s) / 100 for i, s in self.samples.items() if s}

    def _sample(self) -> None:
        count = 0
        while not self._stop.wait(_INTERVAL_SECONDS):
            rss, shared = self._sample_memory()
            if count % _TIMELINE_EVERY == 0:
                self.rss_timeline.append((round(time.perf_counter() - self._started, 1),
                                          round(rss / 2**20, 1), round(shared / 2**20, 1)))
            count += 1
            if self._gpus:
                for index in self.indices:
                    self.samples[index].append(float(torch.cuda.utilization(index)))

    def _sample_memory(self) -> tuple[int, int]:
        """(RSS, of it shared) in bytes now; keeps the RSS peak."""
        rss, shared = (pages * _PAGE_BYTES for pages in memory_pages())
        self.rss_peak_bytes = max(self.rss_peak_bytes, rss)
        return rss, shared


def current_rss_bytes() -> int | None:
    """Resident set size now (Linux /proc; None elsewhere)."""
    rss, _ = memory_pages()
    return rss * _PAGE_BYTES if rss else None


def memory_pages() -> tuple[int, int]:
    """(resident pages, of them file-backed or shared) from /proc/self/statm; zeros elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            fields = statm.read().split()
        return int(fields[1]), int(fields[2])
    except (OSError, ValueError, IndexError):
        return 0, 0


def _nvml_available() -> bool:
    try:
        torch.cuda.utilization(0)
    except (ImportError, RuntimeError, ValueError):  # no pynvml / NVML not initialisable
        return False
    return True
