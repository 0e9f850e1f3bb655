"""Work blocks: a run of consecutive input records turned into ready-to-run token batches.

A block is the unit of everything downstream: the CPU side builds it (chunk, translate, select,
deduplicate, tokenise, batch) off the critical path; one device worker runs all of its batches;
the writer emits its records in input order and checkpoints the journal after it. Because the
batches are fixed when the block is built, a block's scores do not depend on which worker ran it,
how many workers there were, or whether the run was resumed.

Identical frames inside a block (duplicate reads are common) are embedded once: DNABERT-S sees
each distinct nucleotide string once, ESM-2 each distinct protein once.

A record longer than `long_record_bases` is one block index of its own, built and run as several
work blocks, one window of about `block_bases` bases of chunks each (frames/windows.py), whether
it arrives in memory or spooled to disk (io/long_records.py spools long FASTA records while
reading): block composition decides the batches and so the last bits of the scores, so it
depends only on record lengths and settings, never on how a record was read. Its work blocks
share the index and carry a `piece` (which chunks, and whether they end the record); the writer
aggregates the record's row over them, and the journal checkpoints (and a shard logs the index)
only after the last one, so for resume, shards and merge a long record is one ordinary block.
Shorter records around it are grouped as before; a group ends before a long record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from virnucpro.engine.batching import token_budget_batches
from virnucpro.engine.work import RecordInfo, TokenBatch, WorkBlock
from virnucpro.frames.chunks import ChunkTable, chunk_table
from virnucpro.frames.windows import LONG_RECORD_BASES, RecordWindow, record_groups
from virnucpro.io import Record
from virnucpro.tokenize.dnabert import DnabertTokenizer
from virnucpro.tokenize.esm_alphabet import encode_protein_arrays
from virnucpro.tokenize.packing import pack


BLOCK_RAMP = (16, 8, 4, 2)  # 1/16, 1/8, 1/4, 1/2 of a block, then full blocks


@dataclass(frozen=True)
class BlockSettings:
    """Everything that decides how blocks are cut and batched (part of the resume fingerprint)."""

    chunk_size: int
    chunking: str
    batch_tokens: int  # tokens per encoder batch, the same budget for ESM-2 and DNABERT-S
    block_records: int = 16_384
    block_bases: int = 4 << 20
    long_record_bases: int = LONG_RECORD_BASES  # a longer record gets blocks of its own (one window of chunks each)
    keep_sequences: bool = False  # keep record sequences for viral.fa
    pairs: bool = False  # records are mates, two by two: a block never splits a pair (frames/windows.py)
    min_length: int = 0  # shorter records are too_short: their chunks are counted, their frames not embedded
    ramp: tuple[int, ...] = BLOCK_RAMP  # block k < len(ramp) is 1/ramp[k] of the full size


def block_limits(settings: BlockSettings, index: int) -> tuple[int, int]:
    """(max bases, max records) of block `index`: a ramp of smaller first blocks, then full size.

    Small first blocks put the first batches on the GPU within a moment of the models being ready
    and finish small inputs sooner. A pure function of the block index and the settings (the ramp
    is in the resume fingerprint), so the boundaries never depend on timing, workers, shards or
    resume.
    """
    divisor = settings.ramp[index] if 0 <= index < len(settings.ramp) else 1
    return max(1, settings.block_bases // divisor), max(1, settings.block_records // divisor)


def iter_blocks(
    records: Iterator[Record], settings: BlockSettings, tokenizer: DnabertTokenizer,
    first_index: int = 0, shard: tuple[int, int] | None = None,
) -> Iterator[WorkBlock]:
    """Cut the record stream into blocks; `first_index` numbers them when resuming mid-stream.

    With `shard=(k, n)` only blocks whose index is k-1 modulo n are built (the others are read and
    cut, which is cheap, so every shard sees the same block boundaries as an unsharded run). The
    work blocks of a long record all carry the record's one index.
    """
    index, owned = first_index - 1, False
    units = record_groups(records, settings.chunk_size, settings.chunking, settings.block_bases,
                          settings.block_records, settings.long_record_bases, pairs=settings.pairs,
                          limits=lambda unit: block_limits(settings, first_index + unit))
    for unit in units:
        if isinstance(unit, RecordWindow):  # all windows of a long record share its block index
            if unit.window.first == 0:
                index += 1
                owned = _in_shard(index, shard)
            if owned:
                yield build_piece_block(index, unit, settings, tokenizer)
            continue
        index += 1
        if _in_shard(index, shard):
            yield build_block(index, unit[0].index, unit, settings, tokenizer)


def _in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    return shard is None or index % shard[1] == shard[0] - 1


def build_piece_block(index: int, unit: RecordWindow, settings: BlockSettings, tokenizer: DnabertTokenizer
                      ) -> WorkBlock:
    """One window of chunks of a long record as a block of its own."""
    record = unit.record
    block = _block_from_table(index, record.index, [_record_info(record, settings)], unit.table(), settings, tokenizer)
    block.piece = unit.window
    return block


def build_block(
    index: int, first_record: int, records: Sequence[Record], settings: BlockSettings,
    tokenizer: DnabertTokenizer,
) -> WorkBlock:
    """Chunk, translate, select, deduplicate, tokenise and batch one group of records."""
    table = chunk_table(records, settings.chunk_size, settings.chunking)
    infos = [_record_info(record, settings) for record in records]
    return _block_from_table(index, first_record, infos, table, settings, tokenizer)


def _record_info(record: Record, settings: BlockSettings) -> RecordInfo:
    """What the writer needs of a record: its sequence and header description only for the FASTA outputs."""
    if settings.keep_sequences:
        return RecordInfo(record.id, len(record.sequence), record.sequence, record.description)
    return RecordInfo(record.id, len(record.sequence), None)


def _block_from_table(index: int, first_record: int, infos: list[RecordInfo], table: ChunkTable,
                      settings: BlockSettings, tokenizer: DnabertTokenizer) -> WorkBlock:
    """Deduplicate, tokenise and batch the kept frames of `table`. Frames of too_short records
    (shorter than `settings.min_length`) are left out, and so is every encoder batch that only
    they needed; the batches are planned over all frames first, so every other frame's batch (and
    with it the last bits of its score) is the one it would have had anyway."""
    nucleotides = _first_seen(table.nucleotides)
    proteins = _first_seen(table.proteins)
    frame_pairs = zip(map(nucleotides.__getitem__, table.nucleotides), map(proteins.__getitem__, table.proteins))
    too_short = _too_short_frames(table, infos, settings.min_length)
    if too_short is not None:
        frame_pairs = [pair for pair, skip in zip(frame_pairs, too_short.tolist()) if not skip]
        table = _frames_kept(table, ~too_short)
    pairs: dict[tuple[int, int], int] = {}
    frame_to_unique = np.fromiter((pairs.setdefault(pair, len(pairs)) for pair in frame_pairs),
                                  dtype=np.int64, count=len(table.proteins))
    unique = np.array(list(pairs), dtype=np.int64).reshape(-1, 2)
    block = WorkBlock(
        index, first_record, infos, table, table.frame_labels(table.chunk_ids), frame_to_unique,
        unique[:, 0].copy(), unique[:, 1].copy(), len(nucleotides), len(proteins),
    )
    block.dnabert_batches = _batches(tokenizer.encode_batch(list(nucleotides)), settings.batch_tokens)
    block.esm_batches = _batches(encode_protein_arrays(list(proteins)), settings.batch_tokens)
    if too_short is not None:
        block.dnabert_batches = _needed(block.dnabert_batches, block.unique_nucleotide, len(nucleotides))
        block.esm_batches = _needed(block.esm_batches, block.unique_protein, len(proteins))
    return block


def _too_short_frames(table: ChunkTable, infos: list[RecordInfo], min_length: int) -> np.ndarray | None:
    """Which frames belong to records shorter than `min_length` (None when none does): the writer
    gives such a record its too_short row from its chunk count alone, so their scores are unused."""
    if not min_length or all(info.length >= min_length for info in infos):
        return None
    short = np.repeat(np.array([info.length < min_length for info in infos], dtype=bool), table.chunk_counts)
    return short[table.frame_chunks]


def _frames_kept(table: ChunkTable, keep: np.ndarray) -> ChunkTable:
    """`table` with only the frames where `keep` is True (every chunk stays: chunks are counted)."""
    kept = np.flatnonzero(keep).tolist()
    table.frame_chunks, table.frame_strands = table.frame_chunks[keep], table.frame_strands[keep]
    table.nucleotides = [table.nucleotides[i] for i in kept]
    table.proteins = [table.proteins[i] for i in kept]
    return table


def _needed(batches: list[TokenBatch], used_rows: np.ndarray, rows: int) -> list[TokenBatch]:
    """The batches that embed at least one input some kept frame uses."""
    used = np.zeros(rows, dtype=bool)
    used[used_rows] = True
    return [batch for batch in batches if used[batch.rows].any()]


def _first_seen(texts: list[str]) -> dict[str, int]:
    """Each distinct text -> its rank by first appearance."""
    distinct = dict.fromkeys(texts)
    return dict(zip(distinct, range(len(distinct))))


def _batches(token_arrays: list[np.ndarray], max_tokens: int) -> list[TokenBatch]:
    """Length-sorted token-budget batches over all of a block's inputs for one encoder."""
    batches = []
    for batch in token_budget_batches(range(len(token_arrays)), lambda i: token_arrays[i].size, max_tokens):
        arrays = [token_arrays[i] for i in batch.indices]
        batches.append(TokenBatch(np.asarray(batch.indices, dtype=np.int64), arrays, pack(arrays)))
    return batches
