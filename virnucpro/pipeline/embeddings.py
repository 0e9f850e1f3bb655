"""Per-frame embeddings as parquet: columns `id` (string), `dnabert` and `esm` (list<float32>).

A parquet file is only readable once its footer is written, so each block goes to its own part
file (written then renamed) and `finish()` joins the parts, in block order, into the final file.
A resumed run keeps the parts of finished blocks and rewrites the rest. The journal records each
part's sha256 at every checkpoint (`digests`), and a resume refuses parts that are missing, extra
or changed, as it does for the result files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from virnucpro.errors import ResumeError
from virnucpro.fsutil.hashing import sha256_file
from virnucpro.fsutil.safe_files import open_exclusive
from virnucpro.outputs.paths import OutputPaths

SCHEMA = pa.schema([("id", pa.string()), ("dnabert", pa.list_(pa.float32())), ("esm", pa.list_(pa.float32()))])


class EmbeddingWriter:
    def __init__(self, path: str | Path, dnabert_dim: int, blocks_done: int = 0,
                 digests: dict[str, str] | None = None):
        """`digests`: the parts of the `blocks_done` finished blocks, as the journal recorded them."""
        self.path = Path(path)
        self.dnabert_dim = dnabert_dim
        self.parts = OutputPaths.parts_dir(self.path)
        self.parts.mkdir(parents=True, exist_ok=True)
        for part in self.parts.glob("part-*.parquet"):  # parts past the journal's checkpoint
            if _part_order(part)[0] >= blocks_done:
                part.unlink()
        self._digests = dict(digests or {})
        _check_kept_parts(self.parts, self._digests)

    def add(self, block_index: int, frame_ids: list[str], features: np.ndarray, piece: int | None = None) -> None:
        """Write one block's frames ([n_frames, D_dnabert + D_esm] float32, in frame order); a
        long record's work blocks share its index and are told apart by `piece`."""
        table = pa.table([pa.array(frame_ids, pa.string()),
                          _lists(features[:, : self.dnabert_dim]), _lists(features[:, self.dnabert_dim :])],
                         schema=SCHEMA)
        final = OutputPaths.embedding_part(self.parts, block_index, piece)
        temporary = final.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)  # left by a killed run; a link is removed, never followed
        with open_exclusive(temporary) as handle:
            pq.write_table(table, handle)
        os.replace(temporary, final)
        self._digests[final.name] = sha256_file(final)  # read back from the page cache

    def digests(self) -> dict[str, str]:
        """sha256 of every part written so far (kept ones included), for the journal."""
        return dict(self._digests)

    def finish(self) -> Path:
        """Concatenate the parts into the final file (streaming, one part at a time)."""
        partial = OutputPaths.partial(self.path)
        partial.unlink(missing_ok=True)  # left by a run killed while joining; never a link's target
        with open_exclusive(partial) as sink, pq.ParquetWriter(sink, SCHEMA) as writer:
            for part in sorted(self.parts.glob("part-*.parquet"), key=_part_order):
                writer.write_table(pq.read_table(part, schema=SCHEMA))
        os.replace(partial, self.path)
        shutil.rmtree(self.parts)
        return self.path


def _check_kept_parts(parts: Path, digests: dict[str, str]) -> None:
    """The kept parts must be exactly those the journal recorded, byte for byte."""
    present = {part.name for part in parts.glob("part-*.parquet")}
    if present != set(digests):
        missing, extra = sorted(set(digests) - present), sorted(present - set(digests))
        raise ResumeError(f"cannot resume: the embedding parts in {parts} do not match the journal"
                          f" (missing {missing[:3] or 'none'}, unexpected {extra[:3] or 'none'}); use --force to start over")
    for name, digest in digests.items():
        if sha256_file(parts / name) != digest:
            raise ResumeError(f"cannot resume: {parts / name} changed since its checkpoint; use --force to start over")


def _lists(matrix: np.ndarray) -> pa.ListArray:
    rows, width = matrix.shape
    offsets = pa.array(np.arange(0, (rows + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(matrix, dtype=np.float32).ravel()))


def _part_order(part: Path) -> tuple[int, ...]:
    """(block index,) or (block index, first chunk) for a piece of a long record."""
    return tuple(map(int, part.stem.split("-")[1:]))
