"""ResultWriter: streams every result file as NAME.partial and renames them when the run is done.

Resume after a crash works on byte offsets: `checkpoint()` makes the partial files durable and
returns their sizes, the pipeline's journal stores them with the work they cover, and
`ResultWriter.reopen()` cuts the files back to those sizes (dropping rows written after the last
checkpoint) and appends from there, so a resumed run ends with byte-identical files.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import BinaryIO

from virnucpro.errors import ResumeError
from virnucpro.outputs import formats
from virnucpro.outputs.hashed import HashedAppender, sha256_of_prefix
from virnucpro.outputs.jsonfile import fsync_directory
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.results import DEFAULT_THRESHOLD, SequenceCall, SequenceResult, SequenceTally
from virnucpro.outputs.safe_files import open_exclusive

_BUFFER_BYTES = 1 << 20
_CALL_COLUMN = formats.SEQUENCES_COLUMNS.index("call")


class ResultWriter:
    """Writes the results of each input sequence, in input order, to all result files at once."""

    def __init__(self, outdir: str | Path, threshold: float = DEFAULT_THRESHOLD, write_hits: bool = False,
                 *, _handles: dict[Path, HashedAppender] | None = None) -> None:
        self.paths = paths = OutputPaths(outdir)
        self.threshold = threshold
        self.write_hits = write_hits
        self.calls: Counter[str] = Counter()
        self._tally: SequenceTally | None = None  # the long sequence being written piece by piece
        fresh = _handles is None
        if fresh:
            paths.outdir.mkdir(parents=True, exist_ok=True)
            _handles = {path: HashedAppender(_open_partial(paths.partial(path), "wb")) for path in self._finals()}
        self._handles = _handles
        # Bound once: building Path objects per row costs more than formatting the row.
        self._prediction = _handles[paths.prediction_results].write
        self._highestscore = _handles[paths.highestscore].write
        self._chunks = _handles[paths.chunks].write
        self._sequences = _handles[paths.sequences].write
        self._viral = _handles[paths.viral_fasta].write if write_hits else None
        if fresh:
            self._prediction(formats.PREDICTION_HEADER.encode())
            self._highestscore(formats.HIGHESTSCORE_HEADER.encode())
            self._chunks(formats.CHUNKS_HEADER.encode())
            self._sequences(formats.SEQUENCES_HEADER.encode())

    @classmethod
    def reopen(cls, outdir: str | Path, offsets: dict[str, int], threshold: float = DEFAULT_THRESHOLD,
               write_hits: bool = False, *, digests: dict[str, str]) -> ResultWriter:
        """Continue a run from a checkpoint: check each partial file's first `offsets[name]` bytes
        against the checkpoint's sha256 (`digests[name]`), then truncate it there."""
        paths = OutputPaths(outdir)
        expected = {path.name for path in paths.result_files(write_hits)}
        if set(offsets) != expected or set(digests) != expected:
            raise ResumeError(f"checkpoint lists {sorted(offsets)}, expected result files {sorted(expected)}")
        handles: dict[Path, HashedAppender] = {}
        try:
            for path in paths.result_files(write_hits):
                _unrename(path, paths.partial(path))
                handles[path] = _truncated(paths.partial(path), offsets[path.name], digests[path.name])
        except BaseException:
            for handle in handles.values():
                handle.close()
            raise
        writer = cls(outdir, threshold, write_hits, _handles=handles)
        writer.calls.update(_calls_in(paths.partial(paths.sequences)))
        return writer

    def add(self, result: SequenceResult) -> None:
        """Append one input sequence's rows to every file."""
        self._write_chunks(result)
        self._end_sequence(result, result.summarize(self.threshold))

    def add_piece(self, result: SequenceResult, first: bool, last: bool) -> None:
        """Append some consecutive chunks of a long sequence (`first`/`last`: whether they begin /
        end it): chunk rows now, its sequences.tsv row (and viral.fa record) with the last piece."""
        if first:
            self._tally = SequenceTally(self.threshold)
        self._tally.add(result.chunks)
        self._write_chunks(result)
        if last:
            self._end_sequence(result, self._tally.call())
            self._tally = None
        self._flush()  # no checkpoint inside a long record: its rows must not pile up in memory

    def _flush(self) -> None:
        """Hand the rows collected so far to the files (no fsync, no checkpoint)."""
        for handle in self._handles.values():
            handle.flush()

    def _write_chunks(self, result: SequenceResult) -> None:
        chunks = result.chunks
        self._prediction("".join(map(formats.prediction_lines, chunks)).encode())
        self._highestscore("".join(map(formats.highestscore_line, chunks)).encode())
        self._chunks("".join(formats.chunk_line(c, result.record_id, self.threshold) for c in chunks).encode())

    def _end_sequence(self, result: SequenceResult, call: SequenceCall) -> None:
        self._sequences(formats.sequence_line(result, call).encode())
        if self._viral is not None and call.call == "virus":
            if result.sequence is None:
                raise ValueError(f"write_hits needs the sequence of {result.record_id}")
            if isinstance(result.sequence, str):
                self._viral(formats.fasta_record(result.record_id, result.sequence).encode())
            else:  # spooled on disk (io/long_records.py): copied a MiB at a time, never held whole
                viral = self._handles[self.paths.viral_fasta]
                self._viral(f">{result.record_id}\n".encode())
                for piece in result.sequence.pieces():
                    self._viral(piece.encode())
                    viral.flush()
                self._viral(b"\n")
        self.calls[call.call] += 1

    def checkpoint(self) -> dict[str, int]:
        """Flush and fsync every partial file; return its size in bytes, by final file name."""
        sizes = {}
        for path, handle in self._handles.items():
            handle.flush()
            os.fsync(handle.fileno())
            sizes[path.name] = handle.tell()
        return sizes

    def digests(self) -> dict[str, str]:
        """sha256 of every partial file's bytes up to the last checkpoint, by final file name."""
        return {path.name: handle.hexdigest() for path, handle in self._handles.items()}

    def finish(self) -> list[Path]:
        """Make everything durable and rename NAME.partial -> NAME; returns the final paths."""
        self.checkpoint()
        self.close()
        finals = self._finals()
        for final in finals:
            os.replace(self.paths.partial(final), final)
        fsync_directory(self.paths.outdir)
        return finals

    def close(self) -> None:
        """Close without finishing (the partial files stay for a resume)."""
        for handle in self._handles.values():
            handle.close()

    def _finals(self) -> list[Path]:
        return self.paths.result_files(self.write_hits)


def _open_partial(partial: Path, mode: str) -> BinaryIO:
    """A handle that lives as long as the writer, hence no `with`; "wb" creates the file, never
    through a link or over a file this run did not create."""
    if mode == "wb":
        return open_exclusive(partial, _BUFFER_BYTES)
    return open(partial, mode, buffering=_BUFFER_BYTES)


def _unrename(final: Path, partial: Path) -> None:
    """A run killed inside finish() has renamed some files; the journal says unfinished, so undo."""
    if final.exists() and not partial.exists():
        os.replace(final, partial)


def _truncated(partial: Path, size: int, digest: str) -> HashedAppender:
    """The partial file cut back to its checkpoint, after checking the bytes it keeps."""
    try:
        handle = _open_partial(partial, "r+b")
    except FileNotFoundError:
        raise ResumeError(f"cannot resume: {partial} is missing (use --force to start over)") from None
    try:
        actual = os.fstat(handle.fileno()).st_size
        if actual < size:
            raise ResumeError(f"cannot resume: {partial} has {actual} bytes, the checkpoint needs {size}"
                              " (truncated?); use --force to start over")
        sha, last = sha256_of_prefix(handle, size)
        if size and last != b"\n":
            raise ResumeError(f"cannot resume: the checkpoint of {partial.name} ends inside a row"
                              " (edited journal?); use --force to start over")
        if sha.hexdigest() != digest:
            raise ResumeError(f"cannot resume: the first {size} bytes of {partial} differ from what this run"
                              " wrote (file edited or damaged); use --force to start over")
        handle.truncate(size)
        handle.seek(size)
    except BaseException:
        handle.close()
        raise
    return HashedAppender(handle, sha)


def _calls_in(sequences_partial: Path) -> Counter[str]:
    """Recount the calls already written, so `calls` covers the whole run after a resume."""
    with open(sequences_partial, encoding="utf-8") as lines:
        next(lines)
        return Counter(line.rstrip("\n").split("\t")[_CALL_COLUMN] for line in lines)
