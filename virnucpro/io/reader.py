"""Streaming FASTA/FASTQ records from files or stdin, any compression, one-line errors.

Records are read a few hundred at a time (dnaio), so memory does not grow with the input; only the
duplicate-ID check keeps 8 bytes per record (see `DuplicateIdCheck`).
"""

from __future__ import annotations

import importlib
import lzma
import os
import re
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice, repeat
from pathlib import Path
from typing import BinaryIO

import dnaio
import numpy as np
from xopen import xopen

from virnucpro.errors import InputFormatError
from virnucpro.io.duplicates import DuplicateIdCheck
from virnucpro.io.long_records import attach, wrap_fasta


def _decompression_errors() -> tuple[type[BaseException], ...]:
    """Errors the decompressors raise on corrupt or truncated data (EOFError: truncated)."""
    errors: list[type[BaseException]] = [EOFError, OSError, lzma.LZMAError, zlib.error]
    try:
        from isal.igzip_lib import IsalError

        errors.append(IsalError)
    except ImportError:  # xopen falls back to zlib when python-isal is absent
        pass
    for zstd_module in ("zstandard", "backports.zstd", "compression.zstd"):  # whichever xopen picks
        try:
            errors.append(importlib.import_module(zstd_module).ZstdError)
        except ImportError:
            pass
    return tuple(errors)


_DECOMPRESSION_ERRORS = _decompression_errors()
_SEQUENCE_SYMBOLS = re.compile(r"[^A-Za-z*.\-]")
_DNAIO_PREFIX = re.compile(r"^Error in FAST[AQ] file at (?:line \d+|unknown line): ")


@dataclass(slots=True)
class Record:
    """One input sequence; `id` is the header up to the first whitespace, `index` its 0-based
    position among the records yielded (all inputs, empty records not counted)."""

    id: str
    sequence: str
    source: str
    index: int


@dataclass(slots=True)
class ReadStats:
    """Counts for the log: records yielded, empty records skipped, bases yielded."""

    records: int = 0
    empty_skipped: int = 0
    bases: int = 0


class RecordReader:
    """Iterator over the records of several inputs, in order, with `stats` and byte progress.

    `bytes_done` / `bytes_total` are compressed (on-disk) bytes, cheap to read at any time, for
    an ETA; `bytes_total` is None when reading stdin or a pipe.
    """

    def __init__(self, paths: Sequence[str | Path], spool_dir: str | Path | None = None):
        self.paths = [str(p) for p in paths]
        self.spool_dir = spool_dir  # where long FASTA records are spooled (io/long_records.py)
        for path in self.paths:
            if path != "-" and (not os.path.exists(path) or os.path.isdir(path)):
                what = "is a directory" if os.path.isdir(path) else "not found"
                raise InputFormatError(f"input file {what}: {path}")
        self.stats = ReadStats()
        sized = all(p != "-" and os.path.isfile(p) for p in self.paths)  # not stdin or a pipe
        self.bytes_total = sum(os.path.getsize(p) for p in self.paths) if sized else None
        self._bytes_finished = 0
        self._current: BinaryIO | None = None
        self._records = chain.from_iterable(self._all_groups())

    def __iter__(self) -> Iterator[Record]:
        return self._records  # C-level: no Python-level step per record

    def __next__(self) -> Record:
        return next(self._records)

    @property
    def bytes_done(self) -> int:
        current = self._current
        if current is None or current.closed:
            return self._bytes_finished
        return self._bytes_finished + current.tell()

    def _all_groups(self) -> Iterator[list[Record]]:
        duplicates = DuplicateIdCheck()
        for path in self.paths:
            yield from self._file_groups(path, duplicates)
            duplicates.flush(path)

    def _file_groups(self, path: str, duplicates: DuplicateIdCheck) -> Iterator[list[Record]]:
        """Records of one input in lists; every format or decompression problem -> InputFormatError.

        Records are checked and built a group at a time (C-level maps instead of Python steps
        per record); a group that fails a check is redone record by record, in one-record lists,
        so an error and the records before it are those of a record-by-record reader (duplicate
        IDs excepted: `DuplicateIdCheck` reports them in bulk, a little later).
        """
        name = "<stdin>" if path == "-" else path
        last_id = None
        raw = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 (closed below)
        self._current = raw if raw.seekable() else None  # tell() fails on stdin and pipes
        size = os.fstat(raw.fileno()).st_size if raw is not sys.stdin.buffer else 0  # closing `stream` may close `raw`
        stream = None
        try:
            stream = xopen(raw, "rb", threads=0)
            file_format = _sniff_format(stream, name)
            if file_format is None:
                return
            spooled = None
            if file_format == "fasta":  # long records' bases go to a spool file, not to memory
                stream = spooled = wrap_fasta(stream, name, self.spool_dir)
            with dnaio.open(stream, fileformat=file_format) as reader:
                parsed = iter(reader)
                while True:
                    group, error = _next_group(parsed)
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
        except dnaio.exceptions.FileFormatError as error:
            raise InputFormatError(_format_error(name, error, last_id)) from None
        except UnicodeDecodeError as error:
            raise InputFormatError(f"{name}: binary data, not FASTA/FASTQ text ({_after(last_id)})") from error
        except _DECOMPRESSION_ERRORS as error:
            raise InputFormatError(f"{name}: corrupt or truncated file ({_one_line(error)}; {_after(last_id)})") from None
        finally:
            if stream is not None and stream is not raw:
                stream.close()
            if raw is not sys.stdin.buffer:
                self._bytes_finished += size
                raw.close()
            self._current = None

    def _checked_group(self, group: list, path: str, duplicates: DuplicateIdCheck) -> list[Record] | None:
        """The group's records when every check passes at once (the common case), else None."""
        sequences = [parsed.sequence for parsed in group]
        ids = [parsed.id for parsed in group]
        if not (all(sequences) and all(ids) and _all_letters("".join(sequences))):
            return None
        duplicates.add_all(ids, path)
        stats = self.stats
        first = stats.records
        stats.records += len(group)
        stats.bases += sum(map(len, sequences))
        return list(map(Record, ids, sequences, repeat(path, len(group)), range(first, stats.records)))

    def _checked_one_by_one(self, group: list, name: str, path: str, duplicates: DuplicateIdCheck) -> Iterator[Record]:
        """The slow path: empty records skipped, the first bad record raises its own error."""
        stats = self.stats
        for parsed in group:
            sequence = parsed.sequence
            if not sequence:
                stats.empty_skipped += 1
                continue
            record_id = parsed.id
            if not record_id:
                raise InputFormatError(f"{name}: record {stats.records + 1} has an empty ID")
            if not sequence.encode().isalpha():  # 3x faster than str.isalpha
                _check_symbols(name, record_id, sequence)
            duplicates.add(record_id, path)
            yield Record(record_id, sequence, path, stats.records)
            stats.records += 1
            stats.bases += len(sequence)


_GROUP = 512
_PARSE_ERRORS = (dnaio.exceptions.FileFormatError, UnicodeDecodeError, *_DECOMPRESSION_ERRORS)


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


def _sniff_format(stream: BinaryIO, name: str) -> str | None:
    """'fasta' or 'fastq' from the first byte (names can lie); None for an empty input."""
    if not stream.peek(1):
        return None
    first = stream.peek(1 << 16).lstrip()[:1]  # dnaio's FASTA parser skips leading blank lines
    if first in (b"", b">", b"#"):  # b"": only blank lines in the buffer; dnaio reads past them
        return "fasta"
    if first == b"@":
        return "fastq"
    raise InputFormatError(f"{name}: not FASTA or FASTQ (starts with {first!r}, expected '>' or '@')")


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
