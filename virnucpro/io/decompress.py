"""Decompressing one input, with the compression taken from its magic bytes (names can lie).

gzip is read with the standard library's reader through `CompleteMembers`, so that data after the
last complete gzip member is told apart from a corrupt member: xopen's faster isal reader raises
for trailing data before handing over what the complete members held, so the error could not name
the last good record. Decompression is not the bottleneck: a GPU consumes well under 1 MB of
sequence per second, zlib decompresses over 100 MB/s.
"""

from __future__ import annotations

import gzip
import importlib
import io
import lzma
import zlib
from typing import BinaryIO

from xopen import xopen

MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00", "zstd": b"\x28\xb5\x2f\xfd"}
_XOPEN_FORMAT = {"bzip2": "bz2", "xz": "xz", "zstd": "zst"}
_BUFFER = 1 << 17


def _decompression_errors() -> tuple[type[BaseException], ...]:
    """Errors the decompressors raise on corrupt or truncated data (EOFError: truncated)."""
    errors: list[type[BaseException]] = [EOFError, OSError, lzma.LZMAError, zlib.error]
    for zstd_module in ("zstandard", "backports.zstd", "compression.zstd"):  # whichever xopen picks
        try:
            errors.append(importlib.import_module(zstd_module).ZstdError)
        except ImportError:
            pass
    return tuple(errors)


DECOMPRESSION_ERRORS = _decompression_errors()


def compression_of(head: bytes) -> str | None:
    """'gzip', 'bzip2', 'xz' or 'zstd' from the first bytes; None for uncompressed data."""
    return next((name for name, magic in MAGIC.items() if head.startswith(magic)), None)


def decompressed(raw: BinaryIO, compression: str | None) -> tuple[BinaryIO, CompleteMembers | None]:
    """A peekable binary stream of the decompressed data, and for gzip the member reader (whose
    `trailing` tells, once the stream has ended, whether junk followed the last member)."""
    if compression is None:
        return raw, None
    if compression == "gzip":
        members = CompleteMembers(gzip.GzipFile(fileobj=raw, mode="rb"))
        return io.BufferedReader(members, _BUFFER), members
    return xopen(raw, "rb", threads=0, format=_XOPEN_FORMAT[compression]), None


class CompleteMembers(io.RawIOBase):
    """The data of a gzip stream's members; bytes after the last complete member that do not start
    another member end the data (as EOF) and are kept in `trailing` as the reason."""

    def __init__(self, gzip_file: gzip.GzipFile):
        super().__init__()
        self._gzip = gzip_file
        self.trailing: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._gzip.read1(len(buffer))  # one member's data at most: nothing complete is lost
        except gzip.BadGzipFile as error:
            if not str(error).startswith("Not a gzipped file"):  # the first member's magic was
                raise  # checked, so this is a later "member" that is not one
            self.trailing = " ".join(str(error).split())
            return 0
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._gzip.close()
        super().close()
