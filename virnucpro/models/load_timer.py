"""Where model loading spends its time: named phases (file reads, casts, copies, compile set-up,
warm-up), measured so the load can be attacked phase by phase and reported in run.json.

A phase ends at `mark(name)`; on a GPU the device is synchronised first, so asynchronous copies and
kernels are charged to the phase that issued them, not to the next one. One timer per thread:
phases that run in parallel (DNABERT-S on a thread while ESM-2 loads) keep their own clocks.
"""

from __future__ import annotations

import os
import time

import torch


class LoadTimer:
    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        """The time since the previous mark (or the start) is phase `name` (added up if repeated)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now

    def restart(self) -> None:
        """Start the next phase now (time since the last mark counts nowhere)."""
        self._last = time.perf_counter()


def process_age_seconds() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere): the interpreter start and
    the imports before the run began."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            up = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, up - start_ticks / os.sysconf("SC_CLK_TCK"))
