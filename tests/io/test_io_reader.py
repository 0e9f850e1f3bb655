"""Streaming FASTA/FASTQ input: formats, compression, stdin, stats, progress and one-line errors."""

import bz2
import gzip
import io
import lzma
import os
import random
import shutil
import subprocess
import sys
import threading

import pytest
import zstandard
from conftest import GENOMES, READS, REAL_INPUTS
from hypothesis import given, settings
from hypothesis import strategies as st

from virnucpro.errors import InputFormatError
from virnucpro.io import Record, batch_records, read_records
from virnucpro.io import sources
from virnucpro.io.duplicates import DuplicateIdCheck
from virnucpro.io.sources import is_stream

COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
               ".zst": lambda data: zstandard.ZstdCompressor().compress(data)}


def write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def ids(paths):
    return [r.id for r in read_records(paths)]


def test_fasta_multiline_crlf_and_ids(tmp_path):
    path = write(tmp_path / "a.fa", ">x1 description here\r\nACGT\r\nacgt\r\n>x2\tmore\r\nGG\r\n")
    records = list(read_records([path]))
    assert [(r.id, r.sequence, r.index) for r in records] == [("x1", "ACGTacgt", 0), ("x2", "GG", 1)]
    assert records[0].source == str(path)


def test_fastq_with_crlf(tmp_path):
    path = write(tmp_path / "r.fq", "@q1 extra\r\nACGTN\r\n+\r\nIIIII\r\n@q2\r\nTT\r\n+q2\r\nII\r\n")
    assert [(r.id, r.sequence) for r in read_records([path])] == [("q1", "ACGTN"), ("q2", "TT")]


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_inputs_read_like_plain(tmp_path, suffix):
    plain = GENOMES / "phiX174_NC_001422.fa"
    packed = write(tmp_path / f"phix.fa{suffix}", COMPRESSORS[suffix](plain.read_bytes()))
    assert [(r.id, r.sequence) for r in read_records([packed])] == [(r.id, r.sequence) for r in read_records([plain])]


def test_compression_is_detected_from_content_not_name(tmp_path):
    packed = write(tmp_path / "reads.txt", gzip.compress(b"@a\nACGT\n+\nIIII\n"))
    assert ids([packed]) == ["a"]


def test_several_inputs_in_order_and_stats(tmp_path):
    one = write(tmp_path / "1.fa", ">a\nACGT\n>empty\n>b\nGG\n")
    two = write(tmp_path / "2.fq", "@c\nTTT\n+\nIII\n@blank\n\n+\n\n")
    reader = read_records([one, two])
    records = list(reader)
    # empty records are yielded (they get a row) and counted by `index` like any other
    assert [(r.id, r.sequence, r.index) for r in records] == [
        ("a", "ACGT", 0), ("empty", "", 1), ("b", "GG", 2), ("c", "TTT", 3), ("blank", "", 4)]
    assert (reader.stats.records, reader.stats.empty, reader.stats.bases) == (5, 2, 9)


def test_progress_counts_compressed_bytes(tmp_path):
    path = write(tmp_path / "x.fa.gz", gzip.compress("".join(f">a{i}\nACGT\n" for i in range(1000)).encode()))
    reader = read_records([path])
    assert reader.bytes_total == path.stat().st_size and reader.bytes_done == 0
    next(reader)
    assert 0 < reader.bytes_done <= reader.bytes_total
    list(reader)
    assert reader.bytes_done == reader.bytes_total


def test_stdin(monkeypatch):
    data = gzip.compress(b">s1\nACGT\n>s2\nTTTT\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    reader = read_records(["-"])
    assert [r.id for r in reader] == ["s1", "s2"]
    assert reader.bytes_total is None


def test_empty_file_gives_no_records(tmp_path):
    reader = read_records([write(tmp_path / "e.fa", b"")])
    assert list(reader) == [] and reader.stats.records == 0


def test_all_real_files_parse():
    reader = read_records(REAL_INPUTS)
    records = list(reader)
    assert len(records) == 1000 + 9
    assert all(set(r.sequence) <= set("ACGTN") for r in records)  # CRLF files: no '\r' left


def error_of(paths):
    with pytest.raises(InputFormatError) as caught:
        list(read_records(paths))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert "not found" in error_of([tmp_path / "nope.fa"]) and "nope.fa" in error_of([tmp_path / "nope.fa"])


def test_not_fasta_or_fastq(tmp_path):
    message = error_of([write(tmp_path / "x.fa", "hello world\n")])
    assert "x.fa" in message and "not FASTA or FASTQ" in message


def test_binary_junk(tmp_path):
    assert "x.fa" in error_of([write(tmp_path / "x.fa", bytes(range(256)))])
    assert "not FASTA or FASTQ" in error_of([write(tmp_path / "y.fa", b"\x7fELF\x02\x01\x01")])
    assert "binary" in error_of([write(tmp_path / "z.fa", b">a\nACGT\xff\xfe\n")])
    message = error_of([write(tmp_path / "w.fa", b">a\nACGT\n>b\nAC\x00\x01GT\n")])
    assert "'b'" in message and "w.fa" in message


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_truncated_compressed_file(tmp_path, suffix):
    data = COMPRESSORS[suffix]((GENOMES / "lambda_NC_001416.fa").read_bytes())
    message = error_of([write(tmp_path / f"cut.fa{suffix}", data[: len(data) // 2])])
    assert f"cut.fa{suffix}" in message and "truncated" in message


def test_corrupt_gzip(tmp_path):
    assert "corrupt" in error_of([write(tmp_path / "bad.fa.gz", b"\x1f\x8b\x08\x00" + b"junk" * 20)])


def test_fastq_quality_length_mismatch(tmp_path):
    message = error_of([write(tmp_path / "q.fq", "@ok\nAC\n+\nII\n@bad\nACGT\n+\nIII\n")])
    assert "q.fq" in message and "line 8" in message and "'ok'" in message


def test_truncated_fastq(tmp_path):
    message = error_of([write(tmp_path / "t.fq", "@a\nACGT\n+\nIIII\n@b\nACGT\n")])
    assert "t.fq" in message


def test_duplicate_ids_in_one_file(tmp_path):
    message = error_of([write(tmp_path / "d.fa", ">a x\nAC\n>b\nGG\n>a y\nTT\n")])
    assert "duplicate record ID 'a'" in message and "d.fa" in message


def test_duplicate_ids_across_files(tmp_path):
    one = write(tmp_path / "1.fa", ">a\nAC\n")
    two = write(tmp_path / "2.fa", ">b\nAC\n>a\nGG\n")
    message = error_of([one, two])
    assert "'a'" in message and "2.fa" in message


def test_duplicate_check_across_flushed_batches():
    check = DuplicateIdCheck(batch_size=4)
    for i in range(10):
        check.add(f"id{i}", "f.fa")
    check.add("other", "f.fa")
    with pytest.raises(InputFormatError, match="'id1'"):
        check.add("id1", "f.fa")
        check.flush("f.fa")


def test_same_file_twice_is_a_duplicate(tmp_path):
    path = write(tmp_path / "a.fa", ">a\nAC\n")
    assert "duplicate" in error_of([path, path])


def test_batches_bound_bases_and_records(tmp_path):
    path = write(tmp_path / "b.fa", "".join(f">r{i}\n{'A' * 10}\n" for i in range(25)))
    sizes = [len(batch) for batch in batch_records(read_records([path]), max_bases=35, max_records=100)]
    assert sizes == [4, 4, 4, 4, 4, 4, 1]
    sizes = [len(batch) for batch in batch_records(read_records([path]), max_bases=10**6, max_records=10)]
    assert sizes == [10, 10, 5]


def test_real_fastq_copy_under_gzip(tmp_path):
    packed = tmp_path / "reads.fastq.gz"
    with open(READS, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert len(ids([packed])) == 1000


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 500), max_size=200), st.integers(1, 2000), st.integers(1, 50))
def test_batches_keep_every_record_in_order(lengths, max_bases, max_records):
    records = [Record(f"r{i}", "A" * n, "x", i) for i, n in enumerate(lengths)]
    batches = list(batch_records(records, max_bases=max_bases, max_records=max_records))
    assert [r for batch in batches for r in batch] == records
    assert all(0 < len(batch) <= max_records for batch in batches)
    for batch in batches[:-1]:  # only the last batch may be small
        assert len(batch) == max_records or sum(len(r.sequence) for r in batch) >= max_bases


def test_named_pipe_input(tmp_path):
    fifo = tmp_path / "reads.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(gzip.compress(b">p1\nACGT\n")))
    writer.start()
    reader = read_records([fifo])
    assert [(r.id, reader.bytes_done) for r in reader] == [("p1", 0)] and reader.bytes_total is None
    writer.join()


def test_directory_is_not_an_input(tmp_path):
    assert "is a directory" in error_of([tmp_path])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=1, max_size=150), st.integers(1, 2000), st.integers(1, 50))
def test_batches_after_a_boundary_do_not_depend_on_what_came_before(lengths, max_bases, max_records):
    """A run resumed at a batch boundary must cut the rest of the input the same way."""
    records = [Record(f"r{i}", "A" * n, "x", i) for i, n in enumerate(lengths)]
    batches = list(batch_records(records, max_bases=max_bases, max_records=max_records))
    resumed_at = len(batches[0])
    assert list(batch_records(records[resumed_at:], max_bases=max_bases, max_records=max_records)) == batches[1:]


def test_reader_closed_early_reports_nothing(tmp_path, monkeypatch):
    """A consumer that stops early must not leave an 'Exception ignored' traceback behind when
    the half-read file is closed, even when a parser closed the file object first (seen on the
    GPU machine at the end of every run)."""
    import gc
    import sys as _sys

    from virnucpro.io.reader import RecordReader

    path = tmp_path / "reads.fa"
    path.write_text("".join(f">r{i}\nACGT\n" for i in range(10)))
    unraisable = []
    monkeypatch.setattr(_sys, "unraisablehook", unraisable.append)
    reader = RecordReader([str(path)])
    records = iter(reader)
    next(records)
    reader._current.close()  # as dnaio/xopen may do when their context ends
    del records, reader
    gc.collect()
    assert unraisable == []


# --- inputs that can be read only once: the start-up check must not eat them (issue #15.1) ---

def _many_reads(count: int = 6000) -> bytes:
    """gzip-compressed FASTQ larger than what the start-up check reads (random bases: ~200 kB)."""
    rng = random.Random(15)
    return gzip.compress("".join(f"@s{i}\n{''.join(rng.choices('ACGT', k=80))}\n+\n{'I' * 80}\n"
                                 for i in range(count)).encode())


_COUNT_AFTER_CHECK = ("import sys; from virnucpro.io import read_records; reader = read_records(sys.argv[1:]); "
                      "reader.check_first_records(); print(len(list(reader)), reader.streams)")


@pytest.mark.parametrize("form", ["-", "/dev/stdin", "process substitution"])
def test_stdin_and_process_substitution_are_read_whole_after_the_check(tmp_path, form):
    """A real pipe, as `zcat x.gz | virnucpro ... -`, `... /dev/stdin` or `... <(zcat x.gz)` gives it."""
    packed = write(tmp_path / "reads.fq.gz", _many_reads())
    if form == "process substitution":
        command = ["bash", "-c", f'"$0" -c "$1" <(cat {packed})', sys.executable, _COUNT_AFTER_CHECK]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    else:
        with open(packed, "rb") as data:
            feeder = subprocess.Popen(["cat"], stdin=data, stdout=subprocess.PIPE)
            done = subprocess.run([sys.executable, "-c", _COUNT_AFTER_CHECK, form], stdin=feeder.stdout,
                                  capture_output=True, text=True, timeout=60, check=False)
            feeder.wait()
    assert done.returncode == 0, done.stderr
    count, streams = done.stdout.split(maxsplit=1)
    assert count == "6000" and streams.strip() != "[]"


def _fifo_with(tmp_path, data: bytes, pieces: int = 1):
    """A named FIFO and a thread writing `data` into it in `pieces` writes."""
    fifo = tmp_path / "reads.fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb", buffering=0) as handle:
            step = -(-len(data) // pieces)
            for start in range(0, len(data), step):
                handle.write(data[start:start + step])

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    return fifo, writer


def test_named_fifo_is_read_whole_after_the_check(tmp_path):
    fifo, writer = _fifo_with(tmp_path, _many_reads(), pieces=50)  # small writes: short pipe reads
    reader = read_records([fifo])
    reader.check_first_records()
    assert len(list(reader)) == 6000 and reader.streams == [str(fifo)] and reader.bytes_total is None
    writer.join()


def test_stream_checked_past_the_probe_limit_loses_nothing(tmp_path, monkeypatch):
    """A first group larger than the recording limit: the check gives up, the run reads every byte."""
    monkeypatch.setattr(sources, "PROBE_LIMIT", 1000)
    data = "".join(f">r{i}\n{'ACGT' * 50}\n" for i in range(600)).encode()
    fifo, writer = _fifo_with(tmp_path, data)
    reader = read_records([fifo])
    reader.check_first_records()
    assert [r.index for r in reader] == list(range(600))
    writer.join()


def test_wrong_stream_fails_at_the_check(tmp_path):
    fifo, writer = _fifo_with(tmp_path, b"hello world\n")
    with pytest.raises(InputFormatError, match="not FASTA or FASTQ"):
        read_records([fifo]).check_first_records()
    writer.join()


def test_a_regular_file_is_not_a_stream(tmp_path):
    path = write(tmp_path / "a.fa", ">a\nACGT\n")
    assert not is_stream(str(path)) and is_stream("-")
    reader = read_records([path])
    reader.check_first_records()
    assert ids([path]) == ["a"] and [r.id for r in reader] == ["a"] and reader.streams == []


# --- input that is not what it claims (issue #16.6) ---

def test_protein_is_refused_but_nucleotides_with_iupac_codes_or_masks_pass(tmp_path):
    rng = random.Random(16)
    reads = []
    for i in range(200):  # short reads, each with two IUPAC codes and a few Ns
        bases = rng.choices("ACGT", k=150)
        for position, code in zip(rng.sample(range(150), 5), [*rng.choices("RYSWKMBDHV", k=2), "N", "N", "N"]):
            bases[position] = code
        reads.append(f"@r{i}\n{''.join(bases)}\n+\n{'I' * 150}\n")
    assert len(ids([write(tmp_path / "iupac.fq", "".join(reads))])) == 200
    masked = ">x_masked\n" + "ACGU" * 100 + "X" * 900 + "\n"  # X-masked RNA: X is no amino-acid-only letter
    assert ids([write(tmp_path / "masked.fa", masked)]) == ["x_masked"]
    protein = ">p\nMKVLAAGIVGALLAVSQAEIRTPQDWLNK\n"
    message = error_of([write(tmp_path / "p.fa", protein)])
    assert "p.fa: looks like protein" in message and "first 29 letters" in message


def test_compression_comes_from_the_content_even_when_the_name_lies(tmp_path):
    assert ids([write(tmp_path / "plain.fa.gz", ">a\nACGT\n")]) == ["a"]
    assert ids([write(tmp_path / "packed.fa.bz2", gzip.compress(b">b\nACGT\n"))]) == ["b"]


@pytest.mark.parametrize("suffix", ["", *sorted(COMPRESSORS)])
def test_utf8_bom_is_skipped(tmp_path, suffix):
    data = b"\xef\xbb\xbf>a\nACGT\n"
    path = write(tmp_path / f"bom.fa{suffix}", COMPRESSORS[suffix](data) if suffix else data)
    assert ids([path]) == ["a"]


def test_gzip_trailing_data_names_the_last_record_and_keeps_the_records_before(tmp_path):
    members = gzip.compress(b">a\nACGT\n") + gzip.compress(b">b\nGG\n>c\nTT\n")
    path = write(tmp_path / "t.fa.gz", members + b"\x00\x00" + b"junk")  # zero padding, then junk
    reader = read_records([path])
    seen = []
    with pytest.raises(InputFormatError) as caught:
        seen.extend(r.id for r in reader)
    assert seen == ["a", "b", "c"]
    assert "trailing data after the last complete gzip member" in str(caught.value)
    assert "after record 'c'" in str(caught.value)
    assert ids([write(tmp_path / "padded.fa.gz", members + b"\x00" * 8)]) == ["a", "b", "c"]  # padding is fine


def test_nul_in_a_header_is_named_as_such(tmp_path):
    message = error_of([write(tmp_path / "n.fa", b">a\nACGT\n>b\x00x\nACGT\n>b\x00y\nACGT\n")])
    assert "record 2" in message and "NUL byte" in message and "duplicate" not in message


@pytest.mark.parametrize(("data", "expected"), [
    (gzip.compress(b"BAM\x01" + bytes(8)), "gzip-compressed, but not FASTA or FASTQ: this looks like a BAM file"),
    (b"PK\x03\x04" + bytes(40), "a ZIP archive"),
    (b"%PDF-1.7\n", "a PDF document"),
    (b"@HD\tVN:1.6\tSO:unsorted\n@SQ\tSN:chr1\tLN:10\n", "a SAM file: convert it with `samtools fasta`"),
    (b"\n<!DOCTYPE html>\n<html>", "an HTML page"),
    (lzma.compress(bytes(range(256))), "xz-compressed, but not FASTA or FASTQ: this looks like binary data"),
    (bz2.compress(b"hello\n"), "bzip2-compressed, but not FASTA or FASTQ (starts with b'h'"),
])
def test_what_a_non_fasta_input_looks_like(tmp_path, data, expected):
    message = error_of([write(tmp_path / "x.fa", data)])
    assert "x.fa" in message and expected in message and "\\x" not in message.split("looks like")[-1]


def test_a_stream_given_twice_is_refused(tmp_path):
    fifo = tmp_path / "reads.fifo"
    os.mkfifo(fifo)
    assert "given twice" in error_of([fifo, fifo])
    assert "<stdin> is given twice" in error_of(["-", "-"])
