"""--min-length: a too_short record gets its sequences.tsv row from its chunk count alone, so its
frames are not embedded at all; the result files are those of a run that embedded them."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from conftest import GENOMES, RESULT_FILES_WITH_REGIONS

from virnucpro.cli.main import main
from virnucpro.pipeline.options import RunOptions


def _input(tmp_path: Path) -> Path:
    """Records of 80 bp to 6 kb (part of lambda among them), about half under 1500 bp, and 30 reads
    (too short; shorter frames than the chunks of 300 bp, so length-sorted batches of their own)."""
    lam = "".join(line.strip() for line in (GENOMES / "lambda_NC_001416.fa").read_text().splitlines()[1:])
    rng = random.Random(8)
    records = [(f"r{i}", lam[i * 700:i * 700 + length])
               for i, length in enumerate([80, 6000, 1499, 1500, 300, 4000, 900, 2500, 150, 3000])]
    records.append(("random", "".join(rng.choices("ACGT", k=1200))))
    records += [(f"read{i}", "".join(rng.choices("ACGT", k=rng.randrange(90, 160)))) for i in range(30)]
    path = tmp_path / "mixed.fa"
    path.write_text("".join(f">{name}\n{sequence}\n" for name, sequence in records))
    return path


def _run(fasta: Path, out: Path, model_args: list[str]) -> dict:
    assert main(["predict", str(fasta), "-o", str(out), "--min-length", "1500", "--write-hits",
                 "--save-embeddings", "--threshold", "0.45", "--batch-tokens", "2048", *model_args]) == 0
    return json.loads((out / "run.json").read_text())


def _count(summary: dict, name: str) -> int:
    return next(value for key, value in _walk(summary) if key == name)


def _walk(data):
    for key, value in data.items():
        yield key, value
        if isinstance(value, dict):
            yield from _walk(value)


@pytest.mark.parametrize("long_records", [False, True])
def test_too_short_records_are_not_embedded_and_the_files_are_the_same(tmp_path, monkeypatch, model_args,
                                                                       long_records):
    """long_records: records over 1000 bp are cut into work blocks of their own (pieces), so a
    too_short record (1499 bp) takes that path too."""
    fasta = _input(tmp_path)
    embedded_all = tmp_path / "embedded_all"
    if long_records:
        settings = RunOptions.block_settings
        monkeypatch.setattr(RunOptions, "block_settings", lambda options, tokens: dataclasses.replace(
            settings(options, tokens), block_bases=1200, long_record_bases=1000))
    original = RunOptions.block_settings
    with monkeypatch.context() as patch:  # the blocks of before: every record's frames embedded
        patch.setattr(RunOptions, "block_settings", lambda options, tokens: _no_skip(original(options, tokens)))
        before = _run(fasta, embedded_all, model_args)
    skipped = _run(fasta, tmp_path / "skipped", model_args)
    calls = [line.split("\t")[-1] for line in (embedded_all / "sequences.tsv").read_text().splitlines()[1:]]
    assert calls.count("too_short") == 36 and len(calls) == 41
    assert 0 < _count(skipped, "frames_this_session") < _count(before, "frames_this_session")
    for name in RESULT_FILES_WITH_REGIONS:
        assert (tmp_path / "skipped" / name).read_bytes() == (embedded_all / name).read_bytes(), name
    import pyarrow.parquet as pq  # the saved embeddings: those of the frames in prediction_results.txt

    frame_ids = [line.split("\t")[0] for line in (embedded_all / "prediction_results.txt").read_text().splitlines()[1:]]
    assert pq.read_table(tmp_path / "skipped" / "embeddings.parquet").column("id").to_pylist() == frame_ids


def _no_skip(settings):
    return dataclasses.replace(settings, min_length=0) if hasattr(settings, "min_length") else settings
