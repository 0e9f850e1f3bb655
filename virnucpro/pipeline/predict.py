"""`predict` and `embed`: one streaming run from reads to calls (or to per-frame embeddings).

init (threads, devices, precision) -> output state (fresh / resume / refuse) -> models on the
engine's workers -> stream: a producer thread builds blocks, the workers run them, this thread
writes results in input order and checkpoints the journal after every block -> finish (rename,
shard log, run.json). Each step lives in its own module; this one only puts them in order.
"""

from __future__ import annotations

import itertools
import logging
import time

import torch

from virnucpro.engine.backend import Engine, LoadedWorkers, open_engine
from virnucpro.engine.devices import resolve_precision, set_threads
from virnucpro.engine.monitor import StreamMonitor
from virnucpro.errors import ResumeError
from virnucpro.io import read_records
from virnucpro.io.sources import display_name
from virnucpro.outputs.results import CALLS
from virnucpro.pipeline.assembly import open_writers, write_block
from virnucpro.pipeline.blocks import BlockSettings, iter_blocks
from virnucpro.pipeline.cpu_warning import warn_if_slow_on_cpu
from virnucpro.pipeline.fetch import fetch_missing_models
from virnucpro.pipeline.journal import Journal
from virnucpro.pipeline.options import RunOptions
from virnucpro.pipeline.output_state import OutputState
from virnucpro.pipeline.progress import RunProgress
from virnucpro.pipeline.run_state import checkpoint, finish_shard, fingerprint, mark_shard_start, open_journal
from virnucpro.pipeline.run_summary import RunTotals, write_summary
from virnucpro.pipeline.stream import StreamEngine

def run(options: RunOptions, logger: logging.Logger) -> dict:
    """Run predict (or embed) to the end and return the run summary written to run.json."""
    wall_start = time.perf_counter()
    with open_engine(options.engine, options.ray_address, logger) as engine:
        threads = set_threads(options.threads)
        devices = engine.devices(options.device, options.gpus, options.workers)
        dtype = resolve_precision(options.precision, devices[0])
        reader = read_records(options.inputs)
        if reader.streams and options.resume:
            raise ResumeError(f"{display_name(reader.streams[0])} is a stream (stdin, a pipe or a FIFO), read only"
                              " once: it cannot be resumed; give a regular file, or rerun with --force")
        reader.check_first_records()  # a wrong file fails before the models load
        fetch_missing_models(options.models, options.offline, options.live_progress, logger)  # before any write
        state = OutputState(options)
        with state.lock, RunProgress(logger, reader, options.live_progress) as progress:  # one run per output
            previous = state.previous_journal()
            reader.spool_dir = state.state_dir  # long FASTA records spool there (io/long_records.py)
            loaded, settings = load_workers(options, engine, devices, dtype, logger)
            parameters = fingerprint(options, settings, loaded.paths, dtype, devices[0])
            journal = open_journal(previous, options, parameters)
            stream_start = time.perf_counter()
            progress.start_stream(journal.records_done, loaded.workers)
            totals = _stream(options, state, journal, reader, settings, loaded, logger, progress)
            summary = write_summary(options, parameters, loaded.load_seconds, totals, reader, threads,
                                    loaded.device_names, wall_start, stream_start, loaded.load_phases)
            finish_shard(journal, reader.stats.records, options.output)
            state.done()
            return summary


def load_workers(options: RunOptions, engine: Engine, devices: list[torch.device], dtype: torch.dtype,
                 logger: logging.Logger) -> tuple[LoadedWorkers, BlockSettings]:
    """Models on every worker, warmed up before the stream starts, and the block settings that
    fit the workers' devices."""
    loaded = engine.load(options.models, devices, dtype, options.batch_tokens)
    warn_if_slow_on_cpu(options.device, devices[0], loaded.esm_parameters, options.inputs,
                        torch.get_num_threads(), logger)
    return loaded, options.block_settings(loaded.batch_tokens)


def _stream(options: RunOptions, state: OutputState, journal: Journal, reader, settings: BlockSettings,
            loaded: LoadedWorkers, logger: logging.Logger, progress: RunProgress) -> RunTotals:
    """The main loop: results of each block, in order, into the writers; a checkpoint per block."""
    results, embeddings = open_writers(options, journal, loaded.dnabert_dim)
    records = itertools.islice(reader, journal.records_done, None)
    blocks = iter_blocks(records, settings, loaded.tokenizer, first_index=journal.blocks_done, shard=options.shard)
    want_features = embeddings is not None
    engine = StreamEngine(blocks, loaded.workers, lambda w, block: w.run_block(block, want_features))
    totals = RunTotals(records_resumed=journal.records_done)
    if journal.blocks_done:
        logger.info("resuming after %d blocks (%d records)", journal.blocks_done, journal.records_done)
    try:
        mark_shard_start(journal, results)
        with StreamMonitor(loaded.watched_devices) as monitor:
            for output in engine.results():
                output.wait()
                write_block(output, results, embeddings)
                totals.add(output)
                if output.block.records_completed:  # not inside a long record: see blocks.py
                    checkpoint(journal, output.block, results, embeddings, state.journal_path)
                progress.block_written(output.block)
        totals.add_monitor(monitor)
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
