"""Ctrl-C and SIGTERM: one line and exit 130 / 143, every time, and never an abort.

While a command runs, SIGINT and SIGTERM raise `Interrupted` in the main thread (the only thread
that handles signals; ours block them, see engine/threads.py). It unwinds the run like an error: the
resume journal stays, the run's threads are stopped and joined. A second signal during that
clean-up, or a first one that comes once the exit code is settled, ends the process at once with
the same line and code; an interrupted process ends without the interpreter's finalization. A
signal the parent set to be ignored (a background job of a script) stays ignored.

`Interrupted` is not a KeyboardInterrupt on purpose: click turns those into Abort after printing an
empty line, which would make the message two lines.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_REDELIVER_SECONDS = 0.01


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised in the main thread."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum  # as shells report a process ended by the signal


class SignalGuard:
    """The handlers of one command: raise on the first signal, end the process on a later one."""

    def __init__(self, message: str):
        self.message = message
        self.exit_code: int | None = None  # of the first signal
        self._signum = 0
        self._raising = False
        self._pending = False  # an Interrupted that a finalizer swallowed, to raise again
        self._in_hook = False
        self._redelivery = threading.Lock()
        self._settled = False
        self._told = False
        self._previous: dict[int, object] = {}
        self._previous_hook = sys.unraisablehook

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # in-process use from another thread: signals are that program's business
        for signum in _SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._handle)
        if self._previous:
            sys.unraisablehook = self._unraisable
        self._raising = True

    def settle(self) -> None:
        """The exit code is being decided: from now on a signal ends the process at once."""
        self._raising = False
        self._settled = True

    def restore(self) -> None:
        """Put back what `install` replaced (in-process callers, e.g. tests)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self._previous:
            sys.unraisablehook = self._previous_hook
        self._previous.clear()

    def report(self) -> int:
        """Print the one line (once) and return the exit code: the first signal's, else 130 (a
        KeyboardInterrupt raised without a signal, e.g. in-process)."""
        self._tell()
        return self.exit_code or 130

    def _handle(self, signum: int, frame: object) -> None:
        if self.exit_code is None:
            self.exit_code, self._signum = 128 + signum, signum
        if self._in_hook:
            return  # a redelivery that came too early: `_redeliver` tries again
        with self._redelivery:
            raise_now, self._raising, self._pending = self._raising or self._pending, False, False
        if raise_now:
            raise Interrupted(self._signum)
        self._tell()
        end_process(self.exit_code)

    def _unraisable(self, unraisable) -> None:
        """Python swallows an exception raised inside a finalizer (a generator closed by the garbage
        collector, a __del__): if that was our Interrupted, raise it again in the code around it."""
        if not isinstance(unraisable.exc_value, Interrupted):
            self._previous_hook(unraisable)
        elif self._settled:
            self._tell()
            end_process(unraisable.exc_value.exit_code)
        else:
            self._in_hook = self._pending = True
            _thread.start_new_thread(self._redeliver, ())  # returns at once, unlike threading's start()
            self._in_hook = False

    def _redeliver(self) -> None:
        """From another thread, until it took: `_handle` runs in the main thread, which by the time
        this thread wakes has left the finalizer (if not, the raise is swallowed again, and retried)."""
        while self._pending:
            time.sleep(_REDELIVER_SECONDS)
            with self._redelivery:  # never a trip that `_handle` would take for a second signal
                if self._pending:
                    _thread.interrupt_main(self._signum)

    def _tell(self) -> None:
        if self._told:
            return
        self._told = True
        try:
            sys.stderr.write(f"{self.message}\n")
            sys.stderr.flush()
        except (OSError, ValueError, RuntimeError):  # stderr closed, or a write this signal interrupted
            os.write(2, f"{self.message}\n".encode())


def end_process(exit_code: int) -> None:
    """Exit now, without finalizing the interpreter. Safe for the run's files: everything up to the
    last journal checkpoint is on disk and `--resume` truncates the rest, as after kill -9."""
    _flush_stdio()
    os._exit(exit_code)


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):  # closed, or a write interrupted by this signal
            pass
