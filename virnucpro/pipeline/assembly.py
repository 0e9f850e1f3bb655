"""Result assembly: the writers a run appends to (fresh, or reopened at the journal's checkpoint)
and one block's output turned into per-record results and embedding rows, in input order."""

from __future__ import annotations

import numpy as np

from virnucpro.engine.work import WorkBlock
from virnucpro.engine.worker import BlockOutput
from virnucpro.errors import ResumeError
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.results import ChunkResult, FrameScore, SequenceResult
from virnucpro.outputs.writer import ResultWriter
from virnucpro.pipeline.embeddings import EmbeddingWriter
from virnucpro.pipeline.journal import Journal
from virnucpro.pipeline.options import RunOptions


def open_writers(options: RunOptions, journal: Journal,
                 dnabert_dim: int) -> tuple[ResultWriter | None, EmbeddingWriter | None]:
    """The result files (predict) and the embeddings (embed, or predict --save-embeddings)."""
    results = None
    if not options.embed_only:
        if journal.blocks_done:
            results = ResultWriter.reopen(options.output, journal.offsets, options.threshold, options.write_hits,
                                          digests=journal.digests, **options.call_rules())
            _check_rows(results, journal)
        else:
            results = ResultWriter(options.output, options.threshold, options.write_hits, **options.call_rules())
    embeddings = None
    if options.embed_only or options.save_embeddings:
        path = options.output if options.embed_only else OutputPaths(options.output).embeddings
        embeddings = EmbeddingWriter(path, dnabert_dim, journal.blocks_done, journal.parts)
    return results, embeddings


def _check_rows(results: ResultWriter, journal: Journal) -> None:
    """The verified partial files must hold exactly the records the journal says are done."""
    rows = results.calls.total()
    if rows != journal.rows_written():
        results.close()
        raise ResumeError(f"cannot resume: the journal counts {journal.rows_written()} finished records but"
                          f" sequences.tsv.partial holds {rows}; use --force to start over")


def write_block(output: BlockOutput, results: ResultWriter | None, embeddings: EmbeddingWriter | None) -> None:
    block = output.block
    if results is not None:
        piece = block.piece
        for sequence_result in sequence_results(block, output.probabilities.numpy()):
            if piece is None:
                results.add(sequence_result)
            else:  # part of a long record: its row is written with its last piece
                results.add_piece(sequence_result, piece.first == 0, piece.last)
    if embeddings is not None:
        features = output.features.numpy()[block.frame_to_unique]
        embeddings.add(block.index, block.frame_ids, features, None if block.piece is None else block.piece.first)


def sequence_results(block: WorkBlock, unique_probabilities: np.ndarray) -> list[SequenceResult]:
    """Per-record results with each kept frame's float32 probabilities (duplicates share theirs)."""
    table = block.table
    per_frame = unique_probabilities[block.frame_to_unique].tolist()
    scores = list(map(FrameScore, block.frame_ids, *zip(*per_frame))) if per_frame else []
    chunks = list(map(ChunkResult, table.chunk_ids, table.starts.tolist(), table.ends.tolist(),
                      table.per_chunk(scores)))
    return [SequenceResult(info.id, info.length, record_chunks, info.sequence, info.description)
            for info, record_chunks in zip(block.records, table.per_record(chunks))]
