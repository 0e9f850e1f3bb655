"""The resume journal: a tiny JSON file, atomically replaced after every finished block.

It records how many blocks and records are final and the byte size of every partial result file
at that moment. After a crash (even kill -9) the writer cuts the partial files back to those sizes
and the run continues with the next block, so nothing is lost or duplicated. A fingerprint of the
inputs and of every result-affecting parameter guards against resuming a different run.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from virnucpro.errors import ResumeError
from virnucpro.io.sources import is_stream
from virnucpro.outputs.jsonfile import write_json_atomic

JOURNAL_VERSION = 1
_HEAD_BYTES = 1 << 20


@dataclass
class Journal:
    fingerprint: str
    blocks_done: int = 0
    records_done: int = 0
    offsets: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    shard_log: dict | None = None  # only for --shard runs: what `merge` needs (see shards.py)
    version: int = JOURNAL_VERSION

    def save(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> Journal:
        try:
            data = json.loads(path.read_text())
            journal = cls(**data)
        except (OSError, ValueError, TypeError) as error:
            raise ResumeError(f"cannot read the resume journal {path}: {error}") from None
        if journal.version != JOURNAL_VERSION:
            raise ResumeError(f"{path} was written by another virnucpro version; rerun with --force")
        return journal


def input_identity(paths: list[str]) -> list[dict]:
    """Name, size, mtime and a hash of the first MiB of every input (a stream, e.g. stdin or a pipe,
    is only named: reading it here would consume it, and it cannot be resumed)."""
    identity = []
    for path in paths:
        if is_stream(path):
            identity.append({"path": path})
            continue
        stat = os.stat(path)
        with open(path, "rb") as handle:
            head = hashlib.sha256(handle.read(_HEAD_BYTES)).hexdigest()
        identity.append({"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                         "head_sha256": head})
    return identity


def fingerprint(inputs: list[dict], parameters: dict) -> str:
    """A stable hash of what decides the results: inputs, models, chunking, batching, precision."""
    text = json.dumps({"inputs": inputs, "parameters": parameters}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
