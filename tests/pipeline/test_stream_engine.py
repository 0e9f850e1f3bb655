"""The streaming engine: ordered results from several workers, errors forwarded, and the thread
switch interval lowered only while it runs."""

from __future__ import annotations

import random
import sys
import time

import pytest

from virnucpro.pipeline.stream import SWITCH_INTERVAL_SECONDS, StreamEngine


def _slow_square(worker: int, block: int) -> tuple[int, int]:
    time.sleep(random.Random(block).random() / 200)  # finish out of order
    return worker, block * block


def test_results_come_in_block_order_from_every_worker():
    engine = StreamEngine(range(40), [0, 1, 2], _slow_square)
    results = list(engine.results())
    assert [square for _, square in results] == [b * b for b in range(40)]
    assert len({worker for worker, _ in results}) > 1


def test_switch_interval_is_lowered_while_running_and_restored():
    before = sys.getswitchinterval()
    seen = []

    def work(_worker, block):
        seen.append(sys.getswitchinterval())
        return block

    assert list(StreamEngine(range(3), [0], work).results()) == [0, 1, 2]
    assert seen and all(value <= SWITCH_INTERVAL_SECONDS for value in seen)
    assert sys.getswitchinterval() == before


def test_worker_error_reaches_the_caller_and_interval_is_restored():
    before = sys.getswitchinterval()

    def fail(_worker, block):
        if block == 2:
            raise ValueError("bad block")
        return block

    with pytest.raises(ValueError, match="bad block"):
        list(StreamEngine(range(5), [0], fail).results())
    assert sys.getswitchinterval() == before
