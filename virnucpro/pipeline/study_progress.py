"""A study's inputs seen as ONE reader by the progress bar (pipeline/progress.py), so a study has one
bar from its first sample to its last.

RunProgress estimates a run's total records as records read per on-disk byte read times the input's
bytes. Over a study the same estimate spans every sample of the run: the sheet names every read
file, so the bytes of the samples not opened yet are known; the records per byte come from the
samples read so far (samples finished in an earlier session count with their recorded records).
"""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

from virnucpro.io.samplesheet import Sample


class StudyReading:
    """`bytes_total`, `bytes_done` and `stats.records` over all of a study's samples, as a reader has them."""

    def __init__(self, samples: list[Sample], finished_records: dict[str, int]) -> None:
        """`samples`: the study's samples this run covers; `finished_records`: those done earlier, by name."""
        self.bytes_total = sum(_input_bytes(sample) for sample in samples)
        finished = [sample for sample in samples if sample.name in finished_records]
        self._finished_bytes = sum(_input_bytes(sample) for sample in finished)
        self._finished_records = sum(finished_records.values())
        self._readers: list = []  # of the samples opened this session (by the stream's producer thread)
        self._lock = threading.Lock()

    def opened(self, reader) -> None:
        with self._lock:
            self._readers.append(reader)

    @property
    def bytes_done(self) -> int:
        with self._lock:
            return self._finished_bytes + sum(reader.bytes_done for reader in self._readers)

    @property
    def stats(self) -> SimpleNamespace:
        with self._lock:
            return SimpleNamespace(records=self._finished_records + sum(r.stats.records for r in self._readers))


def _input_bytes(sample: Sample) -> int:
    return sum(os.path.getsize(path) for path in (sample.r1, sample.r2) if path is not None)
