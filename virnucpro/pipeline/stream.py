"""The streaming engine: a producer thread builds blocks, one thread per device runs them, and the
caller receives the results strictly in the order the blocks were produced.

Queues are bounded, so memory stays flat whatever the input size. Devices take the next block
from one shared queue (a fast device simply takes more blocks: work stealing). An exception in any
thread stops the others and is re-raised in the caller. Stopping (the end of the results, an error,
Ctrl-C in the caller) joins every thread within `STOP_SECONDS`: device work reaches a stop point
between batches (engine/threads.py says why no thread may outlive the run).

While the engine runs, the interpreter's thread switch interval is lowered (5 ms -> 0.2 ms).
PyTorch releases the GIL inside every op, and with the default interval a thread busy in Python
(the producer building a block, the writer formatting one) then keeps the GIL ~5 ms each time the
worker lets go of it: the worker issues ~300 ops/s instead of ~250,000, and a GPU fed with short
kernels (DNABERT-S) runs dry. At 0.2 ms the worker waits ~0.1 ms per op and the Python threads
keep ~90% of their speed (benchmarks/bench_gil_convoy.py).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from virnucpro.engine.threads import Stopped, join_all, start_thread, stop_point

_POLL_SECONDS = 0.2
SWITCH_INTERVAL_SECONDS = 2e-4
QUEUE_DEPTH = 3  # blocks waiting per worker, built and finished: memory stays flat, no device waits
STOP_SECONDS = 10.0  # a stop waits this long for the threads; one GPU batch takes < 1 s
_DONE = object()
_log = logging.getLogger(__name__)


class StreamEngine:
    """Runs `work(worker, block)` for every block of `blocks` on the given workers, in parallel."""

    def __init__(self, blocks: Iterable[Any], workers: list[Any], work: Callable[[Any, Any], Any]):
        self._blocks = blocks
        self._workers = workers
        self._work = work
        self._todo: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH * max(1, len(workers)))
        self._done: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH * max(1, len(workers)))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failure: BaseException | None = None

    def results(self) -> Iterator[Any]:
        """Yield `work` results in the order the blocks were produced."""
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(previous_interval, SWITCH_INTERVAL_SECONDS))
        try:
            yield from self._ordered_results()
        finally:
            sys.setswitchinterval(previous_interval)

    def _ordered_results(self) -> Iterator[Any]:
        self._start()
        pending: dict[int, Any] = {}
        next_index = 0
        finished_workers = 0
        try:
            while finished_workers < len(self._workers):
                item = self._next_done()
                if item is _DONE:
                    finished_workers += 1
                    continue
                index, result = item
                pending[index] = result
                while next_index in pending:
                    yield pending.pop(next_index)
                    next_index += 1
            if pending:
                raise RuntimeError(f"blocks {sorted(pending)} finished out of order")  # a bug, never input
        finally:
            self.stop()

    def stop(self) -> list[threading.Thread]:
        """Ask every thread to stop and join them within `STOP_SECONDS`; return any still running."""
        self._stop.set()
        running = join_all(self._threads, STOP_SECONDS)
        if running:
            _log.debug("threads still running %.0f s after the stop: %s", STOP_SECONDS, [t.name for t in running])
        return running

    def _start(self) -> None:
        self._threads = [start_thread("producer", self._produce, stop=self._stop)]
        self._threads += [start_thread(f"worker-{i}", self._consume, worker, stop=self._stop)
                          for i, worker in enumerate(self._workers)]

    def _next_done(self) -> Any:
        while True:
            if self._failure is not None:
                raise self._failure
            try:
                return self._done.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue

    def _put(self, target: queue.Queue, item: Any) -> None:
        while True:
            stop_point()
            try:
                target.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _get(self, source: queue.Queue) -> Any:
        while True:
            stop_point()
            try:
                return source.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue

    def _produce(self) -> None:
        try:
            for position, block in enumerate(self._blocks):
                self._put(self._todo, (position, block))
            for _ in self._workers:
                self._put(self._todo, _DONE)
        except Stopped:
            return
        except BaseException as error:  # noqa: BLE001 (forwarded to the caller, which re-raises it)
            self._fail(error)

    def _consume(self, worker: Any) -> None:
        try:
            while (item := self._get(self._todo)) is not _DONE:
                position, block = item
                self._put(self._done, (position, self._work(worker, block)))
            self._put(self._done, _DONE)
        except Stopped:
            return
        except BaseException as error:  # noqa: BLE001 (forwarded to the caller, which re-raises it)
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        self._stop.set()
