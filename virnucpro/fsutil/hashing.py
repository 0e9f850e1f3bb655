"""sha256 of a whole file, read in blocks (multi-GB checkpoints never sit in memory at once)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_HASH_BLOCK_BYTES = 8 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()
