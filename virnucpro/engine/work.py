"""The engine's contract: a work block (records, chunks, deduplicated frames and the token batches
that run them) as the pipeline hands it to a device worker. The pipeline builds blocks
(pipeline/blocks.py); the engine only runs them, so these types live here, below the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from virnucpro.frames.chunks import ChunkTable
from virnucpro.frames.windows import Window
from virnucpro.io.long_records import SpooledSequence
from virnucpro.tokenize.packing import PackedTokens


@dataclass
class TokenBatch:
    """Packed tokens of some encoder inputs plus which inputs they are (rows of the block's table)."""

    rows: np.ndarray  # int64 indices into the block's distinct nucleotides or proteins
    token_arrays: list[np.ndarray]  # kept so an out-of-memory split can re-pack halves
    packed: PackedTokens

    @property
    def num_tokens(self) -> int:
        return self.packed.num_tokens


@dataclass(slots=True)
class RecordInfo:
    """What the writer needs about an input record (its sequence and description only with --write-hits)."""

    id: str
    length: int
    sequence: str | SpooledSequence | None
    description: str | None = None


@dataclass
class WorkBlock:
    """One block: records, their chunks, and the deduplicated encoder work."""

    index: int
    first_record: int
    records: list[RecordInfo]
    table: ChunkTable | None  # chunks and kept frames as columns (None in a slimmed copy for Ray)
    frame_ids: list[str]  # every kept frame, in output order
    frame_to_unique: np.ndarray  # [n_frames] -> distinct (nucleotide, protein) pair
    unique_nucleotide: np.ndarray  # [n_unique] -> row of the DNABERT-S table
    unique_protein: np.ndarray  # [n_unique] -> row of the ESM-2 table
    num_nucleotides: int
    num_proteins: int
    dnabert_batches: list[TokenBatch] = field(default_factory=list)
    esm_batches: list[TokenBatch] = field(default_factory=list)
    piece: Window | None = None  # set when the block holds part of one long record (index shared)

    @property
    def records_completed(self) -> int:
        """Records whose every chunk is written once this block is: a piece completes its record
        only when it is the last one."""
        return len(self.records) if self.piece is None or self.piece.last else 0

    @property
    def num_frames(self) -> int:
        return len(self.frame_ids)

    @property
    def num_unique(self) -> int:
        return int(self.unique_nucleotide.size)

    @property
    def esm_tokens(self) -> int:
        return sum(batch.num_tokens for batch in self.esm_batches)

    @property
    def dnabert_tokens(self) -> int:
        return sum(batch.num_tokens for batch in self.dnabert_batches)
