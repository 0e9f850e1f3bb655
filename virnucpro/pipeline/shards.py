"""Job-array shards and `virnucpro merge`.

`--shard K/N` runs only the blocks whose index is K-1 modulo N. Block boundaries depend only on the
input and the block settings, so every shard cuts the input exactly as a single run would, and each
block's bytes in the result files are the same as in a single run. A shard records where each of its
blocks starts and ends in every result file, which records each block holds, and the sha256 of each
finished file (shard.json); merge copies those byte ranges back in block order, which gives files
identical to one unsharded run.

shard.json is untrusted: merge validates every field, takes only file names it builds itself
(OutputPaths), checks that the shards are the N shards of one run covering every record once, and
verifies each shard file against its recorded sha256 before any merged file becomes visible.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import BinaryIO

from virnucpro.errors import VirnucproError
from virnucpro.fsutil import untrusted
from virnucpro.fsutil.atomic import fsync_directory, write_json_atomic
from virnucpro.fsutil.safe_files import open_exclusive
from virnucpro.outputs.hits import result_counts, write_virus_summary
from virnucpro.outputs.paths import SHARD_FILE, OutputPaths
from virnucpro.pipeline.run_changes import describe_changes, summary

SHARD_VERSION = 2
_MAX_SHARDS = 1 << 20
_COPY_BYTES = 1 << 20


class MergeError(VirnucproError):
    """Shard directories that do not make up one complete run."""


@dataclass
class ShardLog:
    inputs: list  # input_identity() of the run
    parameters: dict  # the run's parameters without "shard": equal for all shards of a run
    shard: int
    of: int
    start_offsets: dict[str, int] = field(default_factory=dict)  # sizes right after the headers
    blocks: list[dict] = field(default_factory=list)  # {index, first_record, records, ends: {file: size}}
    records_total: int | None = None  # records in the whole input, set when the shard finishes
    sha256: dict[str, str] | None = None  # of each finished result file, set when the shard finishes
    version: int = SHARD_VERSION

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ShardLog:
        """A validated log (raises untrusted.Invalid naming the bad field)."""
        if data.get("version") != SHARD_VERSION:
            raise untrusted.Invalid("it was written by another virnucpro version")
        untrusted.fields(data, {f.name for f in fields(cls)}, "it")
        log = cls(**data)
        untrusted.of_type(log.inputs, list, "inputs")
        untrusted.of_type(log.parameters, dict, "parameters")
        untrusted.count(log.of, "of", minimum=1)
        if not 1 <= untrusted.count(log.shard, "shard", minimum=1) <= log.of or log.of > _MAX_SHARDS:
            raise untrusted.Invalid(f"shard {log.shard}/{log.of} is not a valid K/N")
        names = log.names()
        log.start_offsets = untrusted.sizes(log.start_offsets, "start_offsets", names)
        _check_blocks(log, names)
        if log.records_total is not None:
            untrusted.count(log.records_total, "records_total", minimum=log.records_done())
        if log.sha256 is not None:
            untrusted.digests(log.sha256, "sha256", names)
        return log

    def names(self) -> set[str]:
        """The result file names of this run (fixed by OutputPaths, never taken from the file)."""
        return result_names(self.parameters)

    def result_files(self, directory: Path) -> list[Path]:
        return OutputPaths(directory).result_files(self.parameters.get("write_hits") is True,
                                                   pairs=has_pairs(self.parameters))

    def end_offsets(self) -> dict[str, int]:
        return self.blocks[-1]["ends"] if self.blocks else self.start_offsets

    def records_done(self) -> int:
        return self.blocks[-1]["first_record"] + self.blocks[-1]["records"] if self.blocks else 0

    def save(self, outdir: Path) -> None:
        write_json_atomic(OutputPaths(outdir).shard_json, self.to_json())


def shared_parameters(parameters: dict) -> dict:
    """What all shards of one run have in common: every parameter but --shard."""
    return {key: value for key, value in parameters.items() if key != "shard"}


def result_names(parameters: dict) -> set[str]:
    """The result files a run with these (untrusted) parameters writes; none for `embed`."""
    if parameters.get("embed_only") is True:
        return set()
    return {path.name for path in OutputPaths(".").result_files(parameters.get("write_hits") is True,
                                                                 pairs=has_pairs(parameters))}


def has_pairs(parameters: dict) -> bool:
    """Whether a run with these (untrusted) parameters read paired mates (and so wrote pairs.tsv)."""
    return parameters.get("pairs") in ("paired", "interleaved")


def _check_blocks(log: ShardLog, names: set[str]) -> None:
    """Block entries: this shard's indexes, increasing; records and offsets never going back."""
    blocks = untrusted.of_type(log.blocks, list, "blocks")
    previous_index, next_record, previous_ends = -1, 0, log.start_offsets
    for position, entry in enumerate(blocks):
        what = f"blocks[{position}]"
        untrusted.fields(untrusted.of_type(entry, dict, what), {"index", "first_record", "records", "ends"}, what)
        index = untrusted.count(entry["index"], f"{what}.index", minimum=previous_index + 1)
        if index % log.of != log.shard - 1:
            raise untrusted.Invalid(f"{what}.index {index} does not belong to shard {log.shard}/{log.of}")
        first = untrusted.count(entry["first_record"], f"{what}.first_record", minimum=next_record)
        next_record = first + untrusted.count(entry["records"], f"{what}.records", minimum=1)
        ends = untrusted.sizes(entry["ends"], f"{what}.ends", names)
        if any(ends[name] < previous_ends[name] for name in names):
            raise untrusted.Invalid(f"{what}.ends goes back before the previous block's end")
        previous_index, previous_ends = index, ends


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` with 1 <= K <= N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise VirnucproError(f"--shard {text!r}: use K/N, e.g. 3/10") from None
    if not 1 <= k <= n:
        raise VirnucproError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def merge_shards(shard_dirs: list[Path], outdir: Path, force: bool = False) -> list[Path]:
    """Write the result files of a whole run from its shard directories (all N of them)."""
    shard_dirs = [Path(d) for d in shard_dirs]
    logs = [_read_log(d) for d in shard_dirs]
    _check_one_complete_run(logs, shard_dirs)
    _check_output(outdir, shard_dirs, force)
    runs = [_read_run_json(OutputPaths(d).run_json) for d in shard_dirs if OutputPaths(d).run_json.is_file()]
    outdir.mkdir(parents=True, exist_ok=True)
    finals = [*_write_merged(shard_dirs, logs, outdir), write_virus_summary(OutputPaths(outdir))]
    write_json_atomic(OutputPaths(outdir).run_json, {"merged_from": [str(d) for d in shard_dirs],
                                                     "counts": result_counts(OutputPaths(outdir), has_pairs(logs[0].parameters)),
                                                     "shards": runs})
    _remove_stale(outdir, [*finals, OutputPaths(outdir).run_json])
    fsync_directory(outdir)
    return finals


def _write_merged(shard_dirs: list[Path], logs: list[ShardLog], outdir: Path) -> list[Path]:
    """Every result file as NAME.partial, renamed only once all of them are written and verified."""
    blocks = sorted((entry["index"], position, entry) for position, log in enumerate(logs) for entry in log.blocks)
    finals = logs[0].result_files(outdir)
    partials = [OutputPaths.partial(final) for final in finals]
    try:
        for position, partial in enumerate(partials):
            sources = [(log.result_files(shard_dir)[position], log) for shard_dir, log in zip(shard_dirs, logs)]
            partial.unlink(missing_ok=True)  # never write through a link left at this name
            with open_exclusive(partial) as out:
                _merge_file(sources, blocks, out)
    except BaseException:
        for partial in partials:
            partial.unlink(missing_ok=True)
        raise
    for partial, final in zip(partials, finals):
        partial.replace(final)
    return finals


def _read_log(shard_dir: Path) -> ShardLog:
    path = shard_dir / SHARD_FILE
    if not path.is_file():
        raise MergeError(f"{shard_dir} is not a finished shard (no {SHARD_FILE}; run it with --shard K/N)")
    try:
        log = ShardLog.from_json(untrusted.load_json_object(path))
        if log.records_total is None or log.sha256 is None:
            raise untrusted.Invalid("it lacks the checksums of a finished shard")
        if not log.names():
            raise untrusted.Invalid("it is not from a predict run")
    except untrusted.Invalid as error:
        raise MergeError(f"{path} is unusable: {error}; rerun that shard") from None
    except OSError as error:
        raise MergeError(f"cannot read {path}: {error.strerror}") from None
    return log


def _check_one_complete_run(logs: list[ShardLog], shard_dirs: list[Path]) -> None:
    """One run (inputs, parameters, models, N), each shard once, every block and record once."""
    first, first_dir = logs[0], shard_dirs[0]
    for shard_dir, log in zip(shard_dirs, logs):
        if log.of != first.of:
            raise MergeError(f"{shard_dir} is shard {log.shard}/{log.of} but {first_dir} is {first.shard}/{first.of}:"
                             " give the N shards of one --shard K/N run")
        changes = describe_changes(first.inputs, first.parameters, log.inputs, log.parameters)
        if changes or log.records_total != first.records_total:
            what = summary(changes) or f"{first.records_total} vs {log.records_total} input records"
            raise MergeError(f"{shard_dir} and {first_dir} come from different runs: {what}")
    shards = sorted(log.shard for log in logs)
    if shards != list(range(1, first.of + 1)):
        missing = sorted(set(range(1, first.of + 1)) - set(shards))
        duplicated = sorted({s for s in shards if shards.count(s) > 1})
        raise MergeError(f"need shards 1..{first.of} once each; missing {missing or 'none'},"
                         f" duplicated {duplicated or 'none'}")
    entries = sorted((entry["index"], entry["first_record"], entry["records"]) for log in logs for entry in log.blocks)
    next_record = 0
    for expected, (index, first_record, records) in enumerate(entries):
        if index != expected or first_record != next_record:
            raise MergeError(f"block {expected} is missing or inconsistent (shard {expected % first.of + 1}'s"
                             f" {SHARD_FILE})")
        next_record += records
    if next_record != first.records_total:
        raise MergeError(f"the shards hold {next_record} of {first.records_total} input records: blocks are missing")


def _check_output(outdir: Path, shard_dirs: list[Path], force: bool) -> None:
    """Never merge into a shard directory; over an existing result only with --force."""
    if not outdir.exists():
        return
    if any(os.path.samefile(outdir, shard_dir) for shard_dir in shard_dirs):
        raise MergeError(f"the output directory {outdir} is one of the shard directories; choose another")
    existing = [path for path in _result_paths(outdir) if os.path.lexists(path)]
    if existing and not force:
        raise MergeError(f"{existing[0]} already exists: use --force to overwrite it")


def _result_paths(outdir: Path) -> list[Path]:
    """Every file a merge (or a later `plot`) puts in OUTDIR."""
    paths = OutputPaths(outdir)
    return [*paths.result_files(write_hits=True, pairs=True), paths.virus_summary, paths.run_json,
            paths.report_html]


def _remove_stale(outdir: Path, written: list[Path]) -> None:
    """After --force: files of the previous result this merge did not replace (viral.fa, report.html)."""
    for path in _result_paths(outdir):
        if path not in written:
            path.unlink(missing_ok=True)


def _merge_file(sources: list[tuple[Path, ShardLog]], blocks: list, out: BinaryIO) -> None:
    """One result file: the first shard's header, then every block's bytes in block order."""
    with ExitStack() as stack:
        shard_files = [stack.enter_context(_ShardFile(path, log)) for path, log in sources]
        shard_files[0].copy_to(sources[0][1].start_offsets[shard_files[0].name], out)
        for shard_file, (_, log) in zip(shard_files[1:], sources[1:]):
            shard_file.copy_to(log.start_offsets[shard_file.name], None)  # hashed, not copied
        for _, position, entry in blocks:
            shard_files[position].copy_to(entry["ends"][shard_files[position].name], out)
        for shard_file in shard_files:
            shard_file.verify()


class _ShardFile:
    """One shard's result file, read once from start to end while hashing every byte."""

    def __init__(self, path: Path, log: ShardLog) -> None:
        self.path, self.name = path, path.name
        self.size = log.end_offsets()[self.name]
        self.expected_sha256 = log.sha256[self.name]
        self.position = 0
        self.sha = hashlib.sha256()

    def __enter__(self) -> _ShardFile:
        try:
            self.handle = open(self.path, "rb")
        except OSError as error:
            raise MergeError(f"cannot read {self.path}: {error.strerror}") from None
        actual = os.fstat(self.handle.fileno()).st_size
        if actual != self.size:
            self.handle.close()
            raise MergeError(f"{self.path} has {actual} bytes, its {SHARD_FILE} says {self.size} (torn or edited)")
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()

    def copy_to(self, end: int, out: BinaryIO | None) -> None:
        while self.position < end:
            data = self.handle.read(min(end - self.position, _COPY_BYTES))
            if not data:
                raise MergeError(f"{self.path} is shorter than its {SHARD_FILE} says")
            self.sha.update(data)
            if out is not None:
                out.write(data)
            self.position += len(data)

    def verify(self) -> None:
        if self.position != self.size or self.sha.hexdigest() != self.expected_sha256:
            raise MergeError(f"{self.path} differs from the file its shard wrote (sha256 mismatch):"
                             " the shard is damaged or was edited; rerun that shard")


def _read_run_json(path: Path) -> dict:
    try:
        return untrusted.load_json_object(path)
    except (OSError, untrusted.Invalid) as error:
        raise MergeError(f"cannot read {path}: {error}") from None
