"""Paired-end input: two mate files read in lockstep, or one interleaved file, as one stream of
records in which mate 1 and mate 2 of each pair follow each other.

Both mates keep everything a single-end record has (chunks, frames, scores, a sequences.tsv row);
only their IDs change, to `PAIR/1` and `PAIR/2`, so the per-record files stay keyed on unique IDs.
Mate IDs must agree (identical, or differing only by a `/1` `/2` suffix; the header after the first
whitespace, e.g. Illumina's `1:N:0:ACGT` comment, is not part of the ID), else the run stops at
the first pair that does not, naming it: a desync means the files are not mates of one another.

dnaio has a paired reader, but our single-file reader (io/reader.py) already does what a run
needs per file (streams read twice, any compression, long-record spooling, one-line errors), so
the pair reader is two of those in lockstep (or one, read two records at a time).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from virnucpro.errors import InputFormatError
from virnucpro.io.duplicates import DuplicateIdCheck
from virnucpro.io.reader import ReadStats, Record, RecordReader
from virnucpro.io.sources import display_name

MATE_SUFFIXES = ("/1", "/2")
_ID_BATCH = 512  # pair IDs handed to the duplicate check at a time
_ID_BATCH_CHARS = 1 << 20  # ... or fewer, when they are long
_ILLUMINA_COMMENT = re.compile(r"([12]):[YN]:\d+:")  # read number, filtered, control bits, index


class InputUsageError(InputFormatError):
    """Inputs that cannot go together with --paired / --interleaved: a usage error (exit 2)."""

    exit_code = 2


def open_input(paths: Sequence[str | Path], paired: bool = False, interleaved: bool = False,
               spool_dir: str | Path | None = None) -> RecordReader | PairedReader:
    """The records of a run's inputs: single-end (`RecordReader`), two mate files (`paired`, in
    lockstep) or one file with mates alternating (`interleaved`); the same interface for all."""
    paths = [str(path) for path in paths]
    check_pairing(paths, paired, interleaved)
    if not (paired or interleaved):
        return RecordReader(paths, spool_dir)
    return PairedReader(paths, spool_dir)


def check_pairing(paths: Sequence[str], paired: bool, interleaved: bool) -> None:
    """Refuse inputs that --paired / --interleaved cannot read (a usage error, before anything runs)."""
    if paired and interleaved:
        raise InputUsageError("--paired reads mates from two files, --interleaved from one: use one of them")
    if paired and len(paths) != 2:
        raise InputUsageError(f"--paired needs exactly two inputs, R1 and R2 (got {len(paths)}); for one file"
                              " with mates alternating use --interleaved")
    if interleaved and len(paths) != 1:
        raise InputUsageError(f"--interleaved needs exactly one input (got {len(paths)}); for R1 and R2 files"
                              " use --paired")
    if paired and paths[0] == paths[1]:
        raise InputUsageError(f"--paired: R1 and R2 are the same input ({display_name(paths[0])}); give the two"
                              " mate files, or one interleaved file with --interleaved")


class PairedReader:
    """Mates as consecutive records `PAIR/1`, `PAIR/2` (indexes 0, 1, 2, ...), with the interface of
    `RecordReader` (`streams`, `stats`, `bytes_total`, `bytes_done`, `spool_dir`, `check_first_records`)."""

    def __init__(self, paths: list[str], spool_dir: str | Path | None = None):
        self.paths = paths
        self.interleaved = len(paths) == 1
        self._readers = [RecordReader([path], spool_dir, unique_ids=False) for path in paths]
        self.streams = [stream for reader in self._readers for stream in reader.streams]
        if len(self.streams) == 2 and self.streams[0] == self.streams[1]:
            raise InputUsageError(f"--paired: both mates come from {display_name(self.streams[0])}, which can be"
                                  " read only once; give two files, or one interleaved file with --interleaved")
        totals = [reader.bytes_total for reader in self._readers]
        self.bytes_total = None if None in totals else sum(totals)
        self._records = self._pairs()

    @property
    def spool_dir(self) -> str | Path | None:
        return self._readers[0].spool_dir

    @spool_dir.setter
    def spool_dir(self, value: str | Path | None) -> None:
        for reader in self._readers:
            reader.spool_dir = value

    @property
    def stats(self) -> ReadStats:
        """Mates read so far, over both files (the mates yielded, once the input is finished)."""
        parts = [reader.stats for reader in self._readers]
        return ReadStats(sum(p.records for p in parts), sum(p.empty for p in parts), sum(p.bases for p in parts))

    @property
    def bytes_done(self) -> int:
        return sum(reader.bytes_done for reader in self._readers)

    def __iter__(self) -> Iterator[Record]:
        return self._records

    def __next__(self) -> Record:
        return next(self._records)

    def close(self) -> None:
        self._records.close()
        for reader in self._readers:
            reader.close()

    def check_first_records(self) -> None:
        """Parse each file's first records and check that the first pair's IDs agree, so wrong or
        swapped files fail before the models load."""
        if self.interleaved:
            first = self._readers[0].first_records(2)[0]
            mates = first if first is not None and len(first) == 2 else None
        else:
            (first1,), (first2,) = (reader.first_records(1) for reader in self._readers)
            mates = (first1[0], first2[0]) if first1 and first2 else None
        if mates is not None:
            pair_id(mates[0].id, mates[1].id, self._where(1))
            _check_read_numbers(*mates, self._where(1))

    def _pairs(self) -> Iterator[Record]:
        """Checked, renamed mates; pair IDs must be unique (checked in bulk, see DuplicateIdCheck)."""
        duplicates = DuplicateIdCheck()
        where = self.paths[0] if self.interleaved else f"{self.paths[0]} + {self.paths[1]}"
        recent: list[str] = []
        recent_chars = 0  # the batch is bounded in characters too: 512 IDs of 1 MB would be 512 MB
        index = 0
        for number, (mate1, mate2) in enumerate(self._mates(), start=1):
            base = pair_id(mate1.id, mate2.id, self._where(number))
            _rename(mate1, f"{base}/1", index)
            _rename(mate2, f"{base}/2", index + 1)
            recent.append(base)
            recent_chars += len(base)
            if len(recent) == _ID_BATCH or recent_chars > _ID_BATCH_CHARS:
                duplicates.add_all(recent, where)
                recent, recent_chars = [], 0
            index += 2
            yield mate1
            yield mate2
        duplicates.add_all(recent, where)
        duplicates.flush(where)

    def _mates(self) -> Iterator[tuple[Record, Record]]:
        """(mate 1, mate 2) in input order; one input ending before the other is an error."""
        if self.interleaved:
            records = iter(self._readers[0])
            for mate1 in records:
                mate2 = next(records, None)
                if mate2 is None:
                    name = display_name(self.paths[0])
                    raise InputFormatError(f"{name}: --interleaved input has an odd number of records: record"
                                           f" {mate1.index + 1} ({mate1.id!r}) has no mate; is it really interleaved?")
                yield mate1, mate2
            return
        first, second = (iter(reader) for reader in self._readers)
        number = 0
        for mate1 in first:
            number += 1
            mate2 = next(second, None)
            if mate2 is None:
                raise self._shorter(1, number)
            yield mate1, mate2
        if next(second, None) is not None:
            raise self._shorter(0, number + 1)

    def _shorter(self, shorter: int, number: int) -> InputFormatError:
        names = [display_name(path) for path in self.paths]
        return InputFormatError(f"--paired: {names[shorter]} ends after {number - 1:,} records but"
                                f" {names[1 - shorter]} has a record {number:,}: mate files must hold the same"
                                " reads in the same order")

    def _where(self, number: int) -> str:
        """The pair's position, as an error names it."""
        if self.interleaved:
            return f"{display_name(self.paths[0])}: records {2 * number - 1:,} and {2 * number:,}"
        return f"{display_name(self.paths[0])} and {display_name(self.paths[1])}: record {number:,}"


def pair_id(mate1_id: str, mate2_id: str, where: str) -> str:
    """The pair's ID: mate 1's ID without a `/1` or `/2` suffix, when the mates' IDs agree."""
    if mate1_id == mate2_id or mate1_id.removesuffix("/1") == mate2_id.removesuffix("/2"):
        base = mate1_id[:-2] if mate1_id.endswith(MATE_SUFFIXES) else mate1_id
        if base:
            return base
        raise InputFormatError(f"{where}: mate ID {mate1_id!r} is only a mate suffix; the pair needs an ID")
    raise InputFormatError(f"{where}: mate IDs disagree ({mate1_id!r} vs {mate2_id!r}); mates must have the"
                           " same ID, up to a /1 /2 suffix or the comment: are the files out of sync, or not mates?")


def _check_read_numbers(mate1: Record, mate2: Record, where: str) -> None:
    """Illumina comments (`1:N:0:ACGT`) that say mate 1 is read 2 or mate 2 is read 1: swapped or
    repeated files (checked on the first pair: their IDs alone cannot tell)."""
    for expected, mate in enumerate((mate1, mate2), start=1):
        found = _ILLUMINA_COMMENT.match(mate.description)
        if found and int(found.group(1)) != expected:
            raise InputFormatError(f"{where}: mate {expected} ({mate.id!r}) is read {found.group(1)} by its"
                                   f" Illumina comment {mate.description!r}: are the files swapped or given twice?")


def _rename(record: Record, new_id: str, index: int) -> None:
    """The mate under its unique ID; the header keeps its description (viral.fa copies it)."""
    record.header = new_id + record.header[len(record.id):]
    record.id = new_id
    record.index = index
