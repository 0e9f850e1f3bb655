"""Fuzzing the reader and frame selection: no crash but InputFormatError, no hang, invariants hold.

hypothesis always; a short bounded atheris (libFuzzer) run on the reader when atheris is installed
(`pip install atheris`; not a dependency).
"""

from __future__ import annotations

import gzip
import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virnucpro.errors import InputFormatError
from virnucpro.frames import chunk_records
from virnucpro.io import Record, read_records

FUZZ = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
_SEQUENCE = re.compile(r"[A-Za-z*.\-]*")  # empty records are yielded (they get a row)

# Pieces that make near-valid FASTA/FASTQ, so the fuzzer reaches deep parser states, plus raw bytes.
_PIECES = st.sampled_from([b">", b"@", b"+", b"\n", b"\r\n", b"\r", b" ", b"\t", b"ACGT", b"acgu", b"NNRY", b"*-.",
                           b"IIII", b"r1", b"r2", b"#", b"\x00", b"\xc3\xa9", b"\xff", b"1", b"<html>"])
_FILE_BYTES = st.one_of(st.lists(_PIECES, max_size=60).map(b"".join), st.binary(max_size=300))


def _read(data: bytes, suffix: str) -> list[Record]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        reader = read_records([path])
        records = list(reader)
        assert reader.stats.records == len(records)
        assert reader.stats.bases == sum(len(r.sequence) for r in records)
        return records


def _check_records(records: list[Record]) -> None:
    ids = [r.id for r in records]
    assert len(set(ids)) == len(ids)
    for index, record in enumerate(records):
        assert record.index == index
        assert record.id and not any(c.isspace() for c in record.id)
        assert _SEQUENCE.fullmatch(record.sequence), record.sequence


@FUZZ
@given(_FILE_BYTES, st.sampled_from([".fa", ".fq"]))
def test_reader_raises_only_input_format_errors(data, suffix):
    try:
        records = _read(data, suffix)
    except InputFormatError as error:
        assert "\n" not in str(error)
        return
    _check_records(records)


_COMPRESSORS = {".fa.gz": lambda data: gzip.compress(data, mtime=0), ".fa.zst": zstandard.compress}


@FUZZ
@given(_FILE_BYTES, st.floats(0, 1), st.sampled_from(sorted(_COMPRESSORS)))
def test_reader_on_truncated_compressed_files(data, keep, suffix):
    compressed = _COMPRESSORS[suffix](data)
    try:
        records = _read(compressed[: int(len(compressed) * keep)], suffix)
    except InputFormatError:
        return
    _check_records(records)


# --- frame selection against a plain-Python reference -----------------------------------------

_CODONS = {a + b + c: "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"[16 * i + 4 * j + k]
           for i, a in enumerate("TCAG") for j, b in enumerate("TCAG") for k, c in enumerate("TCAG")}
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _reference_frames(chunk_sequence: str) -> list[tuple[str, str, str]]:
    """(strand_frame, nucleotide, protein) of the kept frames, computed the slow, obvious way."""
    forward = chunk_sequence.upper().replace("U", "T")
    strands = (forward, forward.translate(_COMPLEMENT)[::-1])
    kept = []
    for strand, text in zip("FR", strands):
        for offset in range(3):
            codons = [text[i : i + 3] for i in range(offset, len(text) - 2, 3)]
            protein = "".join(_CODONS[c] for c in codons if c in _CODONS)
            if protein and "*" not in protein:
                nucleotide = text[offset : offset + min(1 + 3 * len(protein), len(text) - offset)]
                kept.append((f"{strand}{offset + 1}", nucleotide, protein))
    return kept


_BASES = st.text(alphabet="ACGTACGTACGTacgtUuNRY-*.", max_size=1500)


@FUZZ
@given(st.lists(_BASES, max_size=8), st.integers(3, 700), st.sampled_from(["even", "legacy"]))
def test_frame_selection_matches_the_reference(sequences, chunk_size, mode):
    records = [Record(f"rec{i}", seq, "fuzz", i) for i, seq in enumerate(sequences)]
    per_record = chunk_records(records, chunk_size, mode)
    assert len(per_record) == len(records)
    frame_ids = []
    for record, chunks in zip(records, per_record):
        if not record.sequence:
            assert chunks == []
            continue
        assert chunks[0].start == 0 and max(c.end for c in chunks) == len(record.sequence)
        for number, chunk in enumerate(chunks, 1):
            assert chunk.chunk_id == f"{record.id}_chunk_{number}" and chunk.record_id == record.id
            assert 0 < chunk.end - chunk.start <= chunk_size
            assert chunk.sequence == record.sequence[chunk.start : chunk.end]
            got = [(f.strand_frame, f.nucleotide, f.protein) for f in chunk.frames]
            assert got == _reference_frames(chunk.sequence)
            frame_ids += [f.frame_id for f in chunk.frames]
            assert all(f.frame_id == chunk.chunk_id + f.strand_frame for f in chunk.frames)
    assert len(set(frame_ids)) == len(frame_ids)


# --- atheris -----------------------------------------------------------------------------------

_ATHERIS_HARNESS = r'''
import sys, tempfile, os
import atheris
with atheris.instrument_imports():
    from virnucpro.errors import InputFormatError
    from virnucpro.io import read_records
path = os.path.join(tempfile.mkdtemp(), "input")

def one_input(data):
    with open(path, "wb") as handle:
        handle.write(data)
    try:
        for record in read_records([path]):
            assert record.id and record.sequence
    except InputFormatError:
        pass

atheris.Setup(sys.argv, one_input)
atheris.Fuzz()
'''


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
def test_atheris_reader_bounded_run(tmp_path):
    done = subprocess.run([sys.executable, "-c", _ATHERIS_HARNESS, "-runs=1500", "-max_total_time=8",
                           f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
