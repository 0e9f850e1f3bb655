"""Viral-region segmentation (outputs/regions.py) on synthetic chunk-score tracks with known boundaries."""

from __future__ import annotations

import random

import pytest

from virnucpro.outputs.regions import RegionSettings, chunk_log_odds, find_regions

CHUNK = 500


def bounds(n: int) -> list[tuple[int, int]]:
    return [(i * CHUNK, (i + 1) * CHUNK) for i in range(n)]


def track(pattern: list[tuple[int, float]]) -> list[float]:
    """[(count, score), ...] -> a flat list of chunk scores."""
    return [score for count, score in pattern for _ in range(count)]


def spans(scores, threshold=0.5, **settings):
    return [(r.start, r.end) for r in find_regions(bounds(len(scores)), scores, threshold, RegionSettings(**settings))]


def test_a_clean_insert_is_recovered_exactly():
    scores = track([(40, 0.05), (30, 0.95), (50, 0.05)])
    assert spans(scores) == [(40 * CHUNK, 70 * CHUNK)]


def test_two_inserts_and_a_region_at_each_sequence_end():
    scores = track([(10, 0.9), (30, 0.1), (20, 0.9), (30, 0.1), (12, 0.9)])
    assert spans(scores) == [(0, 10 * CHUNK), (40 * CHUNK, 60 * CHUNK), (90 * CHUNK, 102 * CHUNK)]


def test_a_flat_non_viral_track_has_no_region():
    assert spans([0.1] * 200) == []
    assert spans([0.49] * 200) == []


def test_a_wholly_viral_track_is_one_region_over_the_whole_sequence():
    (region,) = find_regions(bounds(20), [0.8] * 20, 0.5)
    assert (region.start, region.end, region.n_chunks, region.n_scored, region.n_viral) == (0, 20 * CHUNK, 20, 20, 20)
    assert region.mean_score == pytest.approx(0.8) and region.max_score == pytest.approx(0.8)


def test_noisy_tracks_give_boundaries_within_one_chunk():
    """Scores 0.8 inside, 0.2 outside, Gaussian noise sd 0.15, 200 random inserts: every boundary
    within one chunk (at sd 0.2 about 3% of them are off by two or three chunks)."""
    for seed in range(200):
        rng = random.Random(seed)
        start = rng.randint(20, 60)
        end = start + rng.randint(30, 60)
        scores = [min(1.0, max(0.0, (0.8 if start <= i < end else 0.2) + rng.gauss(0, 0.15))) for i in range(160)]
        (found,) = spans(scores)
        assert abs(found[0] - start * CHUNK) <= CHUNK and abs(found[1] - end * CHUNK) <= CHUNK, (seed, found)


def test_a_lone_viral_chunk_in_a_bacterial_track_is_no_region():
    scores = track([(50, 0.05), (1, 0.99), (50, 0.05)])
    assert spans(scores) == []


def test_unscored_chunks_emit_nothing_and_are_trimmed_at_region_borders():
    scores = track([(20, 0.05), (3, None), (10, 0.95), (2, None), (10, 0.95), (3, None), (20, 0.05)])
    # a gap inside the region stays inside; unscored chunks facing the non-viral stretches are left out
    assert spans(scores) == [(23 * CHUNK, 45 * CHUNK)]
    (region,) = find_regions(bounds(len(scores)), scores, 0.5)
    assert (region.n_chunks, region.n_scored) == (22, 20)
    assert spans([None] * 50) == []


def test_unscored_chunks_at_a_sequence_end_stay_in_a_region_reaching_it():
    scores = track([(2, None), (20, 0.9), (20, 0.1)])
    assert spans(scores) == [(0, 22 * CHUNK)]


def test_minimum_length_and_scored_chunks():
    scores = track([(40, 0.05), (4, 0.99), (40, 0.05)])
    assert spans(scores, expected_length=2_000) == [(40 * CHUNK, 44 * CHUNK)]
    assert spans(scores, expected_length=2_000, min_length=2_001) == []
    assert spans(scores, expected_length=2_000, min_scored=5) == []


def test_the_expected_length_sets_the_switch_cost():
    scores = track([(60, 0.1), (3, 0.85), (60, 0.1)])
    assert spans(scores, expected_length=1_000_000) == []  # a switch per 1 Mb: three chunks do not pay for two
    assert spans(scores, expected_length=2_000) == [(60 * CHUNK, 63 * CHUNK)]


def test_evidence_is_measured_against_the_threshold():
    assert chunk_log_odds(0.7, 0.7) == 0 and chunk_log_odds(None, 0.5) == 0
    assert chunk_log_odds(1.0, 0.5) == chunk_log_odds(0.99, 0.5)  # a single chunk counts at most 99:1
    scores = [0.6] * 30
    assert spans(scores, threshold=0.5) == [(0, 30 * CHUNK)]
    assert spans(scores, threshold=0.7) == []


def test_overlapping_chunks_use_their_own_boundaries():
    chunk_bounds = [(i * 300, i * 300 + 500) for i in range(60)]
    scores = track([(20, 0.1), (20, 0.9), (20, 0.1)])
    (region,) = find_regions(chunk_bounds, scores, 0.5)
    assert (region.start, region.end) == (20 * 300, 39 * 300 + 500)


def test_a_long_track_is_fast_and_deterministic():
    rng = random.Random(1)
    scores = [rng.random() for _ in range(20_000)]
    assert find_regions(bounds(20_000), scores, 0.5) == find_regions(bounds(20_000), scores, 0.5)
