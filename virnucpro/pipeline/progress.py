"""Live progress: a rich bar on a terminal, a plain log line every so often elsewhere.

The ETA comes from input bytes consumed (compressed, on disk) against the total size of the input
files, so it needs no first pass over the data; stdin has no ETA.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

_LOG_EVERY_SECONDS = 30.0


class RunProgress:
    def __init__(self, logger: logging.Logger, bytes_total: int | None, bytes_done: Callable[[], int],
                 live: bool):
        self.logger = logger
        self.bytes_total = bytes_total
        self.bytes_done = bytes_done
        self.started = time.perf_counter()
        self.records = self.frames = self.tokens = 0
        self._last_log = self.started
        self._bar = self._task = None
        if live:
            self._start_bar()

    def advance(self, records: int, frames: int, tokens: int) -> None:
        self.records += records
        self.frames += frames
        self.tokens += tokens
        now = time.perf_counter()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.bytes_done(), stats=self._stats(now))
        elif now - self._last_log >= _LOG_EVERY_SECONDS:
            self._last_log = now
            self.logger.info("progress: %s%s", self._stats(now), self._eta_text(now))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _stats(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        return (f"{self.records:,} reads, {self.frames / elapsed:,.0f} frames/s, "
                f"{self.tokens / elapsed:,.0f} tokens/s")

    def _eta_text(self, now: float) -> str:
        done = self.bytes_done()
        if not self.bytes_total or not done:
            return ""
        remaining = (now - self.started) * (self.bytes_total - done) / done
        return f", {100 * done / self.bytes_total:.1f}% of input, ETA {_clock(remaining)}"

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]predict"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )
        self._task = self._bar.add_task("predict", total=self.bytes_total, stats="starting")
        self._bar.start()


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
