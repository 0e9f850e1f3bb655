"""Creating and removing files in an output directory without following links or clobbering.

Every file a run writes is created with O_CREAT|O_EXCL|O_NOFOLLOW: a name that already exists (a
planted symlink, another run's file, a user's file) makes the run stop instead of writing through
it. Files get mode 0o666 minus the umask, exactly what a plain open() gives.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import BinaryIO

from virnucpro.errors import VirnucproError

NEW_FILE_MODE = 0o666  # the kernel applies the umask, as for open(..., "w")
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class OutputClobberError(VirnucproError):
    """A name the run is about to write or remove is a link or a file this run did not create."""


def create_exclusive(path: str | Path) -> int:
    """A descriptor of a file that did not exist before this call (refuses links and existing names)."""
    try:
        return os.open(path, _CREATE_FLAGS, NEW_FILE_MODE)
    except FileExistsError:
        raise OutputClobberError(f"{path} already exists and this run did not create it{_kind(path)};"
                                 " remove it or rerun with --force") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OutputClobberError(f"{path} is a symbolic link; remove it or rerun with --force") from None
        raise


def open_exclusive(path: str | Path, buffering: int = -1) -> BinaryIO:
    """`create_exclusive` as a binary file object."""
    return os.fdopen(create_exclusive(path), "wb", buffering=buffering)


def refuse_link(path: Path) -> None:
    """Refuse to use `path` when it is a symbolic link (its target is not ours to write)."""
    if path.is_symlink():
        raise OutputClobberError(f"{path} is a symbolic link; remove it or rerun with --force")


def remove_file(path: Path) -> None:
    """Remove a file or a link (never its target); a directory under a file's name is not ours."""
    if path.is_dir() and not path.is_symlink():
        raise OutputClobberError(f"{path} is a directory, not a file virnucpro wrote; remove it yourself")
    path.unlink(missing_ok=True)


def remove_tree(path: Path, keep: str | None = None) -> None:
    """Remove a directory tree (links inside are removed, not followed), except its entry `keep`;
    a link or file under the directory's name is removed itself."""
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    for entry in path.iterdir():
        if entry.name == keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if keep is None:
        path.rmdir()


def _kind(path: str | Path) -> str:
    return " (a symbolic link)" if os.path.islink(path) else ""
