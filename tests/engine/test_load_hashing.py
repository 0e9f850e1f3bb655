"""The model files' sha256 for the resume fingerprint is computed on a thread while the models load
(a first run hashed 12 GB after the load, ~12 s): the thread returns at once, the fingerprint then
finds every digest remembered (no hashing in the main thread) and they are the files' digests."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time

import pytest
import torch
from conftest import tiny_model_paths

from virnucpro.engine import model_hashes
from virnucpro.engine.encoders import ModelChoice
from virnucpro.engine.local import LocalEngine
from virnucpro.engine.threads import lingering
from virnucpro.models import manifest
from virnucpro.models.registry import hash_stamps
from virnucpro.pipeline.run_state import _file_identity


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def main_thread_hashes(monkeypatch):
    """The files hashed outside our threads (what the fingerprint would still wait for)."""
    hashed: list[str] = []
    real = manifest.sha256_file

    def counting(path):
        if not threading.current_thread().name.startswith("virnucpro-"):
            hashed.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(manifest, "sha256_file", counting)
    return hashed


def test_a_large_model_file_is_hashed_while_the_caller_goes_on(tmp_path, main_thread_hashes):
    big = tmp_path / "model" / "model.safetensors"
    big.parent.mkdir()
    with open(big, "wb") as handle:  # 256 MiB: long enough to see, short enough for a shared CPU
        for _ in range(32):
            handle.write(os.urandom(1 << 20) * 8)
    began = time.perf_counter()
    model_hashes.start_hashing([big.parent])
    returned = time.perf_counter() - began
    hashing = model_hashes.wait_for_hashing()
    assert hashing is not None and returned < hashing / 4  # the caller did not wait for the hash
    identity = _file_identity(big.parent, hash_stamps())
    assert main_thread_hashes == []  # the fingerprint found it remembered
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    assert identity["files"]["model.safetensors"] == {"size": big.stat().st_size, "sha256": digest}
    assert not lingering()


def test_the_local_engine_hashes_while_loading_and_reports_it(tiny_models, main_thread_hashes):
    paths = tiny_model_paths(tiny_models)
    choice = ModelChoice(str(paths["esm2"]), str(paths["dnabert"]), str(paths["classifier"]), 300, None)
    loaded = LocalEngine(logging.getLogger("test")).load(choice, [torch.device("cpu")],
                                                                      torch.float32, None)
    assert loaded.load_phases["model_hash_thread"] is not None and "model_hash_wait" in loaded.load_phases
    stamps = hash_stamps()
    for path in paths.values():
        _file_identity(path, stamps)
    assert main_thread_hashes == []
    assert model_hashes.wait_for_hashing() is None  # nothing left running
