"""After a warm-up has filled the compile caches for a setting, later runs with that setting compile
in-process (no Inductor worker pool to start, nor to shut down at exit); a user's choice of
TORCHINDUCTOR_COMPILE_THREADS is kept, and a damaged record counts as cold."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from virnucpro.engine import compile_cache
from virnucpro.engine.compile_cache import (
    COMPILE_THREADS_VARIABLE,
    compile_in_process_if_warm,
    compile_setting,
    remember_warm,
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(COMPILE_THREADS_VARIABLE, raising=False)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    config = sys.modules.get("torch._inductor.config")
    saved = config.compile_threads if config is not None else None
    yield
    if config is not None:  # set back by hand: monkeypatch's undo deletes a config entry for good
        config.compile_threads = saved


def _setting(tmp_path, gpu="NVIDIA H200"):
    return compile_setting([gpu], torch.bfloat16, {"esm2": tmp_path / "esm2", "dnabert": tmp_path / "dnabert-s"})


def test_a_warm_setting_compiles_in_process(tmp_path):
    setting = _setting(tmp_path)
    assert not compile_in_process_if_warm(setting)  # cold: Inductor's pool as usual
    assert COMPILE_THREADS_VARIABLE not in os.environ
    remember_warm(setting)
    assert compile_in_process_if_warm(setting)
    assert os.environ[COMPILE_THREADS_VARIABLE] == "1"
    if (config := sys.modules.get("torch._inductor.config")) is not None:
        assert config.compile_threads == 1


def test_another_gpu_or_model_is_cold(tmp_path):
    remember_warm(_setting(tmp_path))
    assert not compile_in_process_if_warm(_setting(tmp_path, gpu="NVIDIA A100"))
    other = compile_setting(["NVIDIA H200"], torch.bfloat16, {"esm2": tmp_path / "esm2-650m"})
    assert not compile_in_process_if_warm(other)


def test_the_users_choice_is_kept(tmp_path, monkeypatch):
    setting = _setting(tmp_path)
    remember_warm(setting)
    monkeypatch.setenv(COMPILE_THREADS_VARIABLE, "8")
    assert not compile_in_process_if_warm(setting)
    assert os.environ[COMPILE_THREADS_VARIABLE] == "8"


@pytest.mark.parametrize("content", ["{not json", '{"a": 1}', '[1, 2]', ""])
def test_a_damaged_record_counts_as_cold(tmp_path, content):
    setting = _setting(tmp_path)
    root = compile_cache.compile_cache_root()
    root.mkdir(parents=True)
    (root / "warm-settings.json").write_text(content)
    assert not compile_in_process_if_warm(setting)
    remember_warm(setting)  # rewritten as a valid record
    assert compile_in_process_if_warm(setting)
