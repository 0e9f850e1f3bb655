"""Duplicate record IDs across all inputs, in about 8 bytes per ID."""

from __future__ import annotations

import operator

import numpy as np

from virnucpro.errors import InputFormatError
from virnucpro.io.sources import display_name


_SHOWN_PREFIX = operator.itemgetter(slice(0, 200))  # an ID as a repeat's error names it (a short one: itself)


class DuplicateIdCheck:
    """Raises InputFormatError when an ID is seen twice.

    Outputs are keyed on IDs, so a repeat must stop the run, but keeping every ID string would
    cost ~100 bytes per read (a Python set of ints still ~60). We keep Python's 64-bit string hash
    instead: the latest `batch_size` IDs as hash arrays (and their strings, to name a repeat), all
    older ones as a sorted int64 array; the recent ones are checked in bulk, among themselves and
    against the older ones, whenever `batch_size` accumulate or a file ends. Costs: 8 bytes per
    ID and no per-ID Python step; a repeat is reported up to `batch_size` records late (still
    before the input is finished); two different IDs with equal hashes would give a false alarm
    with probability ~n^2 / 2^65 (3e-6 for 10M reads).
    """

    __slots__ = ("_older", "_recent_ids", "_recent_keys", "batch_size")

    def __init__(self, batch_size: int = 1 << 17):
        self.batch_size = batch_size
        self._recent_keys: list[np.ndarray] = []
        self._recent_ids: list[str] = []
        self._older = np.empty(0, dtype=np.int64)

    def add(self, record_id: str, source: str) -> None:
        self.add_all([record_id], source)

    def add_all(self, record_ids: list[str], source: str) -> None:
        """Add IDs (from `source`, named in an error); checked at the next flush."""
        self._recent_keys.append(np.fromiter(map(hash, record_ids), dtype=np.int64, count=len(record_ids)))
        self._recent_ids += map(_SHOWN_PREFIX, record_ids)  # only to name a repeat: a 1 MB ID is not kept whole
        if len(self._recent_ids) >= self.batch_size:
            self.flush(source)

    def flush(self, source: str) -> None:
        """Check the recent IDs among themselves and against the older ones, then merge them in."""
        if not self._recent_ids:
            return
        recent = np.concatenate(self._recent_keys)
        order = np.argsort(recent, kind="stable")
        recent_sorted = recent[order]
        # a repeat is the later of two equal neighbours; first in input order wins the report
        repeats = order[1:][recent_sorted[1:] == recent_sorted[:-1]].tolist()
        if len(self._older):
            position = np.minimum(np.searchsorted(self._older, recent), len(self._older) - 1)
            repeats += np.flatnonzero(self._older[position] == recent).tolist()
        if repeats:
            raise _duplicate(self._recent_ids[min(repeats)], source)
        # timsort merges the two sorted runs in linear time
        self._older = np.sort(np.concatenate([self._older, recent_sorted]), kind="stable")
        self._recent_keys.clear()
        self._recent_ids.clear()


def _duplicate(record_id: str, source: str) -> InputFormatError:
    return InputFormatError(f"{display_name(source)}: duplicate record ID {record_id!r} (IDs must be unique across all inputs)")
