"""warm-settings.json is a cache anyone with the home directory can edit: a corrupt, deeply nested,
huge, FIFO or symlinked record must count as cold (a debug line at most), never crash or hang a
run, and a later record is never written through a link."""

from __future__ import annotations

import logging
import os

import pytest

from virnucpro.engine import compile_cache
from virnucpro.engine.compile_cache import COMPILE_THREADS_VARIABLE, compile_in_process_if_warm, remember_warm


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(COMPILE_THREADS_VARIABLE, raising=False)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    yield
    os.environ.pop(COMPILE_THREADS_VARIABLE, None)


def _record():
    root = compile_cache.compile_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return root / "warm-settings.json"


SETTING = '{"devices": ["NVIDIA H200"]}'


@pytest.mark.parametrize("content", [b"[" * 200_000, b'["' + b"x" * 3_000_000 + b'"]', b"\xff\xfe[1]",
                                     b'[NaN, "x"]', b"[" + b'"a",' * 10 + b'{"a": 1}]'])
def test_a_corrupt_deep_or_huge_record_is_ignored_with_a_debug_line(content, caplog):
    _record().write_bytes(content)
    with caplog.at_level(logging.DEBUG, logger=compile_cache.__name__):
        assert not compile_in_process_if_warm(SETTING)
    assert all(record.levelno == logging.DEBUG for record in caplog.records)
    remember_warm(SETTING)  # replaced by a valid record
    assert compile_in_process_if_warm(SETTING)


def test_a_fifo_record_does_not_hang_the_run():
    os.mkfifo(_record())
    assert not compile_in_process_if_warm(SETTING)  # opened non-blocking, refused as not a regular file


def test_a_symlinked_record_is_not_read_nor_written_through(tmp_path):
    elsewhere = tmp_path / "someone-elses.json"
    elsewhere.write_text(f"[{SETTING!r}]".replace("'", '"'))  # would say 'warm' if followed
    _record().symlink_to(elsewhere)
    assert not compile_in_process_if_warm(SETTING)
    remember_warm(SETTING)
    assert elsewhere.read_text() == f"[{SETTING!r}]".replace("'", '"')  # untouched
    assert not _record().is_symlink() and compile_in_process_if_warm(SETTING)


def test_a_record_linked_to_an_endless_device_is_not_read():
    _record().symlink_to("/dev/zero")
    assert not compile_in_process_if_warm(SETTING)


