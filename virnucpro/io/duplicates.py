"""Duplicate record IDs across all inputs, in about 8 bytes per ID."""

from __future__ import annotations

import numpy as np

from virnucpro.errors import InputFormatError


class DuplicateIdCheck:
    """Raises InputFormatError when an ID is seen twice.

    Outputs are keyed on IDs, so a repeat must stop the run, but keeping every ID string would
    cost ~100 bytes per read (a Python set of ints still ~60). We keep Python's 64-bit string hash
    instead: the latest `batch_size` IDs exactly in a dict, older ones as a sorted int64 array
    checked in bulk whenever the dict fills or a file ends. Costs: 8 bytes per ID; a repeat of an
    older ID is reported up to `batch_size` records late (still before the input is finished);
    two different IDs with equal hashes would give a false alarm with probability ~n^2 / 2^65
    (3e-6 for 10M reads).
    """

    __slots__ = ("_older", "_recent", "batch_size")

    def __init__(self, batch_size: int = 1 << 17):
        self.batch_size = batch_size
        self._recent: dict[int, str] = {}
        self._older = np.empty(0, dtype=np.int64)

    def add(self, record_id: str, source: str) -> None:
        key = hash(record_id)
        seen = self._recent.get(key)
        if seen == record_id:
            raise _duplicate(record_id, source)
        self._recent[key] = record_id
        if len(self._recent) >= self.batch_size:
            self.flush(source)

    def flush(self, source: str) -> None:
        """Check the recent IDs against the older ones, then merge them in."""
        if not self._recent:
            return
        recent = np.fromiter(self._recent, dtype=np.int64, count=len(self._recent))
        if len(self._older):
            position = np.minimum(np.searchsorted(self._older, recent), len(self._older) - 1)
            repeated = np.flatnonzero(self._older[position] == recent)
            if len(repeated):
                raise _duplicate(self._recent[int(recent[repeated[0]])], source)
        # timsort merges the two sorted runs in linear time
        self._older = np.sort(np.concatenate([self._older, np.sort(recent)]), kind="stable")
        self._recent.clear()


def _duplicate(record_id: str, source: str) -> InputFormatError:
    name = "<stdin>" if source == "-" else source
    return InputFormatError(f"{name}: duplicate record ID {record_id!r} (IDs must be unique across all inputs)")
