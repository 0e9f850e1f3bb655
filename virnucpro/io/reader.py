"""Streaming FASTA/FASTQ records from files or stdin, any compression, one-line errors.

Records are read a few hundred at a time (dnaio), so memory does not grow with the input; only the
duplicate-ID check keeps 8 bytes per record (see `DuplicateIdCheck`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice, repeat
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO

import dnaio
import numpy as np

from virnucpro.errors import InputFormatError
from virnucpro.io.content import refuse_protein, skip_bom, sniff_format
from virnucpro.io.decompress import DECOMPRESSION_ERRORS, compression_of, decompressed
from virnucpro.io.duplicates import DuplicateIdCheck
from virnucpro.io.long_records import DISCARD, attach, wrap_fasta
from virnucpro.io.sources import InputSource, ProbeLimitReached, display_name

_SEQUENCE_SYMBOLS = re.compile(r"[^A-Za-z*.\-]")
_DNAIO_PREFIX = re.compile(r"^Error in FAST[AQ] file at (?:line \d+|unknown line): ")


@dataclass(slots=True)
class Record:
    """One input sequence; `id` is the header up to the first whitespace, `index` its 0-based
    position among all records of all inputs (empty records included: they get a row too); `header`
    the whole header line (kept for viral.fa, which copies its description)."""

    id: str
    sequence: str
    source: str
    index: int
    header: str = ""

    @property
    def description(self) -> str:
        """The header after the ID ('' when there is none)."""
        return self.header[len(self.id):].strip()


@dataclass(slots=True)
class ReadStats:
    """Counts for the log: records yielded, how many of them were empty, bases yielded."""

    records: int = 0
    empty: int = 0
    bases: int = 0


class RecordReader:
    """Iterator over the records of several inputs, in order, with `stats` and byte progress.

    `bytes_done` / `bytes_total` are compressed (on-disk) bytes, cheap to read at any time, for
    an ETA; `bytes_total` is None when an input is a stream (stdin, a pipe, a FIFO).
    """

    def __init__(self, paths: Sequence[str | Path | InputSource], spool_dir: str | Path | None = None,
                 unique_ids: bool = True):
        self._unique_ids = unique_ids  # False: the caller checks IDs itself (mates share theirs, io/pairs.py)
        self._sources = [p if isinstance(p, InputSource) else InputSource(str(p)) for p in paths]
        self.paths = [source.path for source in self._sources]
        self.spool_dir = spool_dir  # where long FASTA records are spooled (io/long_records.py)
        for path in self.paths:
            if path != "-" and (not os.path.exists(path) or os.path.isdir(path)):
                what = "is a directory" if os.path.isdir(path) else "not found"
                raise InputFormatError(f"input file {what}: {path}")
        self.stats = ReadStats()
        self.streams = [source.path for source in self._sources if source.stream]
        twice = next((path for path in self.streams if self.streams.count(path) > 1), None)
        if twice is not None:
            raise InputFormatError(f"{display_name(twice)} is given twice, but a stream (stdin, a pipe or a FIFO)"
                                   " can be read only once")
        self.bytes_total = None if self.streams else sum(os.path.getsize(p) for p in self.paths)
        self._bytes_finished = 0
        self._current: BinaryIO | None = None
        self._probe = False
        self._groups = self._all_groups()
        self._records = chain.from_iterable(self._groups)

    def __iter__(self) -> Iterator[Record]:
        return self._records  # C-level: no Python-level step per record

    def __next__(self) -> Record:
        return next(self._records)

    def close(self) -> None:
        self._groups.close()

    @property
    def bytes_done(self) -> int:
        current = self._current
        if current is None or current.closed:
            return self._bytes_finished
        return self._bytes_finished + current.tell()

    def check_first_records(self) -> None:
        """Parse the first records of every input now, so a wrong input fails before the models
        load; a stream replays afterwards what this read (see sources.py), so nothing is lost."""
        self.first_records()

    def first_records(self, count: int = 1) -> list[list[Record] | None]:
        """Up to `count` first records of every input, parsed and checked as the run will (None for
        an input whose first records exceed the probe limit: the run itself will check them)."""
        firsts: list[list[Record] | None] = []
        for source in self._sources:
            probe = RecordReader([source], spool_dir=DISCARD, unique_ids=self._unique_ids)  # long: not stored
            probe._probe = True
            try:
                firsts.append(list(islice(probe, count)))
            except ProbeLimitReached:  # a huge first record: the run itself will check it
                firsts.append(None)
            finally:
                probe.close()
        return firsts

    def _all_groups(self) -> Iterator[list[Record]]:
        duplicates = DuplicateIdCheck() if self._unique_ids else _NoDuplicateCheck()
        for source in self._sources:
            yield from self._file_groups(source, duplicates)
            duplicates.flush(source.path)

    def _file_groups(self, source: InputSource, duplicates: DuplicateIdCheck) -> Iterator[list[Record]]:
        """Records of one input in lists; every format or decompression problem -> InputFormatError.

        Records are checked and built a group at a time (C-level maps instead of Python steps
        per record); a group that fails a check is redone record by record, in one-record lists,
        so an error and the records before it are those of a record-by-record reader (duplicate
        IDs excepted: `DuplicateIdCheck` reports them in bulk, a little later).
        """
        name, path = source.name, source.path
        last_id = None
        raw = source.open(probe=self._probe)
        self._current = None if source.stream else raw  # tell() fails on streams
        size = 0 if source.stream else os.fstat(raw.fileno()).st_size  # closing `stream` may close `raw`
        stream = raw
        try:
            head = raw.peek(8)
            if not head:  # 0 bytes, whatever the name says: an empty input
                return
            compression = compression_of(head)
            stream, members = decompressed(raw, compression)
            skip_bom(stream)
            if not stream.peek(1):  # compressed empty data
                return
            file_format = sniff_format(stream, name, compression)
            spooled = None
            if file_format == "fasta":  # long records' bases go to a spool file, not to memory
                stream = spooled = wrap_fasta(stream, name, self.spool_dir)
            with dnaio.open(stream, fileformat=file_format) as reader:
                parsed = iter(reader)
                group, error = _next_group(parsed)
                refuse_protein(name, [record.sequence for record in group])
                while True:
                    records = self._checked_group(group, path, duplicates)
                    if records is not None:
                        last_id = records[-1].id if records else last_id
                        yield attach(records, spooled.pending, self.stats) if spooled else records
                    else:
                        for record in self._checked_one_by_one(group, name, path, duplicates):
                            last_id = record.id
                            yield attach([record], spooled.pending, self.stats) if spooled else [record]
                    if error is not None:
                        raise error
                    if len(group) < _GROUP:
                        break
                    group, error = _next_group(parsed)
            if members is not None and members.trailing is not None:
                raise InputFormatError(f"{name}: trailing data after the last complete gzip member"
                                       f" ({members.trailing}; {_after(last_id)})")
        except dnaio.exceptions.FileFormatError as error:
            raise InputFormatError(_format_error(name, error, last_id)) from None
        except UnicodeDecodeError as error:
            raise InputFormatError(f"{name}: binary data, not FASTA/FASTQ text ({_after(last_id)})") from error
        except DECOMPRESSION_ERRORS as error:
            raise InputFormatError(f"{name}: corrupt or truncated file ({_one_line(error)}; {_after(last_id)})") from None
        finally:
            if stream is not raw:
                stream.close()
            self._bytes_finished += size
            raw.close()
            self._current = None

    def _checked_group(self, group: list, path: str, duplicates: DuplicateIdCheck) -> list[Record] | None:
        """The group's records when every check passes at once (the common case), else None."""
        sequences = [parsed.sequence for parsed in group]
        ids = [parsed.id for parsed in group]
        if not (all(ids) and _all_letters("".join(sequences)) and "\x00" not in "".join(map(_name, group))):
            return None
        duplicates.add_all(ids, path)
        stats = self.stats
        first = stats.records
        stats.records += len(group)
        stats.empty += sequences.count("")
        stats.bases += sum(map(len, sequences))
        headers = [parsed.name for parsed in group]
        return list(map(Record, ids, sequences, repeat(path, len(group)), range(first, stats.records), headers))

    def _checked_one_by_one(self, group: list, name: str, path: str, duplicates: DuplicateIdCheck) -> Iterator[Record]:
        """The slow path: the first bad record raises its own error."""
        stats = self.stats
        for parsed in group:
            sequence = parsed.sequence
            record_id = parsed.id
            if not record_id:
                raise InputFormatError(f"{name}: record {stats.records + 1} has an empty ID")
            if "\x00" in parsed.name:
                raise InputFormatError(f"{name}: the header of record {stats.records + 1} ({parsed.name!r})"
                                       " contains a NUL byte: binary data, not FASTA/FASTQ text")
            if not sequence.encode().isalpha():  # 3x faster than str.isalpha
                _check_symbols(name, record_id, sequence)
            duplicates.add(record_id, path)
            yield Record(record_id, sequence, path, stats.records, parsed.name)
            stats.records += 1
            stats.empty += not sequence
            stats.bases += len(sequence)


class _NoDuplicateCheck:
    """Stands in for `DuplicateIdCheck` when the caller checks IDs itself."""

    def add(self, record_id: str, source: str) -> None:
        pass

    def add_all(self, record_ids: list[str], source: str) -> None:
        pass

    def flush(self, source: str) -> None:
        pass


_GROUP = 512
_name = attrgetter("name")
_PARSE_ERRORS = (dnaio.exceptions.FileFormatError, UnicodeDecodeError, *DECOMPRESSION_ERRORS)


def _next_group(parsed: Iterator) -> tuple[list, BaseException | None]:
    """Up to `_GROUP` parsed records, and the parse error that ended the group early, if any."""
    group: list = []
    try:
        group += islice(parsed, _GROUP)  # list.extend keeps what was parsed when the parser raises
    except _PARSE_ERRORS as error:
        return group, error
    return group, None


def read_records(paths: Sequence[str | Path], spool_dir: str | Path | None = None) -> RecordReader:
    """Stream the records of `paths` (`-` = stdin) in order; see `RecordReader`."""
    return RecordReader(paths, spool_dir)


def _all_letters(text: str) -> bool:
    """Whether `text` is all ASCII letters (numpy: ~4x faster than bytes.isalpha)."""
    codes = np.frombuffer(text.encode(), dtype=np.uint8)
    return bool((((codes | 0x20) - ord("a")) < 26).all())  # | 0x20 lower-cases; others wrap to >= 26


def _check_symbols(path: str, record_id: str, sequence: str) -> None:
    bad = _SEQUENCE_SYMBOLS.search(sequence)
    if bad is not None:
        raise InputFormatError(
            f"{path}: record {record_id!r} contains {bad.group()!r} at position {bad.start() + 1}"
            " (expected letters, '-', '.' or '*')"
        )


def _format_error(name: str, error: dnaio.exceptions.FileFormatError, last_id: str | None) -> str:
    line = f"line {error.line + 1}: " if getattr(error, "line", None) is not None else ""
    reason = _DNAIO_PREFIX.sub("", _one_line(error))
    return f"{name}: {line}{reason} ({_after(last_id)})"


def _after(last_id: str | None) -> str:
    return f"after record {last_id!r}" if last_id is not None else "in the first record"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
