"""Opening one input so that it can be read twice: once by the start-up check, once by the run.

A regular file is simply reopened. Anything else given as a path (`-`, `/dev/stdin` fed by a pipe,
a process substitution `<(zcat x.gz)`, a named FIFO) can be read only once: the first opening
records the bytes it reads and the second replays them before reading on, so the check that makes a
wrong file fail before the models load no longer eats the start of the stream. Such inputs have no
size and cannot be resumed.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from typing import BinaryIO

# the start-up check stops recording past this (e.g. one huge first record); the run still reads all
PROBE_LIMIT = 64 << 20
_BUFFER = 1 << 17


def is_stream(path: str) -> bool:
    """Whether `path` can be read only once, front to back (stdin, a pipe, a FIFO, a device)."""
    if path == "-":
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # missing: the reader reports it
        return False


def display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


class ProbeLimitReached(Exception):
    """The start-up check read more than PROBE_LIMIT bytes of a stream; the check is inconclusive."""


class InputSource:
    """One input. `open()` gives a buffered, peekable binary file; a stream may be opened twice:
    the first opening (`probe=True`) is recorded, the second replays it and reads on."""

    def __init__(self, path: str):
        self.path = path
        self.name = display_name(path)
        self.stream = is_stream(path)
        self._pipe: BinaryIO | None = None
        self._recorded: bytearray | None = None
        self._replayed = False

    def open(self, probe: bool = False) -> BinaryIO:
        if not self.stream:
            return open(self.path, "rb")  # noqa: SIM115 (the caller closes it)
        if self._replayed:
            raise RuntimeError(f"{self.name} was already read to the end")
        if self._pipe is None:
            self._pipe = sys.stdin.buffer if self.path == "-" else open(self.path, "rb", buffering=0)  # noqa: SIM115
        if probe:
            self._recorded = bytearray()
            return io.BufferedReader(_Replay(self._pipe, bytearray(), self._recorded, owns_pipe=False), _BUFFER)
        self._replayed = True
        prefix, self._recorded = self._recorded or bytearray(), None
        return io.BufferedReader(_Replay(self._pipe, prefix, None, owns_pipe=self.path != "-"), _BUFFER)


class _Replay(io.RawIOBase):
    """`prefix`, then the pipe; what is read from the pipe is appended to `record` (when given).

    Reads fill the buffer unless the pipe ends, like reads of a regular file, so a peek of the
    first bytes sees them all even when the writer sends them in small pieces."""

    def __init__(self, pipe: BinaryIO, prefix: bytearray, record: bytearray | None, owns_pipe: bool):
        super().__init__()
        self._pipe = pipe
        self._prefix = memoryview(prefix)
        self._record = record
        self._owns_pipe = owns_pipe

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            count = min(len(view), len(self._prefix))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:] if count < len(self._prefix) else memoryview(b"")  # frees it
            return count
        filled = 0
        while filled < len(view):
            count = self._pipe.readinto(view[filled:])
            if not count:
                break
            filled += count
        if self._record is not None:
            self._record += view[:filled]  # kept even past the limit: the replay must lose nothing
            if len(self._record) > PROBE_LIMIT:
                raise ProbeLimitReached
        return filled

    def close(self) -> None:
        if self._owns_pipe and not self.closed:
            self._pipe.close()
        super().close()
