"""ResultWriter: streams every result file as NAME.partial and renames them when the run is done.

Resume after a crash works on byte offsets: `checkpoint()` makes the partial files durable and
returns their sizes, the pipeline's journal stores them with the work they cover, and
`ResultWriter.reopen()` cuts the files back to those sizes (dropping rows written after the last
checkpoint) and appends from there, so a resumed run ends with byte-identical files.
"""

from __future__ import annotations

import math
import operator
import os
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from virnucpro.errors import ResumeError
from virnucpro.fsutil.atomic import fsync_directory
from virnucpro.fsutil.safe_files import open_exclusive
from virnucpro.outputs import formats
from virnucpro.outputs.hashed import HashedAppender, sha256_of_prefix
from virnucpro.outputs.hits import write_virus_summary
from virnucpro.outputs.pairs import PAIRS_HEADER, PairTable
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.regions import RegionSettings, find_regions
from virnucpro.outputs.results import (
    DEFAULT_THRESHOLD,
    VIRAL_FRACTION_TO_CALL,
    ChunkResult,
    SequenceCall,
    SequenceResult,
    SequenceTally,
)

_BUFFER_BYTES = 1 << 20
_CALL_COLUMN = formats.SEQUENCES_COLUMNS.index("call")


class ResultWriter:
    """Writes the results of each input sequence, in input order, to all result files at once."""

    def __init__(self, outdir: str | Path, threshold: float = DEFAULT_THRESHOLD, write_hits: bool = False,
                 *, regions: RegionSettings = RegionSettings(), viral_fraction: float = VIRAL_FRACTION_TO_CALL,
                 min_length: int = 0, pairs: bool = False, _handles: dict[Path, HashedAppender] | None = None
                 ) -> None:
        self.paths = paths = OutputPaths(outdir)
        self.pairs = pairs  # a paired-end run: records are mates, two by two; pairs.tsv too
        self.threshold = threshold
        self.viral_fraction = viral_fraction
        self.min_length = min_length
        self.write_hits = write_hits
        self.region_settings = regions
        self.calls: Counter[str] = Counter()
        self.regions_found = 0
        self._tally: SequenceTally | None = None  # the long sequence being written piece by piece
        self._track: ChunkTrack | None = None  # ... and its chunk scores, for the region scan
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
        self._regions = _handles[paths.regions].write
        self._regions_fasta = _handles[paths.regions_fasta].write if write_hits else None
        self.pair_table = PairTable(_handles[paths.pairs].write, threshold, viral_fraction) if pairs else None
        if fresh:
            self._prediction(formats.PREDICTION_HEADER.encode())
            self._highestscore(formats.HIGHESTSCORE_HEADER.encode())
            self._chunks(formats.CHUNKS_HEADER.encode())
            self._sequences(formats.SEQUENCES_HEADER.encode())
            self._regions(formats.REGIONS_HEADER.encode())
            if pairs:
                _handles[paths.pairs].write(PAIRS_HEADER.encode())

    @classmethod
    def reopen(cls, outdir: str | Path, offsets: dict[str, int], threshold: float = DEFAULT_THRESHOLD,
               write_hits: bool = False, *, digests: dict[str, str],
               regions: RegionSettings = RegionSettings(), viral_fraction: float = VIRAL_FRACTION_TO_CALL,
               min_length: int = 0, pairs: bool = False) -> ResultWriter:
        """Continue a run from a checkpoint: check each partial file's first `offsets[name]` bytes
        against the checkpoint's sha256 (`digests[name]`), then truncate it there."""
        paths = OutputPaths(outdir)
        expected = {path.name for path in paths.result_files(write_hits, pairs)}
        if set(offsets) != expected or set(digests) != expected:
            raise ResumeError(f"checkpoint lists {sorted(offsets)}, expected result files {sorted(expected)}")
        handles: dict[Path, HashedAppender] = {}
        try:
            for path in paths.result_files(write_hits, pairs):
                _unrename(path, paths.partial(path))
                handles[path] = _truncated(paths.partial(path), offsets[path.name], digests[path.name])
        except BaseException:
            for handle in handles.values():
                handle.close()
            raise
        writer = cls(outdir, threshold, write_hits, regions=regions, viral_fraction=viral_fraction,
                     min_length=min_length, pairs=pairs, _handles=handles)
        writer.calls.update(_calls_in(paths.partial(paths.sequences)))
        if writer.pair_table is not None:
            writer.pair_table.recount(paths.partial(paths.pairs))
        writer.regions_found = _rows_in(paths.partial(paths.regions))
        return writer

    def add(self, result: SequenceResult) -> None:
        """Append one input sequence's rows to every file (a too-short one gets its sequences.tsv row only)."""
        call = result.summarize(self.threshold, self.viral_fraction, self.min_length)
        if call.call != "too_short":
            self._write_chunks(result)
        self._end_sequence(result, call, lambda: _track_of(result.chunks))
        if self.pair_table is not None:
            self.pair_table.add_mate(result.record_id, call, result.chunks)

    def add_piece(self, result: SequenceResult, first: bool, last: bool) -> None:
        """Append some consecutive chunks of a long sequence (`first`/`last`: whether they begin /
        end it): chunk rows now, its sequences.tsv row (and FASTA / region records) with the last piece."""
        if self.pair_table is not None:
            raise ValueError("a paired run has no long records (frames/windows.py refuses them)")
        if first:
            self._tally = SequenceTally(self.threshold, self.viral_fraction)
            self._track = ChunkTrack()
        too_short = result.length < self.min_length
        self._tally.add(result.chunks)
        self._track.add(result.chunks)
        if not too_short:
            self._write_chunks(result)
        if last:
            self._end_sequence(result, self._tally.call(too_short), self._track.views)
            self._tally = self._track = None
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

    def _end_sequence(self, result: SequenceResult, call: SequenceCall, track: Callable[[], tuple[list, list]]
                      ) -> None:
        """The sequence's row and FASTA record; `track()` gives its chunk bounds and scores for the
        region scan (built only for sequences with enough scored chunks)."""
        self._sequences(formats.sequence_line(result.record_id, result.length, call).encode())
        if self._viral is not None and call.call == "virus":
            if result.sequence is None:
                raise ValueError(f"write_hits needs the sequence of {result.record_id}")
            if isinstance(result.sequence, str):
                self._viral(formats.fasta_record(result.record_id, result.sequence, result.description).encode())
            else:  # spooled on disk (io/long_records.py): copied a piece at a time, never held whole
                header = f"{result.record_id} {result.description}" if result.description else result.record_id
                self._copy_spooled(self.paths.viral_fasta, f">{header}\n", result.sequence, 0, result.length)
        self.calls[call.call] += 1
        if call.n_chunks_scored >= self.region_settings.min_scored:
            self._add_regions(result, *track())

    def _add_regions(self, result: SequenceResult, bounds: Sequence[tuple[int, int]], scores: Sequence[float | None]
                     ) -> None:
        regions = find_regions(bounds, scores, self.threshold, self.region_settings)
        if regions:
            self._regions(formats.region_lines(result, regions).encode())
            if self._regions_fasta is not None:
                if result.sequence is None:
                    raise ValueError(f"write_hits needs the sequence of {result.record_id}")
                if isinstance(result.sequence, str):
                    self._regions_fasta(formats.region_fasta(result, regions).encode())
                else:  # a spooled record's region can be most of it: copied a piece at a time
                    for number, region in enumerate(regions, start=1):
                        header = formats.region_header(result.record_id, number, region)
                        self._copy_spooled(self.paths.regions_fasta, header, result.sequence, region.start, region.end)
            self.regions_found += len(regions)

    def _copy_spooled(self, path: Path, header: str, sequence, start: int, stop: int) -> None:
        """One FASTA record of bases [start:stop] of a spooled sequence, handed to the file piece by
        piece (`SpooledSequence.pieces`), so memory stays bounded whatever the span's length."""
        handle = self._handles[path]
        handle.write(header.encode())
        for piece in sequence.pieces(start, stop):
            handle.write(piece.encode())
            handle.flush()
        handle.write(b"\n")

    def checkpoint(self) -> dict[str, int]:
        """Flush and fsync every partial file; return its size in bytes, by final file name."""
        if self.pair_table is not None and not self.pair_table.between_pairs:
            raise RuntimeError("checkpoint between the mates of a pair: a block split a pair")
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
        """Make everything durable, rename NAME.partial -> NAME, write virus_summary.tsv; returns the paths."""
        self.checkpoint()
        self.close()
        finals = self._finals()
        for final in finals:
            os.replace(self.paths.partial(final), final)
        summary = write_virus_summary(self.paths)  # sorted by score: only from the finished tables
        fsync_directory(self.paths.outdir)
        return [*finals, summary]

    def close(self) -> None:
        """Close without finishing (the partial files stay for a resume)."""
        for handle in self._handles.values():
            handle.close()

    def _finals(self) -> list[Path]:
        return self.paths.result_files(self.write_hits, self.pairs)


def _track_of(chunks: list[ChunkResult]) -> tuple[list[tuple[int, int]], list[float | None]]:
    return [(chunk.start, chunk.end) for chunk in chunks], [chunk.virus_score() for chunk in chunks]


class ChunkTrack:
    """A long sequence's chunk starts, lengths and virus scores, kept compact while its pieces arrive
    (8 + 4 + 8 bytes a chunk, NaN for an unscored chunk), and handed to the region scan as read-only
    views: no Python object per chunk exists before the scan itself (a 1-Gb record has 3.3M chunks;
    as lists of tuples and floats they took ~160 bytes each at its end)."""

    def __init__(self) -> None:
        self.starts, self.lengths, self.scores = array("q"), array("I"), array("d")

    def add(self, chunks: list[ChunkResult]) -> None:
        for chunk in chunks:
            score = chunk.virus_score()
            self.starts.append(chunk.start)
            self.lengths.append(chunk.end - chunk.start)
            self.scores.append(math.nan if score is None else score)

    def views(self) -> tuple[Sequence[tuple[int, int]], Sequence[float | None]]:
        """(bounds, scores) as `find_regions` reads them."""
        return _BoundsView(self.starts, self.lengths), _ScoresView(self.scores)


class _BoundsView(Sequence):
    """(start, end) of chunk i, computed when asked."""

    def __init__(self, starts: array, lengths: array) -> None:
        self._starts, self._lengths = starts, lengths

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(zip(self._starts[index], map(operator.add, self._starts[index], self._lengths[index])))
        start = self._starts[index]
        return start, start + self._lengths[index]

    def __iter__(self):
        return zip(self._starts, map(operator.add, self._starts, self._lengths))


class _ScoresView(Sequence):
    """Score of chunk i, None for an unscored chunk (stored as NaN)."""

    def __init__(self, scores: array) -> None:
        self._scores = scores

    def __len__(self) -> int:
        return len(self._scores)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [None if math.isnan(score) else score for score in self._scores[index]]
        score = self._scores[index]
        return None if math.isnan(score) else score

    def __iter__(self):
        return (None if math.isnan(score) else score for score in self._scores)


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


def _rows_in(table_partial: Path) -> int:
    """Rows below the header (regions found before a resume)."""
    with open(table_partial, "rb") as lines:
        return sum(1 for _ in lines) - 1
