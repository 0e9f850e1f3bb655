"""One run per output directory: an exclusive flock on STATE_DIR/lock, held for the whole run.

The kernel drops a flock when its holder dies (even by kill -9), so a lock file left behind by a
killed run never blocks the next run or a --resume; only a live holder does. The file names the
holder (command, PID, host, start time) so a refused run can say who is using the directory.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from virnucpro.errors import VirnucproError
from virnucpro.fsutil.safe_files import NEW_FILE_MODE
from virnucpro.outputs.paths import OutputPaths

LOCK_NAME = "lock"
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class OutputInUseError(VirnucproError):
    """Another live virnucpro run holds the output directory."""


class RunDirLock:
    """`with RunDirLock(outdir, "merge"): ...` holds OUTDIR for one command; `state_dir` overrides
    where the lock lives (embed keeps its state in OUT.parquet.parts)."""

    def __init__(self, outdir: str | Path, command: str, state_dir: str | Path | None = None,
                 on_busy: Callable[[str], None] | None = None) -> None:
        self.outdir = Path(outdir)
        self.on_busy = on_busy  # None: refuse while another run holds it; else told the holder, then wait
        self.command = command
        self.state_dir = Path(state_dir) if state_dir is not None else OutputPaths(outdir).state_dir
        self.path = self.state_dir / LOCK_NAME
        self._fd: int | None = None
        self._made: list[Path] = []  # directories above the state dir that acquire() created
        self.inherited = False  # the lock file was there already: left by a run that was killed

    def __enter__(self) -> RunDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        if self.state_dir.is_symlink():
            raise VirnucproError(f"{self.state_dir} is a symbolic link; remove it")
        try:
            parent = self.state_dir.parent
            while not parent.exists() and parent != parent.parent:
                self._made.append(parent)
                parent = parent.parent
            while self._fd is None:
                self.state_dir.mkdir(parents=True, exist_ok=True)  # again after a holder we waited for removed it
                self._fd = self._try_lock()
            holder = json.dumps({"command": self.command, "pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())})
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, holder.encode() + b"\n", 0)
        except OSError as error:
            self.release()
            if error.errno == errno.ELOOP:
                raise VirnucproError(f"{self.path} is a symbolic link; remove it") from None
            raise VirnucproError(f"cannot write to {self.outdir}: {error.strerror}") from None

    def release(self) -> None:
        """Remove the lock file (and the state dir and the directories acquire() made, as far as
        that leaves them empty: a run that stopped before its first write leaves nothing), then unlock."""
        if self._fd is None:
            return
        if _same_file(self._fd, self.path):
            self.path.unlink(missing_ok=True)
            for directory in [self.state_dir, *self._made]:
                try:
                    directory.rmdir()
                except OSError:
                    break  # not empty: a journal for --resume, parts, or results
        os.close(self._fd)
        self._fd = None

    def _try_lock(self) -> int | None:
        """A locked descriptor of the current lock file; None when the file was replaced meanwhile."""
        existed = os.path.lexists(self.path)
        fd = os.open(self.path, _OPEN_FLAGS, NEW_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if self.on_busy is not None:
                self.on_busy(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)  # until the holder ends; it removes the file, so check below
                return self._locked(fd, existed)
            os.close(fd)
            raise OutputInUseError(f"{self.outdir} is in use by another virnucpro run ({holder}); wait for it"
                                   " to end or choose another output directory") from None
        return self._locked(fd, existed)

    def _locked(self, fd: int, existed: bool) -> int | None:
        if _same_file(fd, self.path):
            self.inherited = existed
            return fd
        os.close(fd)  # its holder removed it while we waited for the lock: lock the new one
        return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _holder(fd: int) -> str:
    """`predict, PID 123 on host, started ...` from the lock file, as far as it can be read."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"{info['command']}, PID {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "PID unknown: it is still starting"
