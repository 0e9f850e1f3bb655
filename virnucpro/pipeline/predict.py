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
from virnucpro.errors import FinishedRunError, ResumeError
from virnucpro.io import open_input
from virnucpro.io.sources import display_name
from virnucpro.pipeline.blocks import BlockSettings, iter_blocks
from virnucpro.pipeline.cpu_warning import warn_if_slow_on_cpu
from virnucpro.pipeline.fetch import fetch_missing_models
from virnucpro.pipeline.finished_run import check_finished_run
from virnucpro.pipeline.journal import Journal
from virnucpro.pipeline.options import RunOptions
from virnucpro.pipeline.output_state import OutputState
from virnucpro.pipeline.output_run import OutputRun
from virnucpro.pipeline.progress import RunProgress
from virnucpro.pipeline.run_state import fingerprint, open_journal
from virnucpro.pipeline.stream import StreamEngine

def run(options: RunOptions, logger: logging.Logger) -> dict | None:
    """Run predict (or embed) to the end and return the run summary written to run.json; None when
    --resume found the run already finished (checked, nothing run)."""
    wall_start = time.perf_counter()
    with open_engine(options.engine, options.ray_address, logger) as engine:
        threads = set_threads(options.threads)
        devices = engine.devices(options.device, options.gpus, options.workers)
        dtype = resolve_precision(options.precision, devices[0])
        reader = open_checked_reader(options)  # a wrong file fails before the models load
        fetch_missing_models(options.models, options.offline, options.live_progress, logger)  # before any write
        state = OutputState(options)
        with state.lock:  # one run per output
            try:
                previous = state.previous_journal()
            except FinishedRunError:
                if options.embed_only:
                    raise
                logger.info("%s", check_finished_run(options, dtype, devices[0]))  # nothing to run: no model loads
                return None
            with RunProgress(logger, reader, options.live_progress) as progress:
                reader.spool_dir = state.state_dir  # long FASTA records spool there (io/long_records.py)
                loaded, settings = load_workers(options, engine, devices, dtype, logger)
                parameters = fingerprint(options, settings, loaded.paths, dtype, devices[0])
                journal = open_journal(previous, options, parameters)
                stream_start = time.perf_counter()
                progress.start_stream(journal.records_done, loaded.workers)
                output = _stream(options, state, journal, reader, settings, loaded, logger, progress)
                return output.complete(parameters, loaded.load_seconds, threads, loaded.device_names, wall_start,
                                       stream_start, loaded.load_phases)


def open_reader(options: RunOptions):
    """The records of a run's input (the one place an input is opened: predict and a study's samples)."""
    return open_input(options.inputs, paired=options.paired, interleaved=options.interleaved)


def open_checked_reader(options: RunOptions):
    """The input's reader, its first records parsed (a wrong file fails before the models load)."""
    reader = open_reader(options)
    if reader.streams and options.resume:
        raise ResumeError(f"{display_name(reader.streams[0])} is a stream (stdin, a pipe or a FIFO), read only"
                          " once: it cannot be resumed; give a regular file, or rerun with --force")
    reader.check_first_records()
    return reader


def load_workers(options: RunOptions, engine: Engine, devices: list[torch.device], dtype: torch.dtype,
                 logger: logging.Logger) -> tuple[LoadedWorkers, BlockSettings]:
    """Models on every worker, warmed up before the stream starts, and the block settings that
    fit the workers' devices."""
    loaded = engine.load(options.models, devices, dtype, options.batch_tokens)
    warn_if_slow_on_cpu(options.device, devices[0], loaded.esm_parameters, options.inputs,
                        torch.get_num_threads(), logger)
    return loaded, options.block_settings(loaded.batch_tokens)


def want_features(options: RunOptions) -> bool:
    """Whether the workers return the per-frame features (embed, or predict --save-embeddings)."""
    return options.embed_only or options.save_embeddings


def _stream(options: RunOptions, state: OutputState, journal: Journal, reader, settings: BlockSettings,
            loaded: LoadedWorkers, logger: logging.Logger, progress: RunProgress) -> OutputRun:
    """The main loop: results of each block, in order, into the writers; a checkpoint per block."""
    output = OutputRun(options, state, journal, reader, loaded, logger, progress)
    records = itertools.islice(reader, journal.records_done, None)
    blocks = iter_blocks(records, settings, loaded.tokenizer, first_index=journal.blocks_done, shard=options.shard)
    features = want_features(options)
    engine = StreamEngine(blocks, loaded.workers, lambda w, block: w.run_block(block, features))
    try:
        output.start()
        with StreamMonitor(loaded.watched_devices) as monitor:
            for block_output in engine.results():
                output.write(block_output)
        output.totals.add_monitor(monitor)
    except BaseException:
        engine.stop()  # its threads stopped and joined before the files close and the error goes up
        output.abort()
        raise
    output.finish()
    return output
