"""Live progress: a rich bar on a terminal, a plain log line every so often elsewhere.

Two steps: loading the models (elapsed time), then the stream. The reader runs ahead of the GPU,
so input bytes read say little about work done. Instead the total number of records is estimated
from what the reader has seen (records per input byte times the input size, exact once the input
is read to the end) and progress is records done over that estimate; it needs no first pass over
the data. "Done" is the records written plus the finished batches' share of the blocks in flight
(engine/work_counter.py), so the bar moves batch by batch, not once per block; a long record's
pieces count as their share of it as each is written. A resumed run
starts at the records of its checkpoint. stdin has no ETA. A ticker thread redraws the bar (and,
off a terminal, logs a line every 30 s) whether or not a block was written meanwhile. A study has
ONE bar over all its samples (pipeline/study_progress.py gives it the study's inputs as one
reader), showing the samples done and the current sample.
"""

from __future__ import annotations

import logging
import threading
import time

from virnucpro.engine.work import WorkBlock
from virnucpro.engine.work_counter import WorkCounter, record_share
from virnucpro.engine.worker import DeviceWorker

_LOG_EVERY_SECONDS = 30.0
_TICK_SECONDS = 0.1
_BAR_STEPS = 10_000


class RunProgress:
    def __init__(self, logger: logging.Logger, reader, live: bool, records_before: int = 0):
        self.logger = logger
        self.reader = reader
        self.started = time.perf_counter()  # of the stream; the loading step until then
        self.loading_since: float | None = None
        self.records_before = records_before  # written by the sessions before this one
        self.records = records_before  # written, resumed runs included
        self.frames = self.tokens = 0  # this session, written blocks (the counter has batches)
        self.record_part = 0.0  # written pieces of the long record being written (its share of it)
        self._last_estimate: float | None = None
        self.counter = WorkCounter()
        self.counter.on_credit = self.refresh
        self._last_log = self.started
        self._lock = threading.RLock()
        self._bar = self._task = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self.stage = ""  # a study's: its samples done and the current one (pipeline/study.py)
        if live:
            self._start_bar()

    def __enter__(self) -> RunProgress:
        """The loading step: the bar shows it with its elapsed time until `start_stream`."""
        self.loading_since = time.perf_counter()
        self.refresh()  # the loading step shows at once, not at the ticker's first tick (a fast load has none)
        self._start_ticker()
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def start_stream(self, records_before: int, workers: list) -> None:
        """Models ready: the stream starts at `records_before` (a resumed run's checkpoint), and
        local device workers report each batch to the counter."""
        with self._lock:
            self.started = self._last_log = time.perf_counter()
            self.loading_since = None
            self.records_before = self.records = records_before
            for worker in workers:
                if isinstance(worker, DeviceWorker):
                    worker.counter = self.counter
        self._start_ticker()
        self.refresh()

    def set_stage(self, stage: str) -> None:
        """A study's place (samples done / total, the current sample), shown after the rates."""
        with self._lock:
            self.stage = stage
        self.refresh()

    def add_resumed(self, records: int) -> None:
        """A study's sample resumed from its journal: its records written before count as done before."""
        with self._lock:
            self.records_before += records
            self.records += records
        self.refresh()

    def block_written(self, block: WorkBlock) -> None:
        """Its records count as written; a piece of a long record counts its share of the record
        until the last piece completes the record (which then counts once, as one record)."""
        self.counter.block_written(block)
        if block.piece is not None:
            with self._lock:
                self.record_part = 0.0 if block.piece.last else self.record_part + record_share(block)
        self.advance(block.records_completed, block.num_frames, block.esm_tokens)

    def advance(self, records: int, frames: int, tokens: int) -> None:
        with self._lock:
            self.records += records
            self.frames += frames
            self.tokens += tokens
        self.refresh()

    def records_done(self) -> float:
        """Records written, the written pieces of a long record, and the finished batches' share
        of the blocks in flight."""
        return self.records + self.record_part + self.counter.records_in_flight()

    def fraction_done(self) -> float | None:
        """Records done / estimated total records, or None without an estimate (stdin)."""
        total = self._estimated_total()
        return None if total is None else min(self.records_done() / total, 1.0)

    def _estimated_total(self) -> float | None:
        """None until the reader has read something; once known it stays known (as the reader
        closes a file, its bytes read are briefly 0 to another thread: io/reader.py's finally)."""
        reader = self.reader
        total_bytes, read_bytes, read_records = reader.bytes_total, reader.bytes_done, reader.stats.records
        if not total_bytes or not read_bytes or not read_records:
            return self._last_estimate
        self._last_estimate = max(read_records * total_bytes / read_bytes, read_records, self.records, 1)
        return self._last_estimate

    def refresh(self) -> None:
        """Redraw the bar, or log a line if 30 s passed since the last one (no terminal)."""
        with self._lock:
            now = time.perf_counter()
            if self.loading_since is not None:
                if self._bar is not None:
                    self._bar.update(self._task, total=None, stats=f"loading models ({now - self.loading_since:.1f} s)",
                                     refresh=True)
                return
            fraction = self.fraction_done()
            eta = self._eta(now)
            if self._bar is not None:
                self._bar.update(self._task, total=None if fraction is None else _BAR_STEPS,
                                 completed=round((fraction or 0) * _BAR_STEPS), stats=self._stats(now),
                                 percent="" if fraction is None else f"{100 * fraction:5.1f}%",
                                 eta="" if eta is None else f"ETA {_clock(eta)}", refresh=True)
            elif now - self._last_log >= _LOG_EVERY_SECONDS:
                self._last_log = now
                done = "" if fraction is None else f", {100 * fraction:.1f}% done"
                self.logger.info("progress: %s%s%s", self._stats(now), done,
                                 "" if eta is None else f", ETA {_clock(eta)}")

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join()
            self._ticker = None
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    def _eta(self, now: float) -> float | None:
        """From this session's pace: a resumed run's earlier records do not count as speed."""
        total, done = self._estimated_total(), self.records_done()
        if total is None or done <= self.records_before:
            return None
        return (now - self.started) * max(total - done, 0) / (done - self.records_before)

    def _stats(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        frames = max(self.frames, self.counter.frames)
        tokens = max(self.tokens, self.counter.esm_tokens)
        return (f"{self.records:,} reads, {frames / elapsed:,.0f} frames/s, "
                f"{tokens / elapsed:,.0f} tokens/s" + (f", {self.stage}" if self.stage else ""))

    def _start_ticker(self) -> None:
        if self._ticker is None:
            from virnucpro.engine.threads import start_thread

            self._ticker = start_thread("progress", self._tick)

    def _tick(self) -> None:
        while not self._stop.wait(_TICK_SECONDS):
            self.refresh()

    def _start_bar(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from virnucpro.console import stderr_console

        self._bar = Progress(
            TextColumn("[bold]virnucpro"), BarColumn(), TextColumn("{task.fields[percent]}"),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
            console=stderr_console(), transient=False, auto_refresh=False,
        )
        self._task = self._bar.add_task("run", total=None, stats="starting", percent="", eta="")
        self._bar.start()


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
