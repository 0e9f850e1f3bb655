"""Fuzzing every file the tool reads and the CLI's numeric options: only a VirnucproError (one
`virnucpro: error:` line at the CLI) or a click usage error may come out, never another exception,
a crash signal or a hang.

A valid file of each kind is mutated structurally (a JSON value replaced by NaN, a huge number,
a wrong type, a key removed) and byte-wise (truncated, bytes flipped or inserted); loaders are
called in-process for speed, with a per-example time limit. hypothesis runs derandomized (a fixed
seed, the same examples in CI every time) with a bounded number of examples per target: the whole
module takes well under a minute. A failure prints the smallest input found; add it to
tests/data/fuzz_crashers/ (a regression case, run by `test_known_crashers`).

The files a study reads (#19: sample sheet, study journal, study shards' study.json, paired and
interleaved FASTQ, samples.tsv, the compile cache's warm-settings.json) are targets too
(`STUDY_TARGETS`); tests/{io,pipeline,outputs,engine}/test_hostile_*.py attack them directly.

Every target must survive its mutations: a crash found by a fuzzer is fixed in the code that reads
the file, and its input is kept in tests/data/fuzz_crashers/.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import os
import json
import math
import resource
import shutil
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import click
import pytest
import torch
from conftest import DATA, RESULT_TABLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virnucpro.cli.main import main
from virnucpro.errors import VirnucproError

CRASHERS = DATA / "fuzz_crashers"
EXAMPLE_SECONDS = 5
EXAMPLE_MEMORY = 2 << 30
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
ACCEPTED = (VirnucproError, click.ClickException)

NASTY = [None, True, False, -1, 0, 1, 3, 2**31, 2**63, 10**30, -(10**30), 1e308, -1e308, math.nan, math.inf,
         -math.inf, 0.5, -0.0, "", "x", "nan", "1e999", [], [1, 2], {}, {"a": 1}, "\u0000", "$\\foo{x}$"]


class ExampleTimeout(Exception):
    """One fuzz example ran past EXAMPLE_SECONDS: a hang (or a blow-up) found."""


@contextlib.contextmanager
def time_limit(seconds: float = EXAMPLE_SECONDS):
    def expire(signum, frame):
        raise ExampleTimeout(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def memory_limit(headroom: int = EXAMPLE_MEMORY):
    """Address space capped at what the process has now plus `headroom`: a blow-up raises
    MemoryError (a finding) instead of taking the shared machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    in_use = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    cap = in_use + headroom if hard == resource.RLIM_INFINITY else min(in_use + headroom, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def survives(call) -> None:
    """Run `call`; a VirnucproError or usage error is a correct refusal, anything else is a finding."""
    with time_limit(), memory_limit():
        try:
            call()
        except ACCEPTED as error:
            assert "\n" not in str(error).strip(), f"multi-line error: {error}"


# --- mutators ----------------------------------------------------------------------------------

def _paths(node, prefix=()):
    """The path (keys and indices) of every value inside a JSON document, the root included."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:8]):
            yield from _paths(value, (*prefix, index))


def _replaced(node, path, value, delete):
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(node) if isinstance(node, dict) else list(node)
    if delete and not rest:
        del copy[head]
    else:
        copy[head] = _replaced(copy[head], rest, value, delete)
    return copy


@st.composite
def mutated_json(draw, document) -> bytes:
    """The document with one to three values replaced or removed, or its text damaged."""
    if draw(st.integers(0, 4)) == 0:
        return draw(mutated_bytes(json.dumps(document).encode()))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(document))))
        delete = bool(path) and draw(st.booleans())
        document = _replaced(document, path, draw(st.sampled_from(NASTY)), delete)
    return json.dumps(document).encode()


@st.composite
def mutated_bytes(draw, data: bytes) -> bytes:
    """Truncated, a few bytes flipped, or a run of bytes inserted."""
    action = draw(st.sampled_from(["truncate", "flip", "insert"]))
    at = draw(st.integers(0, max(len(data) - 1, 0)))
    if action == "truncate":
        return data[:at]
    if action == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            out[draw(st.integers(0, max(len(out) - 1, 0)))] ^= draw(st.integers(1, 255))
        return bytes(out)
    return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]


# --- fixtures: one valid file of every kind -------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_models):
    """A finished predict run (tables, run.json) and one shard of a two-shard run, on tiny models."""
    root = tmp_path_factory.mktemp("fuzz-run")
    fasta = root / "in.fa"
    fasta.write_text("".join(f">s{i}\n{'ATGGCTAAAGGTCTTGCTGCAGGTAAACGTACTGAAGGT' * (3 + 9 * i)}\n" for i in range(4)))
    models = ["--esm", str(tiny_models / "esm2"), "--dnabert", str(tiny_models / "dnabert-s"),
              "--classifier", str(tiny_models / "classifier.pth"), "--device", "cpu", "-q", "--block-records", "1"]
    assert main(["predict", str(fasta), "-o", str(root / "out"), "--chunk-size", "300", *models]) == 0
    for k in (1, 2):
        assert main(["predict", str(fasta), "-o", str(root / f"shard{k}"), "--shard", f"{k}/2", *models]) == 0
    (root / "B.fa").write_text(">b1\n" + "ATGGCTAAAGGTCTTGCTGCAGGTAAACGTACTGAAGGT" * 9 + "\n")
    (root / "sheet.tsv").write_text("sample\tr1\nA\tin.fa\nB\tB.fa\n")
    for k in (1, 2):  # the two shards of a two-sample study
        assert main(["predict", "--samples", str(root / "sheet.tsv"), "-o", str(root / f"study{k}"), "--shard",
                     f"{k}/2", *models]) == 0
    return root


def _fastq(ids: list[str]) -> bytes:
    return "".join(f"@{i}\nATGGCTAAAGGTCTTGCTGCAGGTAAACGTACTGAAGGT\n+\n{'I' * 39}\n" for i in ids).encode()


# --- targets: how each file kind is read, as the tool reads it ------------------------------------
# Each target: a seed document (the valid file) and `apply(sources, data)`, which puts `data` in
# place of that file and runs the code that reads it. The fuzzers and the crasher corpus share them.

def _safetensors_parts(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _with_header(header: bytes, body: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header + body


def _fresh(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy(source, target)
    return target


def _rezipped(source: Path, target: Path, member_suffix: str, content: bytes) -> None:
    """`source` (a torch zip checkpoint) with the member ending in `member_suffix` replaced."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            new.writestr(item, content if item.filename.endswith(member_suffix) else old.read(item))


class Sources:
    """The valid files (tiny models, a finished run, two shards) and a scratch directory."""

    def __init__(self, models: Path, run: Path, work: Path):
        self.models, self.run, self.work = models, run, work

    def esm_config(self, data: bytes) -> None:
        from virnucpro.models.esm2_loader import load_esm2

        model = _fresh(self.models / "esm2", self.work / "esm2")
        (model / "config.json").write_bytes(data)
        load_esm2(model, "cpu", torch.float32)

    def esm_safetensors_header(self, data: bytes) -> None:
        from virnucpro.models.esm2_loader import load_esm2

        model = _fresh(self.models / "esm2", self.work / "esm2")
        _, body = _safetensors_parts(model / "model.safetensors")
        (model / "model.safetensors").write_bytes(_with_header(data, body))
        load_esm2(model, "cpu", torch.float32)

    def classifier_safetensors_header(self, data: bytes) -> None:
        from virnucpro.models.classifier import load_classifier

        _, body = _safetensors_parts(self.models / "classifier.safetensors")
        (self.work / "c.safetensors").write_bytes(_with_header(data, body))
        load_classifier(self.work / "c.safetensors")

    def classifier_pickle(self, data: bytes) -> None:
        from virnucpro.models.classifier import load_classifier

        _rezipped(self.models / "classifier.pth", self.work / "c.pth", "data.pkl", data)
        load_classifier(self.work / "c.pth")

    def dnabert_config(self, data: bytes) -> None:
        from virnucpro.models.dnabert_loader import load_dnabert

        model = _fresh(self.models / "dnabert-s", self.work / "dnabert-s")
        (model / "config.json").write_bytes(data)
        load_dnabert(model, "cpu", torch.float32)

    def tokenizer_json(self, data: bytes) -> None:
        from virnucpro.tokenize.dnabert import DnabertTokenizer

        (self.work / "tokenizer.json").write_bytes(data)
        DnabertTokenizer.from_dir(self.work).encode_batch(["ACGTACGTAGCTAGCTAGCATCGAT", "A"])

    def manifest(self, data: bytes) -> None:
        from virnucpro.models.manifest import MANIFEST_NAME, Manifest

        _fresh(self.models / "classifier.pth", self.work / "classifier.pth")
        (self.work / MANIFEST_NAME).write_bytes(data)
        manifest = Manifest.load(self.work)
        if manifest is not None:
            manifest.check_sizes("classifier.pth")

    def journal(self, data: bytes) -> None:
        """The journal of an unfinished run, read and its checkpoint reopened as --resume does."""
        from virnucpro.outputs.writer import ResultWriter
        from virnucpro.pipeline.journal import Journal

        target = self.work / "run"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        for name in RESULT_TABLES:  # an unfinished run: the result files still carry .partial
            shutil.copy(self.run / "out" / name, target / f"{name}.partial")
        (target / "journal.json").write_bytes(data)
        loaded = Journal.load(target / "journal.json")
        ResultWriter.reopen(target, loaded.offsets).close()
        list(itertools.islice(range(4), loaded.records_done, None))  # how predict skips the done records

    def shard_json(self, data: bytes) -> None:
        from virnucpro.pipeline.shards import merge_shards

        shard1 = _fresh(self.run / "shard1", self.work / "shard1")
        real = json.loads((self.run / "shard2" / "shard.json").read_text())
        identity = json.dumps({k: real[k] for k in ("inputs", "parameters", "version")})[1:-1]
        # corpus cases name the run's identity with a placeholder, so they apply to any run
        (shard1 / "shard.json").write_bytes(data.replace(b'"merge_key": "{merge_key}"', identity.encode()))
        merge_shards([shard1, self.run / "shard2"], self.work / "merged")

    def plot(self, name: str, data: bytes, output: str = "report.html") -> None:
        from virnucpro.outputs.report import make_report

        target = self.work / "plot"
        target.mkdir(exist_ok=True)
        for table in (*_TABLES, "run.json"):
            shutil.copy(self.run / "out" / table, target / table)
        (target / name).write_bytes(data)
        make_report(target, self.work / output, 3, None)

    def study_json(self, data: bytes) -> None:
        """study.json of study shard 1 replaced, the two shards merged as `merge` does."""
        from virnucpro.pipeline.study_merge import merge_study_shards

        study1 = _fresh(self.run / "study1", self.work / "study1")
        real = json.loads((self.run / "study1" / "study.json").read_text())
        identity = json.dumps({k: real[k] for k in ("sheet", "sheet_sha256", "samples", "parameters")})[1:-1]
        # corpus cases name the study's identity with a placeholder, so they apply to any run
        (study1 / "study.json").write_bytes(data.replace(b'"{identity}": 0', identity.encode()))
        merge_study_shards([study1, self.run / "study2"], self.work / "merged-study", force=True)

    def study_journal(self, data: bytes) -> None:
        """The study journal of shard 1 (checksum made to match, so the fields are reached), resumed."""
        from virnucpro.io.samplesheet import read_sample_sheet
        from virnucpro.outputs.paths import StudyPaths
        from virnucpro.pipeline.study_state import StudyState, _checksum

        study = _fresh(self.run / "study1", self.work / "study-resume")
        try:
            document = json.loads(data)
            if isinstance(document, dict) and "checksum" in document:
                document["checksum"] = _checksum({k: v for k, v in document.items() if k not in ("version", "checksum")})
                data = json.dumps(document).encode()
        except (ValueError, RecursionError):
            pass
        paths = StudyPaths(study)
        paths.journal.parent.mkdir(exist_ok=True)
        paths.journal.write_bytes(data)
        paths.study_json.unlink()
        sheet = self.run / "sheet.tsv"
        state = StudyState(study, sheet, read_sample_sheet(sheet, StudyPaths.reserved_names()), (1, 2), True, False)
        with state.lock:
            state.open()

    def sample_sheet(self, data: bytes) -> None:
        from virnucpro.io.samplesheet import read_sample_sheet
        from virnucpro.outputs.paths import StudyPaths

        (self.work / "in.fa").write_bytes(b">a\nACGT\n")
        (self.work / "B.fa").write_bytes(b">b\nACGT\n")
        (self.work / "sheet.csv").write_bytes(data)
        read_sample_sheet(self.work / "sheet.csv", StudyPaths.reserved_names())

    def paired_gzip_mate(self, data: bytes) -> None:
        """R2 (gzip) replaced; both mates read to the end in lockstep."""
        from virnucpro.io.pairs import open_input

        (self.work / "r1.fq").write_bytes(_fastq([f"p{i}/1" for i in range(40)]))
        (self.work / "r2.fq.gz").write_bytes(data)
        reader = open_input([self.work / "r1.fq", self.work / "r2.fq.gz"], paired=True)
        try:
            reader.check_first_records()
            for _ in reader:
                pass
        finally:
            reader.close()

    def interleaved(self, data: bytes) -> None:
        from virnucpro.io.pairs import open_input

        (self.work / "i.fq").write_bytes(data)
        reader = open_input([self.work / "i.fq"], interleaved=True)
        try:
            reader.check_first_records()
            for _ in reader:
                pass
        finally:
            reader.close()

    def samples_tsv(self, data: bytes) -> None:
        """samples.tsv of a study, read and summarised as `plot` does (study_html; no sample reports)."""
        from virnucpro.outputs.samples_table import read_samples_table
        from virnucpro.outputs.study_report import study_html

        (self.work / "samples.tsv").write_bytes(data)
        study_html(self.work, read_samples_table(self.work / "samples.tsv"), {})

    def warm_settings(self, data: bytes) -> None:
        """The compile cache's record: whatever it holds, a run is never stopped by it."""
        from virnucpro.engine import compile_cache

        cache = self.work / "cache"
        (cache / "virnucpro" / "compile").mkdir(parents=True, exist_ok=True)
        (cache / "virnucpro" / "compile" / "warm-settings.json").write_bytes(data)
        saved = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = str(cache)
        try:
            assert isinstance(compile_cache._warm_settings(), list)
        finally:
            os.environ.pop("XDG_CACHE_HOME") if saved is None else os.environ.update(XDG_CACHE_HOME=saved)

    def seed(self, target: str):
        """The valid document (parsed JSON) or bytes that the target's mutations start from."""
        models, out = self.models, self.run / "out"
        if target == "esm_config":
            return json.loads((models / "esm2" / "config.json").read_text())
        if target == "esm_safetensors_header":
            return _safetensors_parts(models / "esm2" / "model.safetensors")[0]
        if target == "classifier_safetensors_header":
            return _safetensors_parts(models / "classifier.safetensors")[0]
        if target == "classifier_pickle":
            return zipfile.ZipFile(models / "classifier.pth").read("classifier/data.pkl")
        if target == "dnabert_config":
            return json.loads((models / "dnabert-s" / "config.json").read_text())
        if target == "tokenizer_json":
            return json.loads((models / "dnabert-s" / "tokenizer.json").read_text())
        if target == "manifest":
            from virnucpro.models.manifest import MANIFEST_FORMAT

            size = (models / "classifier.pth").stat().st_size
            return {"format": MANIFEST_FORMAT, "files": {"classifier.pth": {"size": size, "sha256": "0" * 64}},
                    "sources": {"classifier.pth": {"url": "https://example.org/c.pth"}}}
        if target == "journal":  # a consistent checkpoint: every record done, offsets at the files' ends
            return {"fingerprint": "f" * 64, "blocks_done": 4, "records_done": 4,
                    "offsets": {name: (out / name).stat().st_size for name in RESULT_TABLES},
                    "counts": {"records": 4}, "shard_log": None, "version": 1}
        if target == "shard_json":
            return json.loads((self.run / "shard1" / "shard.json").read_text())
        if target == "study_json":
            return json.loads((self.run / "study1" / "study.json").read_text())
        if target == "study_journal":
            return self._study_journal_seed()
        if target == "sample_sheet":
            return b'sample,fastq_1\nA,in.fa\n"B",B.fa\n'
        if target == "paired_gzip_mate":
            return gzip.compress(_fastq([f"p{i}/2" for i in range(40)]))
        if target == "interleaved":
            return _fastq([f"p{i // 2}/{1 + i % 2}" for i in range(40)])
        if target == "samples_tsv":
            return (self.run / "study1" / "samples.tsv").read_bytes()
        if target == "warm_settings":
            return ['{"devices": ["NVIDIA H200"], "dtype": "torch.bfloat16"}']
        raise KeyError(target)

    def _study_journal_seed(self) -> dict:
        """The journal shard 1 would hold after its sample A finished (built from its study.json)."""
        from virnucpro.io.samplesheet import read_sample_sheet
        from virnucpro.outputs.paths import StudyPaths
        from virnucpro.outputs.samples_table import read_samples_table
        from virnucpro.pipeline.study_state import JOURNAL_VERSION, sheet_entries

        sheet = self.run / "sheet.tsv"
        study = json.loads((self.run / "study1" / "study.json").read_text())
        (row,) = read_samples_table(self.run / "study1" / "samples.tsv")
        files = next(entry["files"] for entry in study["samples"] if entry["name"] == "A")
        return {"version": JOURNAL_VERSION, "sheet": str(sheet), "sheet_sha256": study["sheet_sha256"],
                "samples": sheet_entries(read_sample_sheet(sheet, StudyPaths.reserved_names())), "shard": [1, 2],
                "parameters": {}, "started": ["A"], "done": {"A": {"row": row, "files": files}}, "checksum": ""}


_TABLES = ("sequences.tsv", "chunks.tsv")

# the model, resume and merge files, by the `Sources` method that reads each one
FILE_TARGETS = ("esm_config", "esm_safetensors_header", "classifier_safetensors_header", "classifier_pickle",
                "dnabert_config", "tokenizer_json", "manifest", "journal", "shard_json")
# the files a study reads (#19): sheet, study journal, study shards' study.json, paired and interleaved
# FASTQ, samples.tsv, and the compile cache's record
STUDY_TARGETS = ("study_json", "study_journal", "sample_sheet", "paired_gzip_mate", "interleaved", "samples_tsv",
                 "warm_settings")


@pytest.fixture(scope="module")
def sources(tiny_models, run_dir, tmp_path_factory) -> Sources:
    return Sources(tiny_models, run_dir, tmp_path_factory.mktemp("fuzz-work"))


@pytest.mark.parametrize("target", sorted(FILE_TARGETS))
def test_fuzz_model_resume_and_merge_files(sources, target):
    """Mutations of each model/resume/merge file: a one-line refusal or success, never a crash."""
    seed = sources.seed(target)
    strategy = mutated_bytes(seed) if isinstance(seed, bytes) else mutated_json(seed)
    apply = getattr(sources, target)

    @settings(FUZZ, max_examples=20)
    @given(data=strategy)
    def check(data):
        survives(lambda: apply(data))

    check()


@pytest.mark.parametrize("target", sorted(STUDY_TARGETS))
def test_study_file_seeds_are_accepted(sources, target):
    """The unmutated seed of each study target is read without a refusal (else the fuzzer only
    ever reaches the first check)."""
    seed = sources.seed(target)
    getattr(sources, target)(seed if isinstance(seed, bytes) else json.dumps(seed).encode())


@pytest.mark.parametrize("target", sorted(STUDY_TARGETS))
def test_fuzz_study_files(sources, target):
    """Mutations of each file a study reads: a one-line refusal or success, never a crash, a hang or
    an allocation past the cap."""
    seed = sources.seed(target)
    strategy = mutated_bytes(seed) if isinstance(seed, bytes) else mutated_json(seed)
    if target == "samples_tsv":
        strategy = st.one_of(strategy, mutated_table(seed.decode()))
    apply = getattr(sources, target)

    @settings(FUZZ, max_examples=30)
    @given(data=strategy)
    def check(data):
        survives(lambda: apply(data))

    check()


@st.composite
def mutated_table(draw, text: str) -> bytes:
    """One cell replaced by a nasty value, a row cut short or extended, or the bytes damaged."""
    lines = text.split("\n")
    if draw(st.integers(0, 3)) == 0:
        return draw(mutated_bytes(text.encode()))
    row = draw(st.integers(0, len(lines) - 2))
    cells = lines[row].split("\t")
    action = draw(st.sampled_from(["cell", "cell", "cut", "extend"]))
    if action == "cell":
        cells[draw(st.integers(0, len(cells) - 1))] = str(draw(st.sampled_from(
            [*NASTY, "NA", "-5", "1e5", "1.5", "9" * 30, "virus", "no_call", "0x10", " 3", "\uff11"])))
    elif action == "cut":
        cells = cells[: draw(st.integers(0, len(cells) - 1))]
    else:
        cells.append("extra")
    lines[row] = "\t".join(cells)
    return "\n".join(lines).encode()


@st.composite
def plot_input(draw, sources: Sources) -> tuple[str, bytes]:
    name = draw(st.sampled_from([*_TABLES, "run.json"]))
    out = sources.run / "out"
    if name == "run.json":
        return name, draw(mutated_json(json.loads((out / name).read_text())))
    return name, draw(mutated_table((out / name).read_text()))


def test_fuzz_plot_tables(sources):
    """sequences.tsv, chunks.tsv and run.json of a finished run, edited: read and summarised the
    way `plot` does (many examples, no drawing)."""
    from virnucpro.outputs.paths import OutputPaths
    from virnucpro.outputs.report import _run_info, _run_threshold
    from virnucpro.outputs.summary import gather

    target = sources.work / "tables"

    @settings(FUZZ, max_examples=150)
    @given(case=plot_input(sources))
    def check(case):
        name, data = case
        _fresh(sources.run / "out", target)
        (target / name).write_bytes(data)
        paths = OutputPaths(target)
        survives(lambda: gather(paths, _run_threshold(_run_info(paths), paths), 3))

    check()


def test_fuzz_plot_drawing(sources):
    """The whole `plot` (report or figures) on a few edited runs: drawing is slow, so fewer examples."""

    @settings(FUZZ, max_examples=6)
    @given(case=plot_input(sources), output=st.sampled_from(["report.html", "fig.png", "fig.svg"]))
    def check(case, output):
        survives(lambda: sources.plot(*case, output=output))

    check()


# --- CLI numeric and string options (this area) ---------------------------------------------------

_OPTION_VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1", "2", "1e9", "99999999999999999999", "0.5", "", "x",
                     "all", "0,0", "1/0", "0/1", "2/1", "1/2", "-", "cuda", "cuda:9", "cpu", " 1", "1,", "$x$"]),
    st.integers(-(10**20), 10**20).map(str), st.floats(allow_nan=True).map(repr))
_RUN_OPTIONS = ["--threshold", "--batch-tokens", "--block-records", "--threads", "--workers", "--gpus", "--shard",
                "--chunk-size", "--device", "--precision", "--model-type", "--chunking"]


def test_fuzz_predict_options(tmp_path, capsys):
    """predict's options up to the point where models would load (the input is missing): parse
    errors, set-up refusals, or the one-line 'not found'; never a traceback."""
    threads = torch.get_num_threads()

    @settings(FUZZ, max_examples=100)
    @given(options=st.lists(st.tuples(st.sampled_from(_RUN_OPTIONS), _OPTION_VALUES), min_size=1, max_size=3))
    def check(options):
        argv = ["predict", str(tmp_path / "missing.fa"), "-o", str(tmp_path / "out"), "--force", "-q"]
        for option, value in options:
            argv += [option, value]
        with time_limit():
            code = main(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err and code in (1, 2), (argv, code, err)
        assert code == 2 or err.count("\n") == 1, err

    try:
        check()
    finally:
        torch.set_num_threads(threads)


_OTHER_COMMANDS = {
    "train": (["train", "--virus", "v.parquet", "-o", "c.safetensors"],
              ["--epochs", "--lr", "--batch-size", "--patience", "--val-fraction", "--seed", "--chunk-size",
               "--device", "--split-by"]),
    "plot": (["plot", "missing-dir"], ["--max-tracks", "--threshold", "-o"]),
    "frames": (["frames", "missing.fa", "-o", "frames-out"], ["--chunk-size", "--chunking"]),
    "convert-classifier": (["convert-classifier", "missing.pth", "-o", "c.safetensors"], ["--chunk-size"]),
    "merge": (["merge", "-o", "merged"], []),
}


def test_fuzz_other_commands_options(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)

    @FUZZ
    @given(command=st.sampled_from(sorted(_OTHER_COMMANDS)), data=st.data())
    def check(command, data):
        base, options = _OTHER_COMMANDS[command]
        argv = list(base)
        for option in data.draw(st.lists(st.sampled_from(options), max_size=3)) if options else []:
            argv += [option, data.draw(_OPTION_VALUES)]
        with time_limit():
            code = main(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err and code in (1, 2), (argv, code, err)
        assert code == 2 or err.count("\n") == 1, err

    check()


# --- a few real processes: the whole CLI, exit status and crash signals ---------------------------

@pytest.mark.parametrize("extra", [
    ["--threads", "1", "--batch-tokens", "64", "--block-records", "1", "--chunk-size", "3", "--threshold", "1"],
    ["--gpus", "0,0", "--threshold", "nan"],
])
def test_cli_process_never_crashes(tmp_path, model_args, extra):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nATGGCTAAAGGTCTTGCTGCAGGTAAACGTACTGAAGGTCTT\n>b\nNNNN\n")
    done = subprocess.run([sys.executable, "-m", "virnucpro", "predict", str(fasta), "-o", str(tmp_path / "out"),
                           *model_args, *extra], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1, 2), (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    if done.returncode == 1:
        assert done.stderr.startswith("virnucpro: error: ") and done.stderr.count("\n") == 1


# --- regression cases: crashers found by the fuzzers --------------------------------------------

def _crasher_cases():
    return sorted(CRASHERS.glob("*.json")) if CRASHERS.is_dir() else []


def _case_input(spec: dict) -> bytes:
    return bytes.fromhex(spec["input_hex"]) if "input_hex" in spec else spec["input"].encode()


@pytest.mark.parametrize("case", _crasher_cases(), ids=lambda p: p.stem)
def test_known_crashers(case, sources, capsys):
    """Each case (tests/data/fuzz_crashers/*.json): {"target": a Sources method, "input" (text) or
    "input_hex", "file" for the plot target, "found": what it raised}, or {"argv": [...]} for a whole
    command; every case must pass."""
    spec = json.loads(case.read_text())
    if "argv" in spec:
        with time_limit():
            code = main([arg.replace("{work}", str(sources.work)) for arg in spec["argv"]])
        err = capsys.readouterr().err
        assert "Traceback" not in err and code in (0, 1, 2), err
        assert code != 1 or (err.startswith("virnucpro: error: ") and err.count("\n") == 1), err
    elif spec["target"] == "plot":
        survives(lambda: sources.plot(spec["file"], _case_input(spec)))
    else:
        survives(lambda: getattr(sources, spec["target"])(_case_input(spec)))
