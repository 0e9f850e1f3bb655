"""`predict` and `embed`: one streaming run from reads to calls (or to per-frame embeddings).

init (threads, device, precision) -> output state (fresh / resume / refuse) -> models -> stream:
producer thread builds blocks, device threads run them, this thread writes results in input order
and checkpoints the journal after every block -> finish (rename, run.json, summary).
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import torch

from virnucpro import __version__
from virnucpro.engine.monitor import StreamMonitor
from virnucpro.engine.worker import STAGES, BlockOutput, DeviceWorker
from virnucpro.errors import ResumeError
from virnucpro.io import read_records
from virnucpro.io.sources import display_name
from virnucpro.models.registry import hash_stamps
from virnucpro.outputs.jsonfile import write_json_atomic
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.regions import RegionSettings
from virnucpro.outputs.results import CALLS, ChunkResult, FrameScore, SequenceResult
from virnucpro.outputs.writer import ResultWriter
from virnucpro.pipeline.blocks import BlockSettings, WorkBlock, iter_blocks
from virnucpro.pipeline.cpu_warning import warn_if_slow_on_cpu
from virnucpro.pipeline.embeddings import EmbeddingWriter
from virnucpro.pipeline.fetch import fetch_missing_models
from virnucpro.pipeline.journal import Journal, input_identity
from virnucpro.pipeline.output_state import OutputState
from virnucpro.pipeline.progress import RunProgress
from virnucpro.pipeline.setup import (
    LoadedModels,
    ModelChoice,
    load_models,
    prepare_workers,
    resolve_batch_tokens,
    resolve_devices,
    resolve_precision,
    set_threads,
)
from virnucpro.pipeline.shards import ShardLog, shared_parameters
from virnucpro.pipeline.stream import StreamEngine


@dataclass
class RunOptions:
    inputs: list[str]
    output: Path  # predict: the output directory; embed: the parquet file
    models: ModelChoice
    chunk_size: int | None = None
    chunking: str = "even"
    device: str = "auto"
    batch_tokens: int | None = None
    precision: str | None = None
    threads: int | None = None
    threshold: float = 0.5
    resume: bool = False
    force: bool = False
    save_embeddings: bool = False
    write_hits: bool = False
    live_progress: bool = False
    embed_only: bool = False
    block_records: int = 16_384  # records per block: the unit of batching, checkpointing and resume
    gpus: str | None = None  # all | N | 0,2
    workers: int = 1  # CPU workers (with --device cpu)
    shard: tuple[int, int] | None = None  # (k, n): only blocks k-1 mod n
    engine: str = "local"  # local: this host's devices; ray: actors on a Ray cluster
    ray_address: str | None = None  # None: start a local Ray instance
    regions: RegionSettings = field(default_factory=RegionSettings)  # viral-region scan (outputs/regions.py)
    viral_fraction: float = 0.5  # viral chunks / scored chunks that call a sequence virus
    min_length: int = 0  # shorter sequences are called too_short, not scored
    offline: bool = False  # never download missing published models (see pipeline/fetch.py)


@dataclass
class RunTotals:
    records: int = 0
    chunks: int = 0
    frames: int = 0
    unique_frames: int = 0
    esm_tokens: int = 0
    dnabert_tokens: int = 0
    oom_splits: int = 0
    gpu_utilization: dict[str, float] | None = None  # NVML, per GPU
    stream_peak_rss_mib: float | None = None  # host memory while the stream ran (models loaded)
    stream_rss_timeline: list[tuple[float, float, float]] = field(default_factory=list)  # every 5 s
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    host_stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    calls: dict[str, int] = field(default_factory=dict)  # sequences per call, over the whole run
    regions: int = 0  # viral regions found, over the whole run

    def add(self, output: BlockOutput) -> None:
        block = output.block
        self.records += block.records_completed
        self.chunks += len(block.table.chunk_ids)
        self.frames += block.num_frames
        self.unique_frames += block.num_unique
        self.esm_tokens += block.esm_tokens
        self.dnabert_tokens += block.dnabert_tokens
        self.oom_splits += output.splits
        for stage, seconds in output.stage_seconds().items():
            self.stage_seconds[stage] += seconds
        for stage, seconds in output.host_stage_seconds().items():
            self.host_stage_seconds[stage] += seconds


def run(options: RunOptions, logger: logging.Logger) -> dict:
    """Run predict (or embed) to the end and return the run summary written to run.json."""
    wall_start = time.perf_counter()
    if options.engine != "ray":
        return _run(options, logger, wall_start, cluster=None)
    # Ray is an optional dependency, imported only for this engine
    from virnucpro.engine.ray_workers import ray_session

    with ray_session(options.ray_address, logger) as cluster:
        return _run(options, logger, wall_start, cluster)


def _run(options: RunOptions, logger: logging.Logger, wall_start: float, cluster) -> dict:
    threads = set_threads(options.threads)
    if cluster is None:
        devices = resolve_devices(options.device, options.gpus, options.workers)
    else:
        devices = cluster.devices(options.device, options.gpus, options.workers)
    device = devices[0]
    dtype = resolve_precision(options.precision, device)
    reader = read_records(options.inputs)
    if reader.streams and options.resume:
        raise ResumeError(f"{display_name(reader.streams[0])} is a stream (stdin, a pipe or a FIFO), read only once:"
                          " it cannot be resumed; give a regular file, or rerun with --force")
    reader.check_first_records()  # a wrong file fails before the models load
    fetch_missing_models(options.models, options.offline, options.live_progress, logger)  # before any write
    state = OutputState(options)
    with state.lock:  # from before the first write to the end: one run per output
        return _locked_run(options, state, reader, devices, dtype, logger, cluster, threads, wall_start)


def _locked_run(options: RunOptions, state: OutputState, reader, devices: list[torch.device], dtype: torch.dtype,
                logger: logging.Logger, cluster, threads: int, wall_start: float) -> dict:
    device = devices[0]
    previous = state.previous_journal()
    reader.spool_dir = state.state_dir  # long FASTA records spool there (io/long_records.py)
    options, settings, models, workers, device_names = load_workers(options, devices, dtype, logger, cluster)
    parameters = _parameters(options, settings, models, dtype, device)
    journal = _journal(previous, input_identity(options.inputs), parameters, options)
    stream_start = time.perf_counter()
    totals = _stream(options, state, journal, reader, settings, models, workers, logger)
    summary = _summary(options, parameters, models, totals, reader, threads, device_names,
                       wall_start, stream_start)
    if journal.shard_log is not None:  # what merge needs, with the finished files' checksums
        finished = dict(journal.shard_log, records_total=reader.stats.records, sha256=journal.digests)
        ShardLog(**finished).save(options.output)
    state.done()
    return summary


def load_workers(options: RunOptions, devices: list[torch.device], dtype: torch.dtype,
                 logger: logging.Logger, cluster):
    """Models on every worker (threads here, or Ray actors), compiled and warmed up before the
    stream starts; returns the options (token budget resolved), block settings, models, workers
    and the devices' names."""
    if cluster is not None:
        models = cluster.load_models(options.models, devices, dtype, options.batch_tokens)
        options = replace(options, batch_tokens=models.batch_tokens)  # sized on the actors' devices
        return options, block_settings(options, devices[0]), models, models.workers, models.device_names
    settings = block_settings(options, devices[0])
    models = load_models(options.models, devices, dtype, logger)
    warn_if_slow_on_cpu(options.device, devices[0], models.workers[0].esm, options.inputs, torch.get_num_threads(),
                        logger)
    warm_start = time.perf_counter()
    prepare_workers(models.workers, settings.esm_batch_tokens)
    models.load_seconds += time.perf_counter() - warm_start
    names = [str(d) if d.type == "cpu" else f"{d}: {torch.cuda.get_device_name(d)}" for d in devices]
    return options, settings, models, [DeviceWorker(encoders) for encoders in models.workers], names


def block_settings(options: RunOptions, device: torch.device) -> BlockSettings:
    tokens = resolve_batch_tokens(options.batch_tokens, device)
    return BlockSettings(
        chunk_size=options.chunk_size or options.models.model_type, chunking=options.chunking,
        esm_batch_tokens=tokens, dnabert_batch_tokens=tokens, block_records=options.block_records,
        keep_sequences=options.write_hits,
    )


def _parameters(options: RunOptions, settings: BlockSettings, models: LoadedModels, dtype: torch.dtype,
                device: torch.device) -> dict:
    """Everything that decides the result bytes (the resume fingerprint covers exactly this)."""
    stamps = hash_stamps()
    model_files = {kind: _file_identity(path, stamps) for kind, path in models.paths.items()}
    return {
        "version": __version__, "chunk_size": settings.chunk_size, "chunking": settings.chunking,
        "esm_batch_tokens": settings.esm_batch_tokens, "dnabert_batch_tokens": settings.dnabert_batch_tokens,
        "block_records": settings.block_records, "block_bases": settings.block_bases,
        "long_record_bases": settings.long_record_bases,
        "precision": str(dtype).removeprefix("torch."), "device_type": device.type, "shard": options.shard,
        "threshold": options.threshold, "write_hits": options.write_hits, "regions": asdict(options.regions),
        "viral_fraction": options.viral_fraction, "min_length": options.min_length,
        "save_embeddings": options.save_embeddings, "embed_only": options.embed_only, "models": model_files,
    }


def _file_identity(path: Path, stamps) -> dict:
    """Size and sha256 of every model file (hashed once per file version, then remembered)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {"path": str(path.resolve()),
            "files": {str(p.relative_to(path)) if path.is_dir() else p.name:
                      {"size": p.stat().st_size, "sha256": stamps.sha256(p)} for p in files}}


def _journal(previous: Journal | None, inputs: list[dict], parameters: dict, options: RunOptions) -> Journal:
    """The journal to continue (refused, naming what changed, if this is not the same run) or a new one."""
    if previous is not None:
        previous.check_same_run(inputs, parameters, options.output)
        return previous
    journal = Journal.start(inputs, parameters)
    if options.shard and not options.embed_only:  # merge joins predict's result files
        journal.shard_log = ShardLog(journal.inputs, shared_parameters(journal.parameters), *options.shard).to_json()
    return journal


def _stream(options: RunOptions, state: OutputState, journal: Journal, reader, settings: BlockSettings,
            models: LoadedModels, workers: list, logger: logging.Logger) -> RunTotals:
    """The main loop: results of each block, in order, into the writers; a checkpoint per block."""
    results, embeddings = _writers(options, state, journal, models)
    records = itertools.islice(reader, journal.records_done, None)
    blocks = iter_blocks(records, settings, models.tokenizer, first_index=journal.blocks_done, shard=options.shard)
    want_features = embeddings is not None
    engine = StreamEngine(blocks, workers, lambda w, block: w.run_block(block, want_features))
    progress = RunProgress(logger, reader, options.live_progress, records_before=journal.records_done)
    totals = RunTotals()
    if journal.blocks_done:
        logger.info("resuming after %d blocks (%d records)", journal.blocks_done, journal.records_done)
    try:
        if results is not None and not journal.blocks_done and journal.shard_log is not None:
            journal.shard_log["start_offsets"] = results.checkpoint()
            journal.digests = results.digests()
        with StreamMonitor([w.device for w in workers]) as monitor:
            for output in engine.results():
                output.wait()
                _write_block(output, results, embeddings)
                totals.add(output)
                if output.block.records_completed:  # not inside a long record: see blocks.py
                    _checkpoint(journal, output.block, results, embeddings, state)
                progress.advance(output.block.records_completed, output.block.num_frames, output.block.esm_tokens)
        totals.gpu_utilization = monitor.busy_fractions()
        totals.stream_peak_rss_mib = monitor.rss_peak_bytes / 2**20
        totals.stream_rss_timeline = monitor.rss_timeline
    except BaseException:
        engine.stop()  # its threads stopped and joined before the files close and the error goes up
        if results is not None:
            results.close()
        if not state.journal_path.exists():  # nothing checkpointed: leave no half-made output behind
            state.discard()
        raise
    finally:
        progress.close()
    if results is not None:
        results.finish()
        totals.calls, totals.regions = {call: results.calls[call] for call in CALLS}, results.regions_found
        journal.digests = results.digests()  # of the finished files (a shard records them for merge)
    if embeddings is not None:
        embeddings.finish()
    return totals


def _writers(options: RunOptions, state: OutputState, journal: Journal, models: LoadedModels):
    results = None
    if not options.embed_only:
        if journal.blocks_done:
            results = ResultWriter.reopen(options.output, journal.offsets, options.threshold, options.write_hits,
                                          digests=journal.digests, **_call_rules(options))
            _check_rows(results, journal)
        else:
            results = ResultWriter(options.output, options.threshold, options.write_hits, **_call_rules(options))
    embeddings = None
    if options.embed_only or options.save_embeddings:
        path = options.output if options.embed_only else OutputPaths(options.output).embeddings
        embeddings = EmbeddingWriter(path, models.dnabert_dim, journal.blocks_done)
    return results, embeddings


def _call_rules(options: RunOptions) -> dict:
    return {"regions": options.regions, "viral_fraction": options.viral_fraction, "min_length": options.min_length}


def _check_rows(results: ResultWriter, journal: Journal) -> None:
    """The verified partial files must hold exactly the records the journal says are done."""
    rows = results.calls.total()
    if rows != journal.rows_written():
        results.close()
        raise ResumeError(f"cannot resume: the journal counts {journal.rows_written()} finished records but"
                          f" sequences.tsv.partial holds {rows}; use --force to start over")


def _write_block(output: BlockOutput, results: ResultWriter | None, embeddings: EmbeddingWriter | None) -> None:
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
    frame_bounds = np.searchsorted(table.frame_chunks, np.arange(len(table.chunk_ids) + 1)).tolist()
    chunks = list(map(ChunkResult, table.chunk_ids, table.starts.tolist(), table.ends.tolist(),
                      [scores[a:b] for a, b in itertools.pairwise(frame_bounds)]))
    chunk_bounds = np.cumsum([0, *table.chunk_counts]).tolist()
    return [SequenceResult(info.id, info.length, chunks[a:b], info.sequence, info.description)
            for info, (a, b) in zip(block.records, itertools.pairwise(chunk_bounds))]


def _checkpoint(journal: Journal, block: WorkBlock, results: ResultWriter | None,
                embeddings: EmbeddingWriter | None, state: OutputState) -> None:
    journal.blocks_done = block.index + 1
    journal.records_done = block.first_record + block.records_completed
    journal.offsets = results.checkpoint() if results is not None else {}
    journal.digests = results.digests() if results is not None else {}
    if journal.shard_log is not None:
        journal.shard_log["blocks"].append({"index": block.index, "first_record": block.first_record,
                                            "records": len(block.records), "ends": journal.offsets})
    journal.save(state.journal_path)


def _summary(options: RunOptions, parameters: dict, models: LoadedModels, totals: RunTotals, reader,
             threads: int, device_names: list[str], wall_start: float, stream_start: float) -> dict:
    """run.json: versions, models, parameters, counts, per-stage timings and GPU busy fraction."""
    now = time.perf_counter()
    stream_seconds = now - stream_start
    device_seconds = sum(totals.stage_seconds.values())
    finished = datetime.now(timezone.utc)
    summary = {
        "virnucpro_version": __version__,
        "started_at": (finished - timedelta(seconds=now - wall_start)).isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "command_line": list(sys.argv),
        "torch_version": torch.__version__,
        "command": "embed" if options.embed_only else "predict",
        "inputs": list(options.inputs),
        "engine": options.engine,
        "devices": device_names,
        "threads": threads,
        "models": parameters["models"],
        "parameters": {k: v for k, v in parameters.items() if k != "models"},
        "counts": {"records": reader.stats.records, "empty_records": reader.stats.empty,
                   "bases": reader.stats.bases, "records_this_session": totals.records,
                   "chunks_this_session": totals.chunks, "frames_this_session": totals.frames,
                   "unique_frames_this_session": totals.unique_frames, "esm_tokens_this_session": totals.esm_tokens,
                   "dnabert_tokens_this_session": totals.dnabert_tokens, "oom_splits": totals.oom_splits,
                   "calls": totals.calls, "regions": totals.regions},
        "timings_seconds": {"model_load": models.load_seconds, "stream": stream_seconds,
                            "total": now - wall_start,
                            **{f"device_{stage}": s for stage, s in totals.stage_seconds.items()},
                            **{f"host_issue_{stage}": s for stage, s in totals.host_stage_seconds.items()}},
        "throughput": {"records_per_second": totals.records / max(stream_seconds, 1e-9),
                       "frames_per_second": totals.frames / max(stream_seconds, 1e-9),
                       "esm_tokens_per_second": totals.esm_tokens / max(stream_seconds, 1e-9)},
        # NVML utilization when available (GPUs); else device time inside stages over wall time.
        "device_busy_fraction": (sum(totals.gpu_utilization.values()) / len(totals.gpu_utilization)
                                 if totals.gpu_utilization else device_seconds / max(stream_seconds, 1e-9) / len(device_names)),
        "gpu_utilization": totals.gpu_utilization,
        "stage_busy_fraction": device_seconds / max(stream_seconds, 1e-9) / len(device_names),
        "stream_peak_rss_mib": totals.stream_peak_rss_mib,
        "stream_rss_mib_timeline": [{"seconds": seconds, "rss_mib": rss, "shared_mib": shared}
                                    for seconds, rss, shared in totals.stream_rss_timeline],
    }
    if not options.embed_only:
        write_json_atomic(OutputPaths(options.output).run_json, summary)
    return summary
