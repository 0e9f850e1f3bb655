"""Group streamed records into batches, so vectorised stages see many records at once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from operator import attrgetter

from virnucpro.io.reader import Record

_sequence = attrgetter("sequence")
_MAX_GROUP = 256


def batch_records(records: Iterable[Record], max_bases: int = 1 << 18, max_records: int = 8192,
                  multiple: int = 1) -> Iterator[list[Record]]:
    """Consecutive lists of records, each closed once it holds `max_bases` bases or `max_records`
    records, so memory stays bounded. With `multiple=2` (paired mates) every list holds a multiple
    of 2 records, so a pair is never split; `multiple=1` cuts exactly as before.

    Records are pulled in groups sized from the lengths seen so far (C-level islice instead of a
    Python step per record), so a batch can overshoot `max_bases` by a few records. The default
    256 Ki bases keeps the frames stage's numpy temporaries in the CPU cache: it ran ~20% faster
    than 1 Mi bases on W1 reads.
    """
    iterator = iter(records)
    max_records = -(-max_records // multiple) * multiple  # rounded up: takes below stay multiples
    batch: list[Record] = []
    bases = 0
    take = multiple
    while group := list(islice(iterator, min(take, max_records - len(batch)))):
        group_bases = sum(map(len, map(_sequence, group)))
        batch += group
        bases += group_bases
        if bases >= max_bases or len(batch) >= max_records:
            yield batch
            batch, bases, take = [], 0, multiple  # full reset: boundaries depend only on the records since
            continue  # the last one, so a run resumed at a boundary cuts the same batches
        take = max(1, min(_MAX_GROUP, (max_bases - bases) * len(group) // max(1, group_bases)))
        take += -take % multiple
    if batch:
        yield batch
