"""`predict --samples SHEET -o OUTDIR`: a study of many samples in one run.

The models load once. ONE stream runs through the engine for the whole study: the producer thread
opens each sample in turn and yields its blocks (numbered from 0, as in a single run), each tagged
with its sample; so the next sample's blocks are built and queued while the previous sample's
last blocks run, and the devices never wait at a sample boundary. The main thread receives them in
order and, when a block of the next sample arrives, finishes the previous sample's files and
opens the next one's writers (pipeline/output_run.py): OUTDIR/SAMPLE/ gets exactly the files
`predict R1 -o OUTDIR/SAMPLE` writes, and the study journal (pipeline/study_state.py) records the
sample as done. At the end, samples.tsv and
study.json. `--shard K/N` takes the samples K-1 mod N (samples are the unit: see run_study).
One progress bar covers the study (pipeline/study_progress.py). A resume with no sample left to
run loads no model (pipeline/finished_run.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Iterator

import torch
from dataclasses import dataclass
from pathlib import Path

from virnucpro.engine.backend import LoadedWorkers, open_engine
from virnucpro.engine.devices import resolve_precision, set_threads
from virnucpro.engine.monitor import StreamMonitor
from virnucpro.engine.work import WorkBlock
from virnucpro.engine.worker import BlockOutput
from virnucpro.errors import FinishedRunError, ResumeError, VirnucproError
from virnucpro.io.samplesheet import Sample, read_sample_sheet
from virnucpro.outputs.paths import OutputPaths, StudyPaths
from virnucpro.outputs.rundir_lock import RunDirLock
from virnucpro.outputs.samples_table import sample_row
from virnucpro.pipeline.blocks import BlockSettings, iter_blocks
from virnucpro.pipeline.fetch import fetch_missing_models
from virnucpro.pipeline.finished_run import check_finished_run, check_finished_study
from virnucpro.pipeline.journal import Journal
from virnucpro.pipeline.options import RunOptions
from virnucpro.pipeline.output_run import OutputRun
from virnucpro.pipeline.output_state import OutputState
from virnucpro.pipeline.predict import load_workers, open_checked_reader, open_reader, want_features
from virnucpro.pipeline.progress import RunProgress
from virnucpro.pipeline.run_state import fingerprint, open_journal
from virnucpro.pipeline.stream import StreamEngine
from virnucpro.pipeline.study_progress import StudyReading
from virnucpro.pipeline.study_state import StudyJournal, StudyState
from virnucpro.pipeline.study_summary import StudyTotals, write_study_files


@dataclass
class OpenSample:
    """A sample the producer has opened: its options, output state (locked), journal and reader."""

    sample: Sample
    options: RunOptions
    settings: BlockSettings  # a paired sample's blocks never split a pair
    parameters: dict  # its run's fingerprint (a paired sample's has `pairs`)
    state: OutputState
    journal: Journal
    reader: object


@dataclass
class StudyItem:
    """What flows through the stream: a block tagged with its sample, or (for a sample with no
    block: an empty file) the sample alone, so the main thread still writes its files."""

    sample: OpenSample
    block: WorkBlock | None = None
    output: BlockOutput | None = None  # once a worker ran the block


def sample_options(options: RunOptions, outdir: Path, sample: Sample, resume: bool) -> RunOptions:
    """The RunOptions of one sample: what `predict R1 [R2 --paired] -o OUTDIR/SAMPLE` would be given."""
    own = {"output": StudyPaths(outdir).sample_dir(sample.name), "shard": None, "resume": resume, "force": False,
           "interleaved": False}
    if not sample.paired:
        return dataclasses.replace(options, inputs=[str(sample.r1)], paired=False, **own)
    return dataclasses.replace(options, inputs=[str(sample.r1), str(sample.r2)], paired=True, **own)


def run_study(options: RunOptions, sheet: Path, logger: logging.Logger) -> dict | None:
    """Run every sample of the sheet (with --shard K/N, samples K-1 mod N: samples are the unit, so
    each sample's files are those of a plain single run and merge only gathers sample
    directories; block-level shards would put every small sample's one block in shard 1). Returns
    study.json, or None when --resume found nothing left to run (checked, no model loaded)."""
    wall_start = time.perf_counter()
    outdir = Path(options.output)
    samples = read_sample_sheet(sheet, reserved=StudyPaths.reserved_names())
    with open_engine(options.engine, options.ray_address, logger) as engine:
        threads = set_threads(options.threads)
        devices = engine.devices(options.device, options.gpus, options.workers)
        dtype = resolve_precision(options.precision, devices[0])
        state = StudyState(outdir, sheet, samples, options.shard, options.resume, options.force)
        fetch_missing_models(options.models, options.offline, options.live_progress, logger)
        with state.lock:
            ours = [s for i, s in enumerate(samples.values()) if _in_shard(i, options.shard)]
            _check_inputs(options, outdir, samples, ours)  # before --force removes anything
            try:
                journal = state.open()
            except FinishedRunError:
                line = check_finished_study(state)  # nothing to run: no model loads
                for sample in ours:  # each sample's run: the same inputs, parameters and models
                    check_finished_run(sample_options(options, outdir, sample, True), dtype, devices[0])
                logger.info("%s", line)
                return None
            pending = [s for s in ours if s.name not in journal.done]
            if not pending and journal.parameters is not None:  # stopped after its last sample
                return _finish_without_models(state, journal, wall_start, logger)
            state.refuse_foreign([s.name for s in pending if s.name not in journal.started])
            every_file = [str(path) for s in pending for path in (s.r1, s.r2) if path is not None]
            finished = {name: int(done["row"]["records"]) if done["row"]["records"].isdigit() else 0
                        for name, done in journal.done.items()}  # for the bar only: a bad count is no error
            with RunProgress(logger, StudyReading(ours, finished), options.live_progress) as progress:
                loaded, settings = load_workers(dataclasses.replace(options, inputs=every_file), engine, devices,
                                                dtype, logger)  # the CPU warning weighs the whole study
                # the study's settings: those of its samples (unsharded: the study shards by sample)
                unsharded = dataclasses.replace(options, shard=None)
                parameters = fingerprint(unsharded, settings, loaded.paths, dtype, devices[0])
                _check_parameters(journal, parameters, outdir)
                journal.save(state.paths.journal)
                logger.info("study: %d samples (%d to run, %d already done)", len(samples), len(pending),
                            len(journal.done))
                progress.start_stream(sum(finished.values()), loaded.workers)
                study = _Stream(options, state, journal, loaded, (dtype, devices[0]), threads, logger, progress)
                totals = study.run(pending)
            totals.model_load_seconds = loaded.load_seconds
            summary = write_study_files(state, journal, totals, loaded.device_names, wall_start)
            state.paths.journal.unlink()
            return summary


def _finish_without_models(state: StudyState, journal: StudyJournal, wall_start: float,
                           logger: logging.Logger) -> None:
    """Every sample done (verified by the resume), only the study files missing: no model load for that."""
    write_study_files(state, journal, StudyTotals(), [], wall_start)
    state.paths.journal.unlink()
    logger.info("the study in %s was already complete (%d samples): wrote samples.tsv and study.json without"
                " loading the models", state.paths.outdir, len(journal.done))


class _Stream:
    """The study's one stream: samples opened by the producer, written by the main thread."""

    def __init__(self, options: RunOptions, state: StudyState, journal: StudyJournal, loaded: LoadedWorkers,
                 precision: tuple[torch.dtype, torch.device], threads: int, logger: logging.Logger,
                 progress: RunProgress) -> None:
        self.options, self.state, self.journal, self.loaded = options, state, journal, loaded
        self.precision, self.threads, self.logger = precision, threads, logger
        self.progress = progress  # the study's one bar: its reader is the study's inputs (StudyReading)
        self.locks: list[RunDirLock] = []  # of the samples opened: released whatever happens

    def run(self, pending: list[Sample]) -> StudyTotals:
        self.total = len(self.journal.done) + len(pending)  # the samples this run (shard) covers
        features = want_features(self.options)
        engine = StreamEngine(self._items(pending), self.loaded.workers,
                              lambda w, item: item if item.block is None else
                              dataclasses.replace(item, output=w.run_block(item.block, features)))
        totals = StudyTotals()
        current: tuple[OpenSample, OutputRun] | None = None
        stream_start = since = last = time.perf_counter()
        try:
            with StreamMonitor(self.loaded.watched_devices) as monitor:
                for item in engine.results():
                    if current is None or item.sample is not current[0]:  # a sample boundary
                        if current is not None:
                            self._end(*current, last - since)
                            since = last
                        current = (item.sample, self._begin(item.sample))
                    if item.output is not None:
                        current[1].write(item.output)
                        last = time.perf_counter()
                if current is not None:
                    self._end(*current, last - since)
            totals.add_monitor(monitor, time.perf_counter() - stream_start)
        except BaseException:
            engine.stop()
            if current is not None:
                current[1].abort()
            raise
        finally:
            for lock in self.locks:
                lock.release()
        return totals

    def _items(self, pending: list[Sample]) -> Iterator[StudyItem]:
        """The producer's side: each sample opened in turn, then its blocks (no marker items: they
        would take queue places from blocks at every boundary)."""
        for sample in pending:
            opened = self._open(sample)
            records = itertools.islice(opened.reader, opened.journal.records_done, None)
            blocks = 0
            for blocks, block in enumerate(iter_blocks(records, opened.settings, self.loaded.tokenizer,
                                                       first_index=opened.journal.blocks_done), start=1):
                yield StudyItem(opened, block)
            if not blocks:
                yield StudyItem(opened)

    def _open(self, sample: Sample) -> OpenSample:
        options = sample_options(self.options, self.state.paths.outdir, sample, sample.name in self.journal.started)
        settings = options.block_settings(self.loaded.batch_tokens)
        parameters = fingerprint(options, settings, self.loaded.paths, *self.precision)
        state = OutputState(options)
        state.lock.acquire()
        self.locks.append(state.lock)
        journal = open_journal(state.previous_journal(), options, parameters)
        reader = open_reader(options)
        reader.spool_dir = state.state_dir  # long FASTA records spool there (io/long_records.py)
        self.progress.reader.opened(reader)
        return OpenSample(sample, options, settings, parameters, state, journal, reader)

    def _begin(self, opened: OpenSample) -> OutputRun:
        if opened.sample.name not in self.journal.started:
            self.journal.started.append(opened.sample.name)
            self.journal.save(self.state.paths.journal)
        output = OutputRun(opened.options, opened.state, opened.journal, opened.reader, self.loaded, self.logger,
                           self.progress)
        self.progress.add_resumed(opened.journal.records_done)
        self.progress.set_stage(f"sample {opened.sample.name}, {len(self.journal.done)}/{self.total} samples done")
        output.start()
        return output

    def _end(self, opened: OpenSample, output: OutputRun, streamed: float) -> None:
        """The sample's files finished and recorded in the study journal (then it is skipped on resume).
        Its seconds: the stream's time from the previous sample's last block to its own last block,
        plus finishing its files. Its run.json has no model load (study.json has the study's one)."""
        finishing = time.perf_counter()
        totals = output.finish()
        summary = output.complete(opened.parameters, 0.0, self.threads, self.loaded.device_names, finishing - streamed,
                                  finishing - streamed)
        opened.state.lock.release()
        sample = opened.sample
        files = self.state.finished_files(sample.name, output.journal.digests)
        row = sample_row(sample.name, str(sample.r1), str(sample.r2) if sample.r2 else None,
                         opened.reader.stats.records, summary["counts"].get("pairs"), totals.calls, totals.regions,
                         streamed + time.perf_counter() - finishing)
        self.journal.done[sample.name] = {"row": row, "files": files}
        self.journal.save(self.state.paths.journal)
        self.progress.set_stage(f"sample {sample.name}, {len(self.journal.done)}/{self.total} samples done")
        self.logger.info("sample %s done (%d of %d): %s sequences, %s virus (viral fraction %s) in %s s", sample.name,
                         len(self.journal.done), self.total, row["records"], row["virus"],
                         row["viral_fraction"], row["seconds"])


def _in_shard(index: int, shard: tuple[int, int] | None) -> bool:
    return shard is None or index % shard[1] == shard[0] - 1


def _check_parameters(journal: StudyJournal, parameters: dict, outdir: Path) -> None:
    """Every sample of a study runs with the same models and settings: a resume may not change them."""
    if journal.parameters is None:
        journal.parameters = parameters
        return
    changed = sorted(k for k in set(journal.parameters) | set(parameters)
                     if journal.parameters.get(k) != parameters.get(k))
    if changed:
        raise ResumeError(f"cannot resume the study in {outdir}: {', '.join(changed)} changed since it started;"
                          " rerun with its settings, or use --force to start over")


def _check_inputs(options: RunOptions, outdir: Path, samples: dict[str, Sample], ours: list[Sample]) -> None:
    """A wrong read file fails before anything is removed or the models load."""
    for sample in ours:
        open_checked_reader(sample_options(options, outdir, sample, resume=False)).close()
    _refuse_inputs_inside(samples, outdir)


def _refuse_inputs_inside(samples: dict[str, Sample], outdir: Path) -> None:
    """No read file may be a file the study writes or removes (a sample's result file, a study file)."""
    paths = StudyPaths(outdir)
    owned = {path.resolve() for path in paths.owned_files()}
    owned_dirs = []
    for name in samples:
        sample = OutputPaths(paths.sample_dir(name))
        owned |= {path.resolve() for path in sample.owned_files()}
        owned_dirs += [directory.resolve() for directory in sample.owned_dirs()]
    for sample in samples.values():
        for read_file in filter(None, (sample.r1, sample.r2)):
            real = read_file.resolve()
            if real in owned or any(directory in real.parents for directory in owned_dirs):
                raise VirnucproError(f"sample sheet line {sample.line}: {read_file} is a file the study in {outdir}"
                                     " writes or removes: move it or choose another output directory")
