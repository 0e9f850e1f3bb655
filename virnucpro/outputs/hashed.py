"""HashedAppender: a result file that keeps a running sha256 of every byte the writer appends.

The resume journal stores each partial file's size and this digest at every checkpoint, so a
resume can prove that the bytes it keeps are exactly the bytes this run wrote (a torn, truncated
or edited partial file is refused instead of silently continued). Rows are collected in a list
(`write` is the list's own `append`, so the per-row cost stays one C call) and hashed and written
together at `flush()`, which the writer calls at every checkpoint.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

_READ_BYTES = 1 << 20


class HashedAppender:
    def __init__(self, handle: BinaryIO, prefix_sha256=None) -> None:
        """`handle` is positioned at its end; `prefix_sha256` has hashed the bytes before it."""
        self._handle = handle
        self._sha = prefix_sha256 if prefix_sha256 is not None else hashlib.sha256()
        self._pending: list[bytes] = []
        self.write = self._pending.append

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._handle.write(data)
            self._sha.update(data)
        self._handle.flush()

    def hexdigest(self) -> str:
        """sha256 of the file's bytes up to the last flush."""
        return self._sha.hexdigest()

    def fileno(self) -> int:
        return self._handle.fileno()

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        """Close; rows not yet flushed are dropped (they are past the last checkpoint anyway)."""
        self._pending.clear()
        self._handle.close()


def sha256_of_prefix(handle: BinaryIO, size: int):
    """The sha256 object of the first `size` bytes of `handle` (read from the start), and the last byte."""
    sha = hashlib.sha256()
    handle.seek(0)
    remaining, last = size, b""
    while remaining > 0:
        data = handle.read(min(remaining, _READ_BYTES))
        if not data:
            break
        sha.update(data)
        remaining -= len(data)
        last = data[-1:]
    return sha, last
