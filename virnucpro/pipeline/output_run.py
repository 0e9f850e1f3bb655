"""One output directory's share of a stream: its writers, a journal checkpoint per block, its
totals, and its end (files renamed, run.json, shard log, state removed).

`predict` streams one input into one output; a study (pipeline/study.py) streams many samples
through one engine and switches from one OutputRun to the next at a sample boundary. Both go
through this class, so a sample's files are exactly those a single run of it writes.
"""

from __future__ import annotations

import logging

from virnucpro.engine.backend import LoadedWorkers
from virnucpro.engine.worker import BlockOutput
from virnucpro.outputs.results import CALLS
from virnucpro.pipeline.assembly import open_writers, write_block
from virnucpro.pipeline.journal import Journal
from virnucpro.pipeline.options import RunOptions
from virnucpro.pipeline.output_state import OutputState
from virnucpro.pipeline.progress import RunProgress
from virnucpro.pipeline.run_state import checkpoint, finish_shard, mark_shard_start
from virnucpro.pipeline.run_summary import RunTotals, write_summary


class OutputRun:
    """Writes the blocks of one input into one output; call `start`, `write` per block, then
    `finish` and `complete` (or `abort` on any error)."""

    def __init__(self, options: RunOptions, state: OutputState, journal: Journal, reader, loaded: LoadedWorkers,
                 logger: logging.Logger, progress: RunProgress) -> None:
        """`progress`: the bar, owned (and closed) by the caller: predict's run, or the study's one
        bar over all its samples."""
        self.options, self.state, self.journal, self.reader = options, state, journal, reader
        self.results, self.embeddings = open_writers(options, journal, loaded.dnabert_dim)
        self.totals = RunTotals(records_resumed=journal.records_done)
        self.progress = progress
        if journal.blocks_done:
            logger.info("resuming %s after %d blocks (%d records)", options.output, journal.blocks_done,
                        journal.records_done)

    def start(self) -> None:
        mark_shard_start(self.journal, self.results)

    def write(self, output: BlockOutput) -> None:
        """One block's results into the files, then (at a record boundary) the checkpoint."""
        output.wait()
        write_block(output, self.results, self.embeddings)
        self.totals.add(output)
        block = output.block
        if block.records_completed:  # not inside a long record: see blocks.py
            checkpoint(self.journal, block, self.results, self.embeddings, self.state.journal_path)
        self.progress.block_written(block)

    def abort(self) -> None:
        """After an error or an interrupt: files closed; nothing checkpointed leaves nothing behind."""
        if self.results is not None:
            self.results.close()
        if not self.state.journal_path.exists():
            self.state.discard()

    def finish(self) -> RunTotals:
        """Every block written: rename the files and count the calls."""
        results = self.results
        if results is not None:
            results.finish()
            self.totals.calls = {call: results.calls[call] for call in CALLS}
            self.totals.regions = results.regions_found
            self.journal.digests = results.digests()  # of the finished files (a shard records them for merge)
        if self.embeddings is not None:
            self.embeddings.finish()
        return self.totals

    def complete(self, parameters: dict, load_seconds: float, threads: int, device_names: list[str],
                 wall_start: float, stream_start: float, load_phases: dict | None = None) -> dict:
        """run.json, the shard log, the state removed: the output is finished. Returns run.json."""
        summary = write_summary(self.options, parameters, load_seconds, self.totals, self.reader, threads,
                                device_names, wall_start, stream_start, load_phases,
                                input_files=self.journal.inputs)
        finish_shard(self.journal, self.reader.stats.records, self.options.output)
        self.state.done()
        return summary
