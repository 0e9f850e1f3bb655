"""Long FASTA records spooled to disk while they are read, so memory does not grow with their length.

dnaio materialises a whole record (and ~20 bytes per base on the way: a list of line strings, the
joined string, our copies), so a 1-Gb chromosome would need gigabytes. `LongRecordFilter` sits
between the decompressed FASTA stream and dnaio: bytes of short records pass through unchanged
(one `rfind` per MiB, no Python step per record), but a record still going after
`LONG_RECORD_BYTES` file bytes has its bases written to an anonymous temporary file (1 byte per
base) and dnaio sees, in its place, the header and a short placeholder sequence. The reader then
swaps the placeholder for a `SpooledSequence` (`attach`): a str-like handle with the record's
length whose [start:stop] slices read the spool. Downstream, a spooled record is chunked
window by window (`virnucpro.frames.windows`) with the same chunk boundaries, IDs and frames as a
record read in one piece.

The spool follows dnaio's FASTA rules exactly: lines end at \\n, \\r\\n or \\r; each line is
stripped of surrounding whitespace; empty lines and lines starting with '#' are skipped; a line
starting with '>' begins the next record. Bases are checked like the reader checks them (letters,
'-', '.', '*'). The spool file is unlinked from the start (deleted by the OS when closed, even on
a crash) and lives in `spool_dir` (the run's OUTDIR/.virnucpro/ for predict), else TMPDIR;
`spool_dir=DISCARD` only checks and counts long records (predict's early look at each input).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections import deque
from pathlib import Path
from typing import BinaryIO

from virnucpro.errors import InputFormatError, VirnucproError

LONG_RECORD_BYTES = 1 << 20  # a record longer than this (in file bytes) is spooled
PIECE_BYTES = 1 << 20  # bases read from a spool at a time when a whole record or region is copied out
DISCARD = "discard"  # as spool_dir: long records are checked and counted, their bases not kept
_READ_BYTES = 1 << 20
_SEQUENCE_BYTES = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1)) + b"*.-"
_LINE_ENDS = b"\r\n"
_STRIP = b" \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() removes from ASCII text
_BAD_SYMBOL = re.compile(rb"[^A-Za-z*.\-]")
# dnaio sees this (+ a serial) as a spooled record's sequence: nucleotide letters only (the reader's
# protein check samples the first sequences), long and odd enough never to equal a real record
_PLACEHOLDER_PREFIX = "NNNNNNNNACGTTGCATGCACGTANNNNNNNNTACGGCATCGATTGCANNNNNNNN"


class SpooledSequence:
    """A long record's bases on disk: `len()`, and `[start:stop]` slices as text (original case)."""

    def __init__(self, spool: BinaryIO, length: int):
        self._spool = spool
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, window: slice) -> str:
        """Bases [start:stop] as text (a plain slice); pread, so threads share no file position."""
        start, stop, step = window.indices(self.length)
        if step != 1:
            raise ValueError("a spooled sequence is read in plain [start:stop] slices")
        return os.pread(self._spool.fileno(), max(stop - start, 0), start).decode("ascii")

    def pieces(self, start: int = 0, stop: int | None = None):
        """Bases [start:stop] (default: all) as consecutive str pieces of at most `PIECE_BYTES`, so a
        whole record (viral.fa) or region (regions.fa) is copied out without being held at once."""
        stop = self.length if stop is None else min(stop, self.length)
        size = PIECE_BYTES
        for begin in range(start, stop, size):
            yield self[begin : min(begin + size, stop)]

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


class _Pending:
    """A spooled record dnaio has not yielded yet: its placeholder text and its sequence."""

    __slots__ = ("placeholder", "sequence")

    def __init__(self, placeholder: str, sequence: SpooledSequence):
        self.placeholder = placeholder
        self.sequence = sequence


class LongRecordFilter(io.BufferedIOBase):
    """The FASTA byte stream for dnaio, with long records' bases diverted to spool files.

    A buffered stream itself (dnaio's TextIOWrapper calls `read1` every 8 KiB): `read1` serves
    slices of the last filled MiB, so the filter costs one Python call per 8 KiB and a few
    searches per MiB."""

    def __init__(self, source: BinaryIO, name: str, spool_dir: str | Path | None = None,
                 long_bytes: int = LONG_RECORD_BYTES):
        super().__init__()
        self._source = source
        self._name = name
        self._spool_dir = spool_dir
        self._long_bytes = long_bytes
        self._held = b""  # the record in progress: not yet known to be short or long
        self._ready: list[bytes] = []  # pieces released for dnaio by the current fill
        self._out = b""  # what read1 serves from, at `_position`
        self._position = 0
        self._eof = False
        self._serial = 0
        self.pending: deque[_Pending] = deque()

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        if self._position >= len(self._out):
            while not self._ready and not self._eof:
                self._fill()
            self._out, self._position = b"".join(self._ready), 0
            self._ready.clear()
        start = self._position
        end = len(self._out) if size is None or size < 0 else min(len(self._out), start + size)
        self._position = end
        return self._out[start:end]

    def read(self, size: int = -1) -> bytes:
        if size is not None and size >= 0:
            return self.read1(size)
        return b"".join(iter(self.read1, b""))

    def readinto(self, buffer) -> int:
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._source.close()
            for pending in self.pending:
                pending.sequence.close()
            self.pending.clear()
        super().close()

    def _fill(self) -> None:
        data = self._source.read(_READ_BYTES)
        if not data:
            self._eof = True
            self._ready.append(self._held)
            self._held = b""
            return
        self._held = self._held + data if self._held else data
        while self._release_short_records():
            self._spool_record()

    def _release_short_records(self) -> bool:
        """Move the complete records that are not long from `_held` to `_ready`; True when `_held`
        now starts with a long record. Jumps from a record start to the last header within the
        next `long_bytes` bytes (a few searches per MiB, not one per record). A header indented
        with spaces is not seen here, which only makes a short record look long (spooled: the
        same results)."""
        held, limit = self._held, self._long_bytes
        carriage = b"\r" in held  # only then can a header follow a lone \r
        start = 0
        while (header := _last_header(held, start + 1, start + limit + 1, carriage)) > 0:
            start = header
        if start:
            self._ready.append(held[:start])
            self._held = held = held[start:]
        return len(held) > limit

    def _spool_record(self) -> None:
        """`_held` is a long record from its header: spool it to its end, emit header + placeholder."""
        held = self._held
        header_end = _line_end(held, 0)
        if not held.startswith(b">") or header_end < 0:  # no plain header first (or a giant one):
            self._ready.append(held)  # leave this rare shape to dnaio, unspooled
            self._held = b""
            return
        header = held[:header_end]
        spool = _Spool(self._name, header, self._spool_dir)
        rest = held[header_end:]
        self._held = b""
        while True:
            tail = spool.feed(rest)
            if tail is not None:  # the next record begins
                self._held = tail
                break
            rest = self._source.read(_READ_BYTES)
            if not rest:
                spool.feed(b"\n")  # the last line may have no line end
                break
        sequence = spool.finish()
        self._ready.append(header)  # ends with its line end
        if sequence is None:  # only blank or comment lines: an empty record, as dnaio would read it
            return
        self._serial += 1
        placeholder = f"{_PLACEHOLDER_PREFIX}{_letters(self._serial)}"
        self._ready.append(placeholder.encode() + b"\n")
        self.pending.append(_Pending(placeholder, sequence))


class _Spool:
    """Bases of one record appended to an unlinked temporary file, following dnaio's line rules."""

    def __init__(self, name: str, header: bytes, spool_dir: str | Path | None):
        self._name = name
        self._record_id = (header.strip(_STRIP)[1:].split() or [b""])[0].decode("utf-8", "replace")
        self._spool_dir = spool_dir
        self._file = None if spool_dir is DISCARD else \
            self._disk(lambda: tempfile.TemporaryFile(dir=spool_dir, prefix="virnucpro-spool-"))
        self._length = 0
        self._partial = b""  # an unfinished line that is not plain bases
        self._mid_line = False  # the last bytes written ended inside a line of plain bases

    def feed(self, data: bytes) -> bytes | None:
        """Append `data`; returns the bytes from the next record's header on, or None to go on."""
        if not self._partial and not data.translate(None, _SEQUENCE_BYTES + _LINE_ENDS):
            bases = data.translate(None, _LINE_ENDS)  # plain base lines: the common case, no Python per line
            self._write(bases)
            self._mid_line = data[-1:] not in (b"\r", b"\n") if data else self._mid_line
            return None
        return self._feed_lines(self._partial + data)

    def _feed_lines(self, data: bytes) -> bytes | None:
        lines = data.splitlines(keepends=True)
        self._partial = b""
        position = 0
        for line in lines:
            if line[-1:] not in (b"\r", b"\n"):  # unfinished: wait for the rest of the line
                self._partial = line
                return None
            continuing = self._mid_line
            self._mid_line = False
            text = line.rstrip(_STRIP) if continuing else line.strip(_STRIP)
            if not continuing and text[:1] == b">":
                return data[position:]
            if text and (continuing or text[:1] != b"#"):
                self._check(text)
                self._write(text)
            position += len(line)
        return None

    def _check(self, text: bytes) -> None:
        bad = _BAD_SYMBOL.search(text)
        if bad is not None:
            symbol = bad.group().decode("latin-1")
            raise InputFormatError(
                f"{self._name}: record {self._record_id!r} contains {symbol!r} at position"
                f" {self._length + bad.start() + 1} (expected letters, '-', '.' or '*')"
            )

    def _write(self, bases: bytes) -> None:
        if self._file is not None:
            self._disk(lambda: self._file.write(bases))
        self._length += len(bases)

    def _disk(self, action):
        """`action()`, with a full or unwritable spool directory as a one-line error."""
        try:
            return action()
        except OSError as error:
            where = self._spool_dir or tempfile.gettempdir()
            raise VirnucproError(f"cannot spool the long record {self._record_id!r} to {where}: {error.strerror}"
                                 " (it needs 1 byte per base; free space there or set TMPDIR)") from None

    def finish(self) -> SpooledSequence | None:
        if self._partial:
            self._feed_lines(self._partial + b"\n")
        if self._file is None or not self._length:
            if self._file is not None:
                self._file.close()
            return SpooledSequence(None, self._length) if self._length else None
        self._file.flush()
        return SpooledSequence(self._file, self._length)


def _last_header(data: bytes, start: int, end: int, carriage: bool) -> int:
    """Index of the '>' of the last line starting with '>' in data[start:end], or -1."""
    found = data.rfind(b"\n>", start - 1, end)
    if carriage:
        found = max(found, data.rfind(b"\r>", start - 1, end))
    return found + 1 if found >= 0 else -1


def _line_end(data: bytes, start: int) -> int:
    """Index just past the first line end at or after `start` (\\r\\n counts as one), or -1."""
    ends = [i for i in (data.find(b"\n", start), data.find(b"\r", start)) if i >= 0]
    if not ends:
        return -1
    end = min(ends)
    return end + 2 if data[end : end + 2] == b"\r\n" else end + 1


def _letters(number: int) -> str:
    """A number written in base 4 with the letters ACGT (the placeholder's serial)."""
    digits = ""
    while True:
        number, digit = divmod(number, 4)
        digits = "ACGT"[digit] + digits
        if not number:
            return digits


def attach(records: list, pending: deque[_Pending], stats) -> list:
    """Swap each placeholder record in `records` for its spooled sequence (in order) and count its
    bases in `stats`; a no-op unless spooled records are waiting."""
    if not pending:
        return records
    for record in records:
        if pending and record.sequence == pending[0].placeholder:
            sequence = pending.popleft().sequence
            stats.bases += len(sequence) - len(record.sequence)
            record.sequence = sequence
    return records


def wrap_fasta(stream: BinaryIO, name: str, spool_dir: str | Path | None = None) -> LongRecordFilter:
    """The stream dnaio should read; its `pending` records are what `attach` fills in."""
    return LongRecordFilter(stream, name, spool_dir, LONG_RECORD_BYTES)


def is_spooled(record) -> bool:
    return type(record.sequence) is SpooledSequence
