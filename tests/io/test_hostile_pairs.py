"""Hostile paired input (#19): mates with 1 MB IDs, a gzip mate cut short, interleaved stdin cut
mid-pair. Memory stays bounded by the batch, not by the ID length times the batch; what is kept per
pair is the duplicate check's 8-byte hash (io/duplicates.py), which uniqueness needs."""

from __future__ import annotations

import gzip
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from virnucpro.errors import InputFormatError
from virnucpro.io import open_input

READ = "ATGGCTAAAGGTCTTGCTGCAGGTAAACGTACTGAAGGT"


def _fastq(ids) -> bytes:
    return "".join(f"@{i}\n{READ}\n+\n{'I' * len(READ)}\n" for i in ids).encode()


def _read_all(paths, **how) -> int:
    reader = open_input(paths, **how)
    try:
        reader.check_first_records()
        return sum(1 for _ in reader)
    finally:
        reader.close()


def test_long_mate_ids_are_not_kept_by_the_batch(tmp_path):
    """1,500 pairs with 16 KB IDs: the pair batch (512 IDs) and the duplicate check's recent IDs
    (up to 131,072) once kept every ID whole (512 x 1 MB IDs = 512 MB in the batch alone); now the
    batch is bounded in characters and the check keeps 200 characters of each. What remains is the
    reader's group of 512 records (io/reader.py), freed group by group."""
    long_id = "x" * (16 << 10)
    path = tmp_path / "i.fq"
    path.write_bytes(_fastq(f"{long_id}{n // 2}/{1 + n % 2}" for n in range(3000)))
    tracemalloc.start()
    try:
        assert _read_all([path], interleaved=True) == 3000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30 << 20, peak  # was ~50 MB, growing with the number of pairs


def test_a_repeat_among_long_ids_is_still_named(tmp_path):
    long_id = "y" * 5000
    path = tmp_path / "i.fq"
    path.write_bytes(_fastq([f"{long_id}/1", f"{long_id}/2", f"{long_id}/1", f"{long_id}/2"]))
    with pytest.raises(InputFormatError, match="duplicate record ID 'yyyy") as error:
        _read_all([path], interleaved=True)
    assert len(str(error.value)) < 600 and "\n" not in str(error.value)


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.99])
def test_a_gzip_mate_cut_short_is_one_line(tmp_path, cut):
    r1, r2 = tmp_path / "r1.fq", tmp_path / "r2.fq.gz"
    r1.write_bytes(_fastq(f"p{n}/1" for n in range(2000)))
    whole = gzip.compress(_fastq(f"p{n}/2" for n in range(2000)))
    r2.write_bytes(whole[: int(len(whole) * cut)])
    with pytest.raises(InputFormatError) as error:
        _read_all([r1, r2], paired=True)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("tail", [b"", b"@p1/2\nACG", b"@p1/2\n"])
def test_interleaved_stdin_cut_mid_pair_is_one_line(tail):
    """A pipe that ends after mate 1 (or inside mate 2): one line, non-zero, no traceback."""
    data = _fastq(["p0/1", "p0/2", "p1/1"]) + tail
    code = ("import sys\nfrom virnucpro.errors import VirnucproError\nfrom virnucpro.io import open_input\n"
            "reader = open_input(['-'], interleaved=True)\n"
            "try:\n    print(sum(1 for _ in reader))\nexcept VirnucproError as e:\n"
            "    print('virnucpro: error:', e, file=sys.stderr); sys.exit(1)\n")
    done = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in err and err.count("\n") == 1, err


def test_many_tiny_pairs_keep_memory_flat(tmp_path):
    """40,000 pairs: peak traced memory grows by the 8-byte hash per pair, nothing per pair else."""
    def peak(pairs: int) -> int:
        path = tmp_path / f"{pairs}.fq"
        path.write_bytes(_fastq(f"r{n // 2}/{1 + n % 2}" for n in range(2 * pairs)))
        tracemalloc.start()
        try:
            assert _read_all([path], interleaved=True) == 2 * pairs
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(5_000), peak(40_000)
    assert large - small < 35_000 * 8 + (4 << 20), (small, large)
