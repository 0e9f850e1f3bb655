"""Token-budget batching and OOM split-and-retry (with an injected OOM on CPU)."""

from __future__ import annotations

import random

import pytest
import torch

from virnucpro.engine.batching import auto_token_budget, token_budget_batches
from virnucpro.engine.oom import DeviceMemoryError, run_with_oom_split


def test_batches_respect_budget_and_keep_every_item_once():
    rng = random.Random(0)
    items = [rng.randint(1, 120) for _ in range(1000)]
    batches = list(token_budget_batches(items, length=lambda n: n, max_tokens=500))
    seen = sorted(i for b in batches for i in b.indices)
    assert seen == list(range(len(items)))
    for batch in batches:
        assert [items[i] for i in batch.indices] == batch.items
        assert batch.num_tokens == sum(batch.items) <= 500
        assert batch.items == sorted(batch.items)
    for batch, after in zip(batches, batches[1:]):  # all items sorted together, shortest first
        assert max(batch.items) <= min(after.items)


def test_an_item_over_budget_goes_alone():
    batches = list(token_budget_batches([3, 900, 4], length=lambda n: n, max_tokens=100))
    assert [b.items for b in batches] == [[3, 4], [900]]


def test_auto_budget_is_a_bounded_power_of_two():
    assert auto_token_budget(free_bytes=80 * 2**30, bytes_per_token=100_000) == 262_144
    assert auto_token_budget(free_bytes=8 * 2**30, bytes_per_token=100_000) == 32_768
    assert auto_token_budget(free_bytes=0, bytes_per_token=100_000) == 4_096


def fails_above(limit):
    calls = []

    def run(items):
        calls.append(len(items))
        if len(items) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return [x * 10 for x in items]

    return run, calls


def test_oom_splits_in_halves_and_keeps_order():
    run, calls = fails_above(2)
    splits = []
    assert run_with_oom_split(list(range(7)), run, on_split=splits.append) == [x * 10 for x in range(7)]
    assert calls[0] == 7 and max(calls[1:]) <= 4 and splits[0] == 7


def test_oom_on_a_single_item_is_a_user_error():
    run, _ = fails_above(0)
    with pytest.raises(DeviceMemoryError):
        run_with_oom_split([1, 2], run)
