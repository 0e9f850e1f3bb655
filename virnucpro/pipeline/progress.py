"""Live progress: a rich bar on a terminal, a plain log line every so often elsewhere.

The reader runs ahead of the GPU, so input bytes read say little about work done. Instead the
total number of records is estimated from what the reader has seen (records per input byte times
the input size, exact once the input is read to the end) and progress is records written over that
estimate; it needs no first pass over the data. stdin has no ETA.
"""

from __future__ import annotations

import logging
import time

_LOG_EVERY_SECONDS = 30.0
_BAR_STEPS = 10_000


class RunProgress:
    def __init__(self, logger: logging.Logger, reader, live: bool, records_before: int = 0):
        self.logger = logger
        self.reader = reader
        self.started = time.perf_counter()
        self.records = records_before  # written, resumed runs included
        self.frames = self.tokens = 0  # this session, for the rates
        self._last_log = self.started
        self._bar = self._task = None
        if live:
            self._start_bar()

    def advance(self, records: int, frames: int, tokens: int) -> None:
        self.records += records
        self.frames += frames
        self.tokens += tokens
        now = time.perf_counter()
        fraction = self.fraction_done()
        if self._bar is not None:
            self._bar.update(self._task, completed=round((fraction or 0) * _BAR_STEPS), stats=self._stats(now))
        elif now - self._last_log >= _LOG_EVERY_SECONDS:
            self._last_log = now
            eta = ""
            if fraction:
                remaining = (now - self.started) * (1 - fraction) / fraction
                eta = f", {100 * fraction:.1f}% done, ETA {_clock(remaining)}"
            self.logger.info("progress: %s%s", self._stats(now), eta)

    def fraction_done(self) -> float | None:
        """Records written / estimated total records, or None without an estimate (stdin)."""
        total_bytes, read_bytes, read_records = self.reader.bytes_total, self.reader.bytes_done, self.reader.stats.records
        if not total_bytes or not read_bytes or not read_records:
            return None
        estimated = max(read_records * total_bytes / read_bytes, read_records, 1)
        return min(self.records / estimated, 1.0)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _stats(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        return (f"{self.records:,} reads, {self.frames / elapsed:,.0f} frames/s, "
                f"{self.tokens / elapsed:,.0f} tokens/s")

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]virnucpro"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )
        self._task = self._bar.add_task("run", total=_BAR_STEPS, stats="loading the first block")
        self._bar.start()


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
