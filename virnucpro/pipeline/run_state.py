"""The run's state on disk between blocks, the one home of resume: the fingerprint that decides
whether an output can be continued, the journal checkpointed after every block, and (with --shard)
the log that merge needs. The output directory itself (lock, fresh / resume / refuse, clean-up)
is pipeline/output_state.py; the journal's format and checks are pipeline/journal.py."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from virnucpro import __version__
from virnucpro.engine import model_hashes
from virnucpro.engine.work import WorkBlock
from virnucpro.models.registry import hash_stamps
from virnucpro.outputs.writer import ResultWriter
from virnucpro.pipeline.blocks import BlockSettings
from virnucpro.pipeline.embeddings import EmbeddingWriter
from virnucpro.pipeline.journal import Journal, input_identity
from virnucpro.pipeline.options import RunOptions
from virnucpro.pipeline.shards import ShardLog, shared_parameters


def fingerprint(options: RunOptions, settings: BlockSettings, model_paths: dict[str, Path], dtype: torch.dtype,
                device: torch.device) -> dict:
    """Everything that decides the result bytes (the resume fingerprint covers exactly this)."""
    model_hashes.wait_for_hashing()  # the engine may have hashed the model files while they loaded
    stamps = hash_stamps()
    model_files = {kind: _file_identity(path, stamps) for kind, path in model_paths.items()}
    return run_parameters(options, settings, dtype, device) | {"models": model_files}


def run_parameters(options: RunOptions, settings: BlockSettings, dtype: torch.dtype, device: torch.device) -> dict:
    """The fingerprint but the model files: what the options, the block settings and the device
    decide (a finished run is checked against it without loading or hashing a model)."""
    parameters = {
        "version": __version__, "chunk_size": settings.chunk_size, "chunking": settings.chunking,
        # one budget for both encoders; both keys kept so journals of earlier versions still resume
        "esm_batch_tokens": settings.batch_tokens, "dnabert_batch_tokens": settings.batch_tokens,
        "block_records": settings.block_records, "block_bases": settings.block_bases,
        "long_record_bases": settings.long_record_bases, "block_ramp": list(settings.ramp),
        "precision": str(dtype).removeprefix("torch."), "device_type": device.type, "shard": options.shard,
        "threshold": options.threshold, "write_hits": options.write_hits, "regions": asdict(options.regions),
        "viral_fraction": options.viral_fraction, "min_length": options.min_length,
        "save_embeddings": options.save_embeddings, "embed_only": options.embed_only,
    }
    if options.pairs:  # only then: single-end journals and shard logs stay as they were
        parameters["pairs"] = options.pairs
    return parameters


def _file_identity(path: Path, stamps) -> dict:
    """Size and sha256 of every model file (hashed once per file version, then remembered)."""
    files = model_hashes.model_files([path])
    return {"path": str(path.resolve()),
            "files": {str(p.relative_to(path)) if path.is_dir() else p.name:
                      {"size": p.stat().st_size, "sha256": stamps.sha256(p)} for p in files}}


def open_journal(previous: Journal | None, options: RunOptions, parameters: dict) -> Journal:
    """The journal to continue (refused, naming what changed, if this is not the same run) or a new one."""
    inputs = input_identity(options.inputs)
    if previous is not None:
        previous.check_same_run(inputs, parameters, options.output)
        return previous
    journal = Journal.start(inputs, parameters)
    if options.shard and not options.embed_only:  # merge joins predict's result files
        journal.shard_log = ShardLog(journal.inputs, shared_parameters(journal.parameters), *options.shard).to_json()
    return journal


def mark_shard_start(journal: Journal, results: ResultWriter | None) -> None:
    """A fresh shard records where its result files start (their headers), for merge."""
    if results is not None and not journal.blocks_done and journal.shard_log is not None:
        journal.shard_log["start_offsets"] = results.checkpoint()
        journal.digests = results.digests()


def checkpoint(journal: Journal, block: WorkBlock, results: ResultWriter | None, embeddings: EmbeddingWriter | None,
               path: Path) -> None:
    """After a block whose records are complete: the files' kept sizes and digests (and the
    embedding parts' digests), then the journal."""
    journal.blocks_done = block.index + 1
    journal.records_done = block.first_record + block.records_completed
    journal.offsets = results.checkpoint() if results is not None else {}
    journal.digests = results.digests() if results is not None else {}
    journal.parts = embeddings.digests() if embeddings is not None else {}
    if journal.shard_log is not None:
        journal.shard_log["blocks"].append({"index": block.index, "first_record": block.first_record,
                                            "records": len(block.records), "ends": journal.offsets})
    journal.save(path)


def finish_shard(journal: Journal, records_total: int, outdir: Path) -> None:
    """shard.json: what merge needs, with the finished files' checksums."""
    if journal.shard_log is not None:
        ShardLog(**dict(journal.shard_log, records_total=records_total, sha256=journal.digests)).save(outdir)
