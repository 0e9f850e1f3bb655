"""Sizes and sha256 of every file in a models directory, and checking files against them.

`virnucpro download` writes DIR/manifest.json; loading checks sizes every time (a stat per file)
and sha256 once per file version: a successful hash is remembered in a stamp file keyed by
(absolute path, size, mtime), so multi-GB checkpoints are hashed on first use only, and again
only after they change. Stamps live in the user's cache, because a shared models directory on a
cluster is often read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from virnucpro.errors import ModelLoadError
from virnucpro.models.model_files import inside
from virnucpro.untrusted import Invalid, load_json_object

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "virnucpro-models/1"
_HASH_BLOCK_BYTES = 8 << 20


class ModelIntegrityError(ModelLoadError):
    """A model file is missing, truncated or differs from what the manifest recorded."""


@dataclass(frozen=True)
class FileRecord:
    size: int
    sha256: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: Path, obj: object) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


class Manifest:
    """DIR/manifest.json: relative POSIX path -> FileRecord, plus where each model came from."""

    def __init__(self, root: Path, files: dict[str, FileRecord], sources: dict[str, dict]):
        self.root = Path(root)
        self.files = files
        self.sources = sources

    @classmethod
    def load(cls, root: Path) -> Manifest | None:
        """The manifest of `root`, or None when it has none (a hand-assembled directory)."""
        path = Path(root) / MANIFEST_NAME
        if not path.is_file():
            return None
        try:
            data = load_json_object(path)
            files = {name: _file_record(r) for name, r in data["files"].items()}
            sources = dict(data.get("sources", {}))
            version = data.get("format")
        except (Invalid, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ModelIntegrityError(f"unreadable model manifest {path}: {str(error)[:200]}") from None
        if version != MANIFEST_FORMAT:
            raise ModelIntegrityError(f"{path} has format {str(version)[:40]!r}, expected {MANIFEST_FORMAT!r}")
        for name in files:  # a name is only ever joined to root after this check
            inside(Path(root), name, f"model manifest {path}")
        return cls(root, files, sources)

    @classmethod
    def load_or_empty(cls, root: Path) -> Manifest:
        return cls.load(root) or cls(root, {}, {})

    def save(self) -> None:
        files = {name: {"size": r.size, "sha256": r.sha256} for name, r in sorted(self.files.items())}
        write_json_atomic(
            self.root / MANIFEST_NAME, {"format": MANIFEST_FORMAT, "files": files, "sources": self.sources}
        )

    def under(self, prefix: str) -> dict[str, FileRecord]:
        """Entries of one model: `prefix` is a sub-directory ("dnabert-s") or one file's path."""
        return {
            name: record
            for name, record in self.files.items()
            if name == prefix or name.startswith(prefix.rstrip("/") + "/")
        }

    def record(self, relative: str, sha256: str) -> None:
        self.files[relative] = FileRecord((self.root / relative).stat().st_size, sha256)

    def forget(self, prefix: str) -> None:
        for name in self.under(prefix):
            del self.files[name]

    def check_sizes(self, prefix: str) -> None:
        """The cheap check done on every load: each recorded file exists with its recorded size."""
        for name, record in self.under(prefix).items():
            path = self.root / name
            if not path.is_file():
                raise ModelIntegrityError(f"{path} is missing; {redownload_hint(self.root)}")
            size = path.stat().st_size
            if size != record.size:
                raise ModelIntegrityError(
                    f"{path} has {size} bytes, the manifest says {record.size}; {redownload_hint(self.root)}"
                )

    def verify(self, prefix: str, stamps: HashStamps) -> None:
        """Sizes, then sha256 of every file not already verified in its current version."""
        self.check_sizes(prefix)
        for name, record in self.under(prefix).items():
            path = self.root / name
            if stamps.sha256(path) != record.sha256:
                raise ModelIntegrityError(
                    f"{path} is corrupt (sha256 differs from the manifest); {redownload_hint(self.root)}"
                )


def _file_record(raw: dict) -> FileRecord:
    size, sha256 = raw["size"], raw["sha256"]
    if type(size) is not int or size < 0 or not isinstance(sha256, str) or len(sha256) != 64:
        raise ValueError("a file entry needs a whole-number size and a sha256 hex digest")
    return FileRecord(size, sha256)


def redownload_hint(root: Path) -> str:
    return f"run `virnucpro download --dir {root}` to repair it"


class HashStamps:
    """Remembered sha256 of files by (path, size, mtime), so each file version is hashed once."""

    def __init__(self, stamp_file: Path | None):
        self.stamp_file = stamp_file
        self._stamps: dict[str, list] = {}
        if stamp_file is not None and stamp_file.is_file():
            try:
                self._stamps = dict(json.loads(stamp_file.read_text()))
            except ValueError:
                self._stamps = {}  # a damaged stamp file only costs re-hashing

    def sha256(self, path: Path) -> str:
        path = Path(path).resolve()
        info = path.stat()
        key = [info.st_size, info.st_mtime_ns]
        stamp = self._stamps.get(str(path))
        if stamp is not None and stamp[:2] == key:
            return stamp[2]
        digest = sha256_file(path)
        self._stamps[str(path)] = [*key, digest]
        self._save()
        return digest

    def _save(self) -> None:
        if self.stamp_file is None:
            return
        try:
            self.stamp_file.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.stamp_file, self._stamps)
        except OSError:
            pass  # an unwritable cache only means hashing again next time
