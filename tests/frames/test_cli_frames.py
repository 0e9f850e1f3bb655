"""`virnucpro frames` run in-process: outputs, exit codes, one-line errors."""

import gzip
from pathlib import Path

import pytest
import zstandard
from conftest import GENOMES
from conftest import REAL_INPUTS as REAL_FILES
from test_frames_translate import reference_frames

from virnucpro.cli.main import main
from virnucpro.frames import chunk_bounds
from virnucpro.io import read_records

REAL_INPUTS = [str(path) for path in REAL_FILES]  # every real genome and read file
OUTPUTS = ("chunks.fa", "nucleotide.fa", "protein.faa")


def read_fasta(path):
    lines = Path(path).read_text().splitlines()
    assert all(line.startswith(">") for line in lines[::2])  # one sequence line per record
    return list(zip((line[1:] for line in lines[::2]), lines[1::2]))


def run(args, capsys):
    code = main(["frames", *map(str, args)])
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, *words):
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("virnucpro: error:"), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("mode", ["even", "legacy"])
def test_every_real_file_matches_the_reference(tmp_path, capsys, mode):
    code, err = run([*REAL_INPUTS, "-o", tmp_path, "--chunk-size", "500", "--chunking", mode], capsys)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUTS)
    expected_chunks, expected_frames = [], []
    for record in read_records(REAL_INPUTS):
        for i, (start, end) in enumerate(chunk_bounds(len(record.sequence), 500, mode), 1):
            expected_chunks.append((f"{record.id}_chunk_{i}", record.sequence[start:end]))
            expected_frames += reference_frames(f"{record.id}_chunk_{i}", record.sequence[start:end])
    assert read_fasta(tmp_path / "chunks.fa") == expected_chunks
    assert read_fasta(tmp_path / "nucleotide.fa") == [(fid, nuc) for fid, nuc, _ in expected_frames]
    assert read_fasta(tmp_path / "protein.faa") == [(fid, prot) for fid, _, prot in expected_frames]


def test_compressed_and_stdin_inputs_give_the_same_outputs(tmp_path, capsys, monkeypatch):
    plain = GENOMES / "lambda_NC_001416.fa"
    assert run([plain, "-o", tmp_path / "plain"], capsys)[0] == 0
    packed = tmp_path / "lambda.fa.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    zst = tmp_path / "lambda.fa.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    assert run([packed, "-o", tmp_path / "gz"], capsys)[0] == 0
    assert run([zst, "-o", tmp_path / "zst"], capsys)[0] == 0
    for name in OUTPUTS:
        expected = (tmp_path / "plain" / name).read_bytes()
        assert (tmp_path / "gz" / name).read_bytes() == expected
        assert (tmp_path / "zst" / name).read_bytes() == expected


def test_stdin(tmp_path, capsys, monkeypatch):
    import io
    import sys

    data = (GENOMES / "phiX174_NC_001422.fa").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    assert run(["-", "-o", tmp_path / "stdin"], capsys)[0] == 0
    assert run([GENOMES / "phiX174_NC_001422.fa", "-o", tmp_path / "file"], capsys)[0] == 0
    for name in OUTPUTS:
        assert (tmp_path / "stdin" / name).read_bytes() == (tmp_path / "file" / name).read_bytes()


def test_empty_input_warns_and_writes_empty_files(tmp_path, capsys):
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    code, err = run([empty, "-o", tmp_path / "out"], capsys)
    assert code == 0 and "no sequences" in err
    assert all((tmp_path / "out" / name).read_text() == "" for name in OUTPUTS)


def test_empty_records_are_counted_in_the_log(tmp_path, capsys):
    path = tmp_path / "e.fa"
    path.write_text(">a\nACGTACGT\n>b\n>c\nGGG\n")
    code, err = run([path, "-o", tmp_path / "out"], capsys)
    assert code == 0 and "skipped 1 empty record" in err
    code, err = run([path, "-o", tmp_path / "out", "-qq"], capsys)
    assert code == 0 and err == ""


def test_missing_input(tmp_path, capsys):
    assert_one_line_error(*run([tmp_path / "missing.fa", "-o", tmp_path / "out"], capsys), "missing.fa")


def test_bad_input_leaves_no_output(tmp_path, capsys):
    good = tmp_path / "good.fa"
    good.write_text(">a\nACGTACGTAAAT\n")
    bad = tmp_path / "bad.fq"
    bad.write_text("@a\nACGT\n+\nIIII\n")  # repeats the ID of good.fa
    out = tmp_path / "out"
    assert_one_line_error(*run([good, bad, "-o", out], capsys), "bad.fq", "duplicate")
    assert list(out.iterdir()) == []


def test_quality_mismatch_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.fq"
    bad.write_text("@a\nACGT\n+\nIII\n")
    assert_one_line_error(*run([bad, "-o", tmp_path / "out"], capsys), "bad.fq", "line 4")


def test_a_planted_partial_link_is_refused_and_its_target_untouched(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("not yours\n")
    (out / "protein.faa.partial").symlink_to(target)
    code, err = run([GENOMES / "phiX174_NC_001422.fa", "-o", out], capsys)
    assert_one_line_error(code, err, "protein.faa.partial", "symbolic link")
    assert target.read_text() == "not yours\n"
    assert sorted(p.name for p in out.iterdir()) == ["protein.faa.partial"]  # the two it made are gone


def test_output_directory_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, err = run([GENOMES / "phiX174_NC_001422.fa", "-o", blocker / "out"], capsys)
    assert_one_line_error(code, err, "output directory")


def test_bad_chunk_size_is_a_usage_error(tmp_path, capsys):
    code, err = run([GENOMES / "phiX174_NC_001422.fa", "-o", tmp_path, "--chunk-size", "0"], capsys)
    assert code == 2 and "Traceback" not in err
