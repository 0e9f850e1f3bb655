"""Block cuts of paired mates (frames/windows.py record_groups, io/record_batches.py): a block
never splits a pair, and single-end cuts are exactly those of before."""

from __future__ import annotations

import random
from itertools import islice

import pytest

from virnucpro.errors import InputFormatError
from virnucpro.frames.windows import RecordWindow, record_groups
from virnucpro.io import Record, batch_records


def _records(count: int, seed: int = 1) -> list[Record]:
    rng = random.Random(seed)
    return [Record(f"r{i}", "A" * rng.randint(0, 700), "x", i) for i in range(count)]


def _old_batch_records(records, max_bases, max_records):
    """batch_records as it was before paired reads (the single-end cuts must not move)."""
    iterator = iter(records)
    batch, bases, take = [], 0, 1
    while group := list(islice(iterator, min(take, max_records - len(batch)))):
        group_bases = sum(len(r.sequence) for r in group)
        batch += group
        bases += group_bases
        if bases >= max_bases or len(batch) >= max_records:
            yield batch
            batch, bases, take = [], 0, 1
            continue
        take = max(1, min(256, (max_bases - bases) * len(group) // max(1, group_bases)))
    if batch:
        yield batch


def _sizes(groups) -> list[int]:
    return [len(group) for group in groups]


@pytest.mark.parametrize(("max_bases", "max_records"), [(1000, 8192), (5000, 7), (300_000, 33), (1 << 18, 16_384)])
def test_single_end_cuts_are_unchanged(max_bases, max_records):
    records = _records(3001)
    assert _sizes(batch_records(records, max_bases, max_records)) == _sizes(
        _old_batch_records(records, max_bases, max_records))
    assert _sizes(record_groups(records, 300, "even", max_bases, max_records)) == _sizes(
        _old_batch_records(records, max_bases, max_records))


@pytest.mark.parametrize(("max_bases", "max_records"), [(1000, 8192), (5000, 7), (300_000, 33), (777, 3)])
def test_paired_cuts_keep_mates_together(max_bases, max_records):
    records = _records(3000)
    single = _sizes(record_groups(records, 300, "even", max_bases, max_records))
    assert any(size % 2 for size in single)  # the single-end rule would split pairs here
    groups = list(record_groups(records, 300, "even", max_bases, max_records, pairs=True))
    assert not any(isinstance(group, RecordWindow) for group in groups)
    assert all(len(group) % 2 == 0 for group in groups)
    assert [r.id for group in groups for r in group] == [r.id for r in records]


def test_paired_cuts_restart_the_same_after_a_block_boundary():
    """A resume starts at a block boundary: the blocks after it are cut as in the whole run."""
    records = _records(2000)
    groups = _sizes(record_groups(records, 300, "even", 4000, 64, pairs=True))
    start = groups[0] + groups[1]
    assert _sizes(record_groups(records[start:], 300, "even", 4000, 64, pairs=True)) == groups[2:]


def test_a_mate_too_long_for_a_shared_block_is_refused():
    records = [Record("a/1", "A" * 100, "x", 0), Record("a/2", "A" * 2000, "x", 1)]
    with pytest.raises(InputFormatError, match=r"mate 'a/2' has 2,000 bases: paired reads must be at most 1,000"):
        list(record_groups(records, 300, "even", 1 << 20, 100, long_bases=1000, pairs=True))
