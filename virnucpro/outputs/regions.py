"""Viral regions inside a sequence (a prophage/provirus scan) from its chunk virus scores.

Method: a two-state hidden Markov model (viral / non-viral) along the sequence's chunks, decoded
with Viterbi (the single most likely labelling). Nothing here is a tuned cut-off:

- Emission. A scored chunk's virus score s is read as the classifier's posterior P(viral | chunk)
  under equal priors, so its likelihood ratio viral : non-viral is s / (1 - s). It is measured
  against the run's chunk threshold t (a chunk scored exactly t is neutral evidence), i.e. the
  log-odds ln(s / (1 - s)) - ln(t / (1 - t)). Scores are clamped to [SCORE_FLOOR, 1 - SCORE_FLOOR]:
  a single chunk never counts for more than a 99:1 ratio, so one confidently wrong chunk cannot
  outweigh its neighbours. A chunk with no kept frame emits nothing (log-odds 0).
- Transition. Region boundaries are a Poisson process along the sequence with one boundary per
  `expected_length` bp on average, so between consecutive chunks whose starts are d bp apart
  the state switches with probability d / expected_length (at most 1/2). Opening a region thus
  costs about ln(expected_length / d) nats at each end: short bursts of viral chunks inside a
  long non-viral stretch stay non-viral unless their evidence pays for both switches.
- Start: both states equally likely (no preference before any evidence).

A decoded viral run becomes a region after trimming unscored chunks from its borders with
non-viral stretches (no evidence places them either way; at a sequence end they stay in), and
only when it is at least `min_length` bp long with at least `min_scored` scored chunks.
Coordinates are chunk boundaries: start of the first chunk, end of the last (0-based, end
exclusive). Everything is a function of one sequence's complete chunk list, so the result does not
depend on blocks, workers, shards or a resume; memory is linear in that sequence's chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCORE_FLOOR = 0.01
DEFAULT_EXPECTED_LENGTH = 20_000  # bp; prophages are typically 10-60 kb, phage genomes 5-200 kb
DEFAULT_MIN_LENGTH = 1_000  # bp: shorter stretches are reported as chunks, not regions
DEFAULT_MIN_SCORED = 2  # a region rests on more than one chunk's evidence


@dataclass(frozen=True)
class RegionSettings:
    expected_length: int = DEFAULT_EXPECTED_LENGTH
    min_length: int = DEFAULT_MIN_LENGTH
    min_scored: int = DEFAULT_MIN_SCORED

    def __post_init__(self) -> None:
        if self.expected_length < 1 or self.min_length < 0 or self.min_scored < 1:
            raise ValueError(f"invalid region settings {self}")


@dataclass(frozen=True)
class Region:
    """A viral stretch of one sequence: chunks [first_chunk, last_chunk] and their bp span."""

    first_chunk: int
    last_chunk: int
    start: int
    end: int
    n_scored: int
    n_viral: int
    mean_score: float
    max_score: float
    log_odds: float  # the region's summed evidence, ln(viral : non-viral), in nats

    @property
    def n_chunks(self) -> int:
        return self.last_chunk - self.first_chunk + 1

    @property
    def length(self) -> int:
        return self.end - self.start


def chunk_log_odds(score: float | None, threshold: float) -> float:
    """Evidence of one chunk for viral over non-viral, in nats (0 for an unscored chunk)."""
    if score is None:
        return 0.0
    s = min(max(score, SCORE_FLOOR), 1 - SCORE_FLOOR)
    t = min(max(threshold, SCORE_FLOOR), 1 - SCORE_FLOOR)
    return math.log(s / (1 - s)) - math.log(t / (1 - t))


def find_regions(bounds: list[tuple[int, int]], scores: list[float | None], threshold: float,
                 settings: RegionSettings = RegionSettings()) -> list[Region]:
    """The viral regions of one sequence, given its chunks' (start, end) and virus scores in order."""
    if sum(score is not None for score in scores) < settings.min_scored:
        return []
    evidence = [chunk_log_odds(score, threshold) for score in scores]
    states = viterbi(evidence, [start for start, _ in bounds], settings.expected_length)
    regions = []
    for first, last in _viral_runs(states):
        region = _region(first, last, bounds, scores, evidence, threshold, len(states))
        if region is not None and region.length >= settings.min_length and region.n_scored >= settings.min_scored:
            regions.append(region)
    return regions


def viterbi(evidence: list[float], starts: list[int], expected_length: int) -> list[bool]:
    """Most likely viral (True) / non-viral labelling; ties keep the current state (deterministic)."""
    # symmetric emissions (half the log-odds each way): only the difference between states counts
    viral, other = evidence[0] / 2, -evidence[0] / 2  # ln(1/2) is common to both states and dropped
    from_viral: list[bool] = []  # per chunk >= 1: best predecessor of (viral, other) is viral?
    from_other_viral: list[bool] = []
    for i in range(1, len(evidence)):
        p = min(0.5, max(starts[i] - starts[i - 1], 1) / expected_length)
        stay, switch = math.log1p(-p), math.log(p)
        v_stay, v_switch = viral + stay, other + switch
        o_stay, o_switch = other + stay, viral + switch
        from_viral.append(v_stay >= v_switch)
        from_other_viral.append(o_switch > o_stay)
        half = evidence[i] / 2
        viral = (v_stay if v_stay >= v_switch else v_switch) + half
        other = (o_stay if o_stay >= o_switch else o_switch) - half
    state = viral > other
    states = [state]
    for i in range(len(evidence) - 2, -1, -1):
        state = from_viral[i] if state else from_other_viral[i]
        states.append(state)
    return states[::-1]


def _viral_runs(states: list[bool]) -> list[tuple[int, int]]:
    runs, first = [], None
    for i, state in enumerate(states):
        if state and first is None:
            first = i
        elif not state and first is not None:
            runs.append((first, i - 1))
            first = None
    if first is not None:
        runs.append((first, len(states) - 1))
    return runs


def _region(first: int, last: int, bounds, scores, evidence, threshold: float, n: int) -> Region | None:
    """Trim unscored chunks facing a non-viral stretch, then summarize; None if nothing is scored."""
    if first > 0:
        while first <= last and scores[first] is None:
            first += 1
    if last < n - 1:
        while last >= first and scores[last] is None:
            last -= 1
    scored = [s for s in scores[first:last + 1] if s is not None]
    if not scored:
        return None
    return Region(first, last, bounds[first][0], bounds[last][1], len(scored),
                  sum(s >= threshold for s in scored), sum(scored) / len(scored), max(scored),
                  math.fsum(evidence[first:last + 1]))
