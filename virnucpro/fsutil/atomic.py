"""Atomic, durable small files (run.json, shard.json, a trained classifier, a models manifest): a
reader never sees a half-written file. The temporary file is created exclusively (never through a link) with the
umask's mode, so the final file has the same permissions as every other output."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from virnucpro.fsutil.safe_files import open_exclusive


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to a new temporary file beside `path`, fsync, then rename over `path`."""
    write_chunks_atomic(path, [data])


def write_chunks_atomic(path: str | Path, chunks: Iterable[bytes]) -> None:
    """`write_bytes_atomic` for data that is produced piece by piece (never all in memory)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    handle = open_exclusive(temporary)
    try:
        with handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_json_atomic(path: str | Path, obj: Any, sort_keys: bool = False) -> None:
    """Write `obj` as indented JSON, atomically (see `write_bytes_atomic`)."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode())
