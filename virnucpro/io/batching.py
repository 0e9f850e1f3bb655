"""Group streamed records into batches, so vectorised stages see many records at once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from virnucpro.io.reader import Record


def batch_records(records: Iterable[Record], max_bases: int = 1 << 20, max_records: int = 8192) -> Iterator[list[Record]]:
    """Consecutive lists of records, each closed once it holds `max_bases` bases or `max_records`
    records (a single longer record is a batch of its own), so memory stays bounded."""
    batch: list[Record] = []
    bases = 0
    for record in records:
        batch.append(record)
        bases += len(record.sequence)
        if bases >= max_bases or len(batch) >= max_records:
            yield batch
            batch, bases = [], 0
    if batch:
        yield batch
