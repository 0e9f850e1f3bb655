"""The model files' sha256 (the resume fingerprint's, pipeline/run_state.py) computed on a thread
while the models load, instead of after them.

On a first run (or after a model file changed) hashing the 12 GB of model files took ~12 s on its
own before the journal could open (issue #20); sha256 releases the GIL, so the thread costs the
load nothing but a core. It fills the remembered stamps (models/manifest.py HashStamps, keyed by
size and mtime) that the fingerprint then reads, so the digests are the same ones by construction.
A failure on the thread is left to the fingerprint, which hashes again and reports it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

from virnucpro.engine.threads import start_thread, stop_point
from virnucpro.models.registry import hash_stamps

_lock = threading.Lock()
_running: list[threading.Thread] = []
_seconds: list[float] = []


def model_files(paths: Iterable[Path]) -> list[Path]:
    """Every file of each model path (a directory's files, sorted, or the file itself)."""
    files: list[Path] = []
    for path in paths:
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


def start_hashing(paths: Iterable[Path]) -> None:
    """Hash (or find remembered) every file of `paths` on a thread."""
    thread = start_thread("hash-models", _hash_all, model_files(paths))
    with _lock:
        _running.append(thread)


def wait_for_hashing() -> float | None:
    """Wait for the hashing threads started so far; the seconds they spent hashing (None if none ran)."""
    with _lock:
        threads = list(_running)
        _running.clear()
    for thread in threads:
        thread.join()
    with _lock:
        spent = sum(_seconds) if threads else None
        _seconds.clear()
    return spent


def _hash_all(files: list[Path]) -> None:
    started = time.perf_counter()
    stamps = hash_stamps()
    for file in files:
        stop_point()
        try:
            stamps.sha256(file)
        except OSError:
            return  # the fingerprint hashes again and reports the error in the main thread
    with _lock:
        _seconds.append(time.perf_counter() - started)
