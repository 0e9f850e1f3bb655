"""The resume journal: a tiny JSON file, atomically replaced after every finished block.

It records how many blocks and records are final and, for every partial result file, its byte size
and the sha256 of those bytes at that moment. After a crash (even kill -9) the writer checks the
partial files against them, cuts them back to those sizes and the run continues with the next
block, so nothing is lost, duplicated or silently damaged. The journal keeps the run's identity
(inputs, parameters, model files) so a resume of a different run is refused naming what changed,
and a checksum over its own content so an edited or damaged journal is refused too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from virnucpro.errors import ResumeError
from virnucpro.fsutil import untrusted
from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.io.sources import is_stream
from virnucpro.outputs.paths import PART_NAME
from virnucpro.pipeline.run_changes import as_json, describe_changes, summary
from virnucpro.pipeline.shards import ShardLog, result_names, shared_parameters

JOURNAL_VERSION = 3
_HEAD_BYTES = 1 << 20
_FORCE = "use --force to start over"


@dataclass
class Journal:
    inputs: list[dict]  # input_identity() of the run
    parameters: dict  # everything that decides the result bytes, model files included
    blocks_done: int = 0
    records_done: int = 0
    offsets: dict[str, int] = field(default_factory=dict)  # partial file sizes at the last checkpoint
    digests: dict[str, str] = field(default_factory=dict)  # sha256 of those bytes
    shard_log: dict | None = None  # only for --shard runs: what `merge` needs (see shards.py)
    parts: dict[str, str] = field(default_factory=dict)  # embedding part file -> sha256 (embeddings.py)
    version: int = JOURNAL_VERSION

    @classmethod
    def start(cls, inputs: list[dict], parameters: dict) -> Journal:
        return cls(as_json(inputs), as_json(parameters))

    def save(self, path: Path) -> None:
        data = asdict(self)
        write_json_atomic(path, {**data, "checksum": _checksum(data)})

    @classmethod
    def load(cls, path: Path) -> Journal:
        """The journal in `path`, or one ResumeError line saying what is wrong with it."""
        try:
            data = untrusted.load_json_object(path)
            checksum = data.pop("checksum", None)
            if data.get("version") != JOURNAL_VERSION:
                raise ResumeError(f"{path} was written by another virnucpro version; {_FORCE}")
            if checksum != _checksum(data):
                raise untrusted.Invalid("its checksum does not match its content (edited or damaged)")
            return _validated(data)
        except OSError as error:
            raise ResumeError(f"cannot read the resume journal {path}: {error.strerror}") from None
        except untrusted.Invalid as error:
            raise ResumeError(f"cannot resume: the journal {path} is unusable: {error}; {_FORCE}") from None

    def check_same_run(self, inputs: list[dict], parameters: dict, outdir: Path) -> None:
        """Refuse, naming what changed, when this run's identity differs from the journal's."""
        changes = describe_changes(self.inputs, self.parameters, inputs, parameters)
        if changes:
            raise ResumeError(f"cannot resume {outdir}: {summary(changes)} since it started ({_FORCE})")

    def rows_written(self) -> int:
        """Rows sequences.tsv must hold at this checkpoint (one per record of the blocks done here)."""
        if self.shard_log is None:
            return self.records_done
        return sum(block["records"] for block in self.shard_log["blocks"])


def input_identity(paths: list[str]) -> list[dict]:
    """Name, size, mtime and a hash of the first MiB of every input (a stream, e.g. stdin or a pipe,
    is only named: reading it here would consume it, and it cannot be resumed)."""
    identity = []
    for path in paths:
        if is_stream(path):
            identity.append({"path": path})
            continue
        stat = os.stat(path)
        with open(path, "rb") as handle:
            head = hashlib.sha256(handle.read(_HEAD_BYTES)).hexdigest()
        identity.append({"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                         "head_sha256": head})
    return identity


def _checksum(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _validated(data: dict) -> Journal:
    """Types, ranges and internal consistency of an untrusted journal (checksum already checked)."""
    untrusted.fields(data, {"inputs", "parameters", "blocks_done", "records_done", "offsets", "digests",
                            "shard_log", "parts", "version"}, "it")
    inputs = untrusted.of_type(data["inputs"], list, "inputs")
    if not all(isinstance(item, dict) for item in inputs):
        raise untrusted.Invalid("inputs is not a list of files")
    parameters = untrusted.of_type(data["parameters"], dict, "parameters")
    blocks_done = untrusted.count(data["blocks_done"], "blocks_done", minimum=1)
    records_done = untrusted.count(data["records_done"], "records_done", minimum=blocks_done)
    names = result_names(parameters)
    journal = Journal(inputs, parameters, blocks_done, records_done,
                      untrusted.sizes(data["offsets"], "offsets", names),
                      untrusted.digests(data["digests"], "digests", names), data["shard_log"],
                      _part_digests(data["parts"]))
    if journal.shard_log is not None:
        _check_shard_log(journal)
    return journal


def _part_digests(value) -> dict[str, str]:
    """{embedding part file name: sha256}: names of the one fixed form, so none can leave the parts folder."""
    parts = untrusted.of_type(value, dict, "parts")
    if not all(isinstance(name, str) and PART_NAME.fullmatch(name) for name in parts):
        raise untrusted.Invalid("parts names a file that is not an embedding part")
    return untrusted.digests(parts, "parts", set(parts))


def _check_shard_log(journal: Journal) -> None:
    """A shard run's journal: its shard log must end exactly where the journal says the run is."""
    log = ShardLog.from_json(untrusted.of_type(journal.shard_log, dict, "shard_log"))
    if journal.parameters.get("shard") != [log.shard, log.of] or not log.blocks:
        raise untrusted.Invalid("shard_log does not match the run's --shard")
    if (log.inputs, log.parameters) != (journal.inputs, shared_parameters(journal.parameters)):
        raise untrusted.Invalid("shard_log belongs to another run")
    last = log.blocks[-1]
    if (last["index"] + 1, last["first_record"] + last["records"], last["ends"]) != (
            journal.blocks_done, journal.records_done, journal.offsets):
        raise untrusted.Invalid("shard_log and the checkpoint disagree")
