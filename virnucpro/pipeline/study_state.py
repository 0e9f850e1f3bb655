"""A study's state on disk: the study journal (OUTDIR/.virnucpro/study_journal.json) and the
fresh / resume / refuse / --force decision for the whole OUTDIR.

The journal records the sheet (each sample's name and read files), the run's fingerprint, which
samples were started, and for each finished sample its samples.tsv row and the sha256 of every
file it left. `--resume` refuses a changed sheet (naming what changed), verifies every finished
sample's files against those digests and skips it; an interrupted sample resumes through its own
journal (pipeline/output_state.py) exactly as a single run does. The journal is untrusted input.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from virnucpro.errors import FinishedRunError, ResumeError
from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.fsutil.hashing import sha256_file
from virnucpro.fsutil.safe_files import OutputClobberError, refuse_link, remove_file, remove_tree
from virnucpro.fsutil.untrusted import Invalid, count, digests, fields, load_json_object, of_type
from virnucpro.io.samplesheet import SAFE_NAME, Sample
from virnucpro.outputs.paths import OutputPaths, StudyPaths
from virnucpro.outputs.rundir_lock import LOCK_NAME, RunDirLock
from virnucpro.outputs.samples_table import COLUMNS

JOURNAL_VERSION = 1
_FIELDS = {"version", "sheet", "sheet_sha256", "samples", "shard", "parameters", "started", "done", "checksum"}


@dataclass
class StudyJournal:
    sheet: str
    sheet_sha256: str
    samples: list[dict]  # {"name", "r1", "r2"} in sheet order
    shard: list[int] | None = None  # [k, n]: this study runs samples k-1 mod n
    parameters: dict | None = None  # the per-sample runs' fingerprint, set once the models are loaded
    started: list[str] = field(default_factory=list)
    done: dict[str, dict] = field(default_factory=dict)  # name -> {"row": samples.tsv row, "files": {name: sha256}}

    def save(self, path: Path) -> None:
        data = asdict(self)
        data = {"version": JOURNAL_VERSION, **data, "checksum": _checksum(data)}
        write_json_atomic(path, data)

    @classmethod
    def load(cls, path: Path) -> StudyJournal:
        try:
            return _validated(load_json_object(path))
        except Invalid as error:
            raise ResumeError(f"cannot resume: {path} is not a study journal virnucpro wrote ({error});"
                              " use --force to start the study over") from None
        except OSError as error:
            raise ResumeError(f"cannot resume: {path} cannot be read ({error.strerror})") from None


def sheet_entries(samples: dict[str, Sample]) -> list[dict]:
    return [{"name": s.name, "r1": str(s.r1), "r2": str(s.r2) if s.r2 else None} for s in samples.values()]


def sheet_changes(before: list[dict], now: list[dict]) -> list[str]:
    """What differs between the sheet a study started with and the one given now."""
    old, new = {s["name"]: s for s in before}, {s["name"]: s for s in now}
    changes = [f"sample {name} added" for name in new if name not in old]
    changes += [f"sample {name} removed" for name in old if name not in new]
    for name in (n for n in new if n in old):
        for column in ("r1", "r2"):
            if old[name][column] != new[name][column]:
                changes.append(f"sample {name}: {column} was {old[name][column]}, now {new[name][column]}")
    if not changes and list(old) != list(new):
        changes.append("the samples are in another order")
    return changes


class StudyState:
    """The study's lock on OUTDIR, its journal, and what a fresh, resumed or forced study finds there."""

    def __init__(self, outdir: Path, sheet: Path, samples: dict[str, Sample], shard: tuple[int, int] | None,
                 resume: bool, force: bool) -> None:
        self.paths = StudyPaths(outdir)
        self.sheet, self.samples, self.shard = sheet, samples, shard
        self.resume, self.force = resume, force
        self.lock = RunDirLock(outdir, "predict --samples")
        self.sheet_sha256 = sha256_file(sheet)

    def open(self) -> StudyJournal:
        """The journal to continue, or a new one; refuses to clobber. Call with the lock held."""
        paths = self.paths
        self._refuse_unsafe_sample_dirs()  # before --force removes anything
        if self.force:
            self._clean()
        for path in [*paths.owned_files(), paths.journal]:
            refuse_link(path)
        entries = sheet_entries(self.samples)
        shard = list(self.shard) if self.shard else None
        if paths.journal.is_file():
            if not self.resume:
                raise ResumeError(f"{paths.outdir} holds an unfinished study: add --resume to continue it"
                                  " or --force to start over")
            journal = StudyJournal.load(paths.journal)
            self._check_same_study(journal, entries, shard)
            return journal
        if self.resume and paths.study_json.exists():
            raise FinishedRunError(f"{paths.outdir} holds a finished study; nothing to resume (use --force to redo it)")
        for path in [*paths.owned_files()]:
            if os.path.lexists(path):
                raise OutputClobberError(f"{path} already exists: use --force to overwrite the study")
        for name in self.samples:
            sample = OutputPaths(paths.sample_dir(name))
            if sample.sequences.exists() or sample.journal.exists():
                raise OutputClobberError(f"{sample.outdir} already holds a run (sample {name}): use --force to"
                                         " overwrite it, or choose another output directory")
        return StudyJournal(str(self.sheet.absolute()), self.sheet_sha256, entries, shard)

    def _refuse_unsafe_sample_dirs(self) -> None:
        """Each sample writes OUTDIR/SAMPLE/: never through a link there (its files would land
        wherever it points), and never over a read file of the sheet (a study would read what it
        is overwriting, and --force would delete an input)."""
        owned = {os.path.realpath(path) for path in [*self.paths.owned_files(), self.paths.journal]}
        sample_dirs = {os.path.realpath(self.paths.sample_dir(name)): name for name in self.samples}
        for name in self.samples:
            if self.paths.sample_dir(name).is_symlink():
                raise OutputClobberError(f"{self.paths.sample_dir(name)} (sample {name}) is a symbolic link: remove"
                                         " it or choose another output directory")
        for sample in self.samples.values():
            for read_file in (sample.r1, sample.r2):
                if read_file is None:
                    continue
                real = os.path.realpath(read_file)
                inside = next((other for directory, other in sample_dirs.items()
                               if real.startswith(directory + os.sep)), None)
                if real in owned or inside is not None:
                    where = f"in the output directory of sample {inside}" if inside else "a file the study writes"
                    raise OutputClobberError(f"read file {read_file} of sample {sample.name} is {where}: move the"
                                             " reads out of the study's output, or choose another output directory")

    def _check_same_study(self, journal: StudyJournal, entries: list[dict], shard: list[int] | None) -> None:
        changes = sheet_changes(journal.samples, entries)
        if journal.shard != shard:
            changes.append(f"--shard was {journal.shard}, now {shard}")
        if changes:
            raise ResumeError(f"cannot resume the study in {self.paths.outdir}: {'; '.join(changes)[:400]};"
                              " give the sheet it started with, or use --force to start over")
        for name, record in journal.done.items():
            self.verify_done(name, record["files"])
        for name in journal.started:
            if name not in journal.done and not OutputPaths(self.paths.sample_dir(name)).journal.exists():
                clean_sample_dir(self.paths.sample_dir(name))  # ours, stopped before a checkpoint or a record

    def verify_done(self, name: str, files: dict[str, str]) -> None:
        """A finished sample is skipped only when its files are the ones the study recorded."""
        directory = self.paths.sample_dir(name)
        for file_name, digest in files.items():
            path = directory / file_name
            if not path.is_file() or path.is_symlink():
                raise ResumeError(f"cannot resume: {path} of finished sample {name} is missing; use --force to"
                                  " redo the study")
            if sha256_file(path) != digest:
                raise ResumeError(f"cannot resume: {path} of finished sample {name} changed since it was written;"
                                  " use --force to redo the study")

    def _clean(self) -> None:
        """--force: every study file, and every sample directory's virnucpro files, of this sheet and of
        the study found there; nothing else."""
        names = list(self.samples)
        if self.paths.journal.is_file() and not self.paths.journal.is_symlink():
            try:
                names += [s["name"] for s in StudyJournal.load(self.paths.journal).samples]
            except ResumeError:
                pass  # an unreadable journal names no samples: this sheet's are cleaned
        for name in dict.fromkeys(names):
            clean_sample_dir(self.paths.sample_dir(name))
        for path in self.paths.owned_files():
            remove_file(path)
        remove_file(self.paths.journal)

    def refuse_foreign(self, names: list[str]) -> None:
        """Samples about to start fresh: any virnucpro name already in their directory is someone else's
        (refused now, before the models load, not when the stream reaches the sample)."""
        for name in names:
            paths = OutputPaths(self.paths.sample_dir(name))
            for path in [*paths.owned_files(), *paths.owned_dirs()]:
                if path != paths.state_dir and os.path.lexists(path):
                    raise OutputClobberError(f"{path} already exists and is not from this study (sample {name}):"
                                             " remove it or rerun with --force")

    def finished_files(self, name: str, known: dict[str, str]) -> dict[str, str]:
        """sha256 of every file a finished sample left (what --resume verifies). `known`: the result
        writer's running digests, so the big result files are not read again at a sample boundary
        (that would hold up the stream); only the small files written at the end are hashed."""
        paths = OutputPaths(self.paths.sample_dir(name))
        return {path.name: known.get(path.name) or sha256_file(path) for path in paths.owned_files()
                if path.is_file() and not path.is_symlink()}


def clean_sample_dir(directory: Path) -> None:
    """Remove exactly the files and directories virnucpro writes in one sample's directory, under its lock."""
    if not directory.is_dir() or directory.is_symlink():
        return
    paths = OutputPaths(directory)
    with RunDirLock(directory, "predict --samples --force"):
        for path in paths.owned_files():
            remove_file(path)
        for owned in paths.owned_dirs():
            remove_tree(owned, keep=LOCK_NAME if owned == paths.state_dir else None)


def _checksum(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _validated(data: dict) -> StudyJournal:
    fields(data, _FIELDS, "the journal")
    checksum = data.pop("checksum")
    version = data.pop("version")
    if type(version) is not int or version != JOURNAL_VERSION:  # True == 1 in Python
        raise Invalid("its version is not this virnucpro's")
    if checksum != _checksum({k: data[k] for k in _FIELDS - {"version", "checksum"}}):
        raise Invalid("its checksum does not match its content")
    of_type(data["sheet"], str, "sheet")
    of_type(data["sheet_sha256"], str, "sheet_sha256")
    names = [_sample_entry(entry) for entry in of_type(data["samples"], list, "samples")]
    if len({name.casefold() for name in names}) != len(names):  # as the sheet compares them
        raise Invalid("a sample is listed twice")
    if data["shard"] is not None:
        shard = of_type(data["shard"], list, "shard")
        if len(shard) != 2 or not 1 <= count(shard[0], "shard") <= count(shard[1], "shard"):
            raise Invalid("shard is not [k, n]")
    if data["parameters"] is not None:
        of_type(data["parameters"], dict, "parameters")
    started = of_type(data["started"], list, "started")
    if any(name not in names for name in started):
        raise Invalid("started names a sample not in its sheet")
    for name, record in of_type(data["done"], dict, "done").items():
        if name not in names:
            raise Invalid("done names a sample not in its sheet")
        fields(of_type(record, dict, f"done[{name}]"), {"row", "files"}, f"done[{name}]")
        row = of_type(record["row"], dict, f"done[{name}].row")
        if set(row) != set(COLUMNS) or not all(isinstance(v, str) for v in row.values()):
            raise Invalid(f"done[{name}].row is not a samples.tsv row")
        files = of_type(record["files"], dict, f"done[{name}].files")
        owned = {path.name for path in OutputPaths(Path("/")).owned_files()}
        digests(files, f"done[{name}].files", set(files))
        if not set(files) <= owned:
            raise Invalid(f"done[{name}].files names a file virnucpro does not write")
    return StudyJournal(**data)


def _sample_entry(entry) -> str:
    entry = of_type(entry, dict, "a sample")
    fields(entry, {"name", "r1", "r2"}, "a sample")
    name = of_type(entry["name"], str, "a sample name")
    if not SAFE_NAME.fullmatch(name):
        raise Invalid("a sample name is not a safe directory name")
    of_type(entry["r1"], str, "r1")
    if entry["r2"] is not None:
        of_type(entry["r2"], str, "r2")
    return name

