"""The threads virnucpro starts: named, deaf to signals, stoppable between steps, joined by a deadline.

Why: a thread still inside a torch op (C++, GIL released) when the interpreter finalizes is ended by
`pthread_exit` as soon as it asks for the GIL back; that forced unwind runs into pybind11's noexcept
`gil_scoped_release` destructor and the process aborts ("terminate called without an active
exception", exit 134, a core dump). So every thread we start is stopped and joined before the CLI
returns; long work calls `stop_point()` between steps so a stop waits for one step, not a whole
block; SIGINT/SIGTERM are blocked in these threads (and in the native threads they spawn), so the
kernel delivers them to the main thread, whose handlers raise there; and a thread that does not stop
within its deadline is reported by `lingering()`, so the CLI can end the process without running the
interpreter's finalization under it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable

NAME_PREFIX = "virnucpro-"
_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_local = threading.local()


class Stopped(Exception):
    """Raised inside one of our threads at a stop point once its owner asked it to stop."""


def start_thread(name: str, target: Callable[..., object], *args: object,
                 stop: threading.Event | None = None) -> threading.Thread:
    """Start daemon thread `virnucpro-<name>` with SIGINT/SIGTERM blocked from its first instruction
    (the mask is inherited at creation); `stop` is what its `stop_point()` calls look at."""

    def run() -> None:
        _local.stop = stop
        target(*args)

    thread = threading.Thread(target=run, name=NAME_PREFIX + name, daemon=True)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread


def stop_point() -> None:
    """Raise `Stopped` if this thread's owner asked it to stop (a no-op in any other thread)."""
    stop = getattr(_local, "stop", None)
    if stop is not None and stop.is_set():
        raise Stopped


def join_all(threads: Iterable[threading.Thread], timeout: float) -> list[threading.Thread]:
    """Join every thread within one shared deadline; return those still running."""
    deadline = time.monotonic() + timeout
    threads = list(threads)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread for thread in threads if thread.is_alive()]


def lingering() -> list[threading.Thread]:
    """Threads we started that are still running (none, after a clean stop)."""
    return [t for t in threading.enumerate() if t.name.startswith(NAME_PREFIX) and t.is_alive()]
