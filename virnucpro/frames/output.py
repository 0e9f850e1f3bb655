"""`virnucpro frames` outputs: chunks.fa, nucleotide.fa, protein.faa, never half-written."""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from virnucpro.errors import VirnucproError
from virnucpro.frames.chunks import ChunkTable
from virnucpro.frames.windows import record_groups, unit_table
from virnucpro.fsutil.safe_files import open_exclusive
from virnucpro.io import read_records

log = logging.getLogger(__name__)

OUTPUT_NAMES = ("chunks.fa", "nucleotide.fa", "protein.faa")
_GROUP_BASES = 1 << 18  # batch_records' defaults: the frames stage's numpy temporaries stay in cache
_GROUP_RECORDS = 8192


@dataclass
class FramesSummary:
    """What a frames run read and wrote, for the log and the benchmark."""

    records: int
    empty_skipped: int
    bases: int
    chunks: int
    frames: int
    seconds: float


class FramesWriter:
    """Writes NAME.partial files and renames them to NAME only when everything was written,
    so a crash never leaves output that looks complete; see `frames_writer`."""

    def __init__(self, outdir: Path):
        self.outdir = Path(outdir)
        self._files: list[io.TextIOWrapper] = []
        try:
            self.outdir.mkdir(parents=True, exist_ok=True)
            for name in OUTPUT_NAMES:  # created exclusively, never through a link (a planted one is refused)
                self._files.append(io.TextIOWrapper(open_exclusive(self._partial(name)), encoding="ascii"))
        except OSError as error:
            self.close(keep=False)
            raise VirnucproError(f"cannot write to output directory {self.outdir}: {error.strerror or error}") from None
        except VirnucproError:
            self.close(keep=False)
            raise
        self.chunks = 0
        self.frames = 0

    def _partial(self, name: str) -> Path:
        return self.outdir / f"{name}.partial"

    def write(self, table: ChunkTable) -> None:
        """Append the chunks (all of them) and their kept frames, one sequence line each."""
        chunk_headers = [">" + chunk_id for chunk_id in table.chunk_ids]
        frame_headers = table.frame_labels(chunk_headers)
        chunk_file, nucleotide_file, protein_file = self._files
        chunk_file.write(_fasta(chunk_headers, table.sequences))
        nucleotide_file.write(_fasta(frame_headers, table.nucleotides))
        protein_file.write(_fasta(frame_headers, table.proteins))
        self.chunks += len(chunk_headers)
        self.frames += len(frame_headers)

    def close(self, keep: bool) -> None:
        """Rename the partial files to their final names (keep) or delete them."""
        for file in self._files:
            file.close()
        for name in OUTPUT_NAMES[:len(self._files)]:  # only the partial files this writer created
            if keep:
                os.replace(self._partial(name), self.outdir / name)
            else:
                self._partial(name).unlink(missing_ok=True)


def _fasta(headers: list[str], sequences: list[str]) -> str:
    """FASTA text, one line per header and sequence: one join, no string per record."""
    lines = [""] * (2 * len(headers) + 1)
    lines[0:-1:2] = headers
    lines[1::2] = sequences
    return "\n".join(lines)


@contextmanager
def frames_writer(outdir: Path) -> Iterator[FramesWriter]:
    """A FramesWriter whose outputs appear under their final names only if the block succeeds."""
    writer = FramesWriter(outdir)
    succeeded = False
    try:
        yield writer
        succeeded = True
    finally:
        writer.close(keep=succeeded)


def write_frames(paths: Sequence[str | Path], outdir: Path, chunk_size: int, mode: str = "even") -> FramesSummary:
    """Read `paths`, chunk and translate them, and write the three outputs in input order."""
    began = time.perf_counter()
    reader = read_records(paths)
    with frames_writer(outdir) as writer:
        for number, unit in enumerate(record_groups(reader, chunk_size, mode, _GROUP_BASES, _GROUP_RECORDS), start=1):
            writer.write(unit_table(unit, chunk_size, mode))  # long records: a window at a time
            if number % 64 == 0 and reader.bytes_total:
                log.debug("%.0f%% of the input read", 100 * reader.bytes_done / reader.bytes_total)
    stats = reader.stats
    return FramesSummary(stats.records, stats.empty, stats.bases, writer.chunks, writer.frames,
                         time.perf_counter() - began)
