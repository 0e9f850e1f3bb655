"""Each utility has one implementation (issue 17.4): the rules hold for every caller, and a second
copy cannot creep back in unnoticed."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
from conftest import GENOMES, REAL

import virnucpro
from virnucpro.fsutil import atomic
from virnucpro.fsutil.hashing import sha256_file
from virnucpro.models.manifest import FileRecord, HashStamps, Manifest
from virnucpro.outputs import formats
from virnucpro.outputs.results import ChunkResult, FrameScore, SequenceCall, SequenceResult
from virnucpro.outputs.tables import SequenceRow, read_sequences

PACKAGE = Path(virnucpro.__file__).parent


def _sources_matching(pattern: str) -> list[str]:
    """Package modules (relative paths) whose text matches `pattern`."""
    regex = re.compile(pattern, re.M | re.S)
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if regex.search(p.read_text()))


@pytest.mark.parametrize(("pattern", "home"), [
    (r"^def write_(json|bytes)_atomic\b", ["fsutil/atomic.py"]),
    (r"^def (sha256_file|file_sha256)\b", ["fsutil/hashing.py"]),
    (r"load_classifier\(.*save_classifier_safetensors\(", ["models/classifier.py"]),  # a conversion
    (r"from flash_attn import|find_spec\(\"flash_attn\"\)", ["models/attention.py"]),
    (r"weight_files\(path\)", ["models/hf_weights.py"]),  # reading an encoder's weight files
])
def test_a_utility_is_defined_in_one_module(pattern, home):
    assert _sources_matching(pattern) == home


def test_the_manifest_is_written_like_every_other_file(tmp_path, monkeypatch):
    """Exclusive temporary file (a planted link is not followed), fsync before the rename."""
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / f"manifest.json.{os.getpid()}.tmp").symlink_to(victim)  # the old fixed temporary name
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    Manifest(tmp_path, {"a.bin": FileRecord(3, "0" * 64)}, {"b": {"url": "u"}}).save()
    assert victim.read_text() == "keep" and synced
    text = (tmp_path / "manifest.json").read_text()
    assert text.index('"files"') < text.index('"format"') < text.index('"sources"')  # keys stay sorted
    assert Manifest.load(tmp_path).files == {"a.bin": FileRecord(3, "0" * 64)}


def test_hash_stamps_and_the_classifier_hash_agree_with_hashlib(tmp_path):
    data = os.urandom(3 << 20)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert sha256_file(path) == HashStamps(tmp_path / "stamps.json").sha256(path) == hashlib.sha256(data).hexdigest()


def test_a_sequences_row_is_the_call_the_writer_printed(tmp_path):
    """SequenceRow is a SequenceCall: read back, a row prints the same line again."""
    frames = [FrameScore("c1F1", 0.25, 0.75), FrameScore("c1R1", 0.5, 0.5)]
    result = SequenceResult("seq1", 600, [ChunkResult("c1", 0, 300, frames), ChunkResult("c2", 300, 600)])
    call = result.summarize()
    line = formats.sequence_line(result.record_id, result.length, call)
    table = tmp_path / "sequences.tsv"
    table.write_text(formats.SEQUENCES_HEADER + line)
    (row,) = read_sequences(table)
    assert isinstance(row, SequenceCall) and isinstance(row, SequenceRow)
    assert formats.sequence_line(row.sequence_id, row.length, row) == line


def test_the_genomes_are_stored_once():
    assert sorted(p.name for p in GENOMES.iterdir()) == sorted(
        p.name for p in (PACKAGE / "data" / "genomes").iterdir())
    assert not [p.name for p in REAL.iterdir() if p.suffix in (".fa", ".fna")]


def test_the_benchmarks_batch_with_the_engine():
    benchmarks = PACKAGE.parent / "benchmarks"
    own = [p.name for p in benchmarks.glob("*.py") if "def token_budget_batches" in p.read_text()]
    assert own == []


def test_fsutil_and_the_layers_below_the_pipeline_do_not_import_upwards():
    """fsutil sits below everything; models and tokenize read JSON through it, not through the pipeline."""
    upward = {"fsutil": r"from virnucpro\.(?!errors|fsutil)", "models": r"from virnucpro\.(pipeline|outputs|engine)",
              "tokenize": r"from virnucpro\.(pipeline|outputs|engine)"}
    for package, pattern in upward.items():
        regex = re.compile(pattern)
        assert [p.name for p in (PACKAGE / package).glob("*.py") if regex.search(p.read_text())] == [], package
