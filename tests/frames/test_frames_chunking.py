"""Chunk boundaries: the original's legacy rule (defect included) and the even tiling."""

import math
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virnucpro.frames import chunk_bounds


def reference_legacy(length, size):
    """The original rule, transcribed from docs/virnucpro-reference.md section 1."""
    n = math.ceil(length / size)
    overlap = n * size - length
    low = overlap // n
    need = overlap - (n - 1) * low
    shifts = [low + 1] * need + [low] * (n - 1 - need) + [0]
    bounds = []
    for i, (_, _shift) in enumerate(zip(range(0, length, size), shifts)):
        start = i * size - sum(shifts[:i])
        bounds.append((start, min(start + size, length)))
    return bounds


@pytest.mark.parametrize(
    ("length", "size", "expected"),
    [
        (1001, 500, [(0, 500), (333, 833), (666, 1001)]),
        (1234, 500, [(0, 500), (411, 911), (822, 1234)]),
        (999, 500, [(0, 500), (499, 999)]),
        (500, 500, [(0, 500)]),
        (120, 300, [(0, 120)]),
    ],
)
def test_legacy_examples_from_the_reference(length, size, expected):
    assert chunk_bounds(length, size, "legacy") == expected


def test_legacy_short_last_chunk_for_700_at_300():
    assert chunk_bounds(700, 300, "legacy")[-1] == (466, 700)  # 234 bp: the original's defect


@pytest.mark.parametrize("mode", ["even", "legacy"])
def test_empty_record_has_no_chunks(mode):
    assert chunk_bounds(0, 300, mode) == []


@pytest.mark.parametrize("mode", ["even", "legacy"])
def test_short_record_is_one_whole_chunk(mode):
    assert chunk_bounds(1, 300, mode) == [(0, 1)]
    assert chunk_bounds(300, 300, mode) == [(0, 300)]


def test_even_examples():
    assert chunk_bounds(1001, 500, "even") == [(0, 500), (250, 750), (501, 1001)]
    assert chunk_bounds(1500, 500, "even") == [(0, 500), (500, 1000), (1000, 1500)]
    assert chunk_bounds(301, 300, "even") == [(0, 300), (1, 301)]


def test_bad_arguments():
    with pytest.raises(ValueError):
        chunk_bounds(10, 0, "even")
    with pytest.raises(ValueError):
        chunk_bounds(10, 5, "wavy")


@given(st.integers(1, 20_000), st.integers(30, 600))
def test_legacy_matches_the_transcribed_rule(length, size):
    assert chunk_bounds(length, size, "legacy") == reference_legacy(length, size)


@given(st.integers(1, 20_000), st.integers(1, 600))
def test_even_tiling_properties(length, size):
    bounds = chunk_bounds(length, size, "even")
    if length <= size:
        assert bounds == [(0, length)]
        return
    assert len(bounds) == math.ceil(length / size)
    assert bounds[0][0] == 0 and bounds[-1][1] == length
    assert all(end - start == size for start, end in bounds)
    overlaps = [a_end - b_start for (_, a_end), (b_start, _) in pairwise(bounds)]
    assert all(o >= 0 for o in overlaps)
    assert max(overlaps) - min(overlaps) <= 1
    assert chunk_bounds(length, size, "even") == bounds  # deterministic
