"""Scale-out on the CPU: 1 vs 2 workers and merged shards give byte-identical result files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GENOMES, READS

from virnucpro.cli.main import main
from virnucpro.engine.devices import SetupError, _gpu_indices

FILES = ("prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv", "viral.fa",
         "regions.tsv", "regions.fa", "virus_summary.tsv")
# the tiny random classifier scores chunks near 0.435; with free switches and no minimum size, every
# read or stretch above it is a region, so regions.tsv has rows in every block
REGIONS_IN_EVERY_BLOCK = ("--threshold", "0.435", "--region-length", "1", "--min-region-length", "0",
                          "--min-region-chunks", "1")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    reads = tmp_path_factory.mktemp("in") / "reads.fastq"
    reads.write_text("".join((READS).read_text().splitlines(True)[:1600]))
    return [str(reads), str(GENOMES / "phiX174_NC_001422.fa")]


def _run(inputs, out: Path, model_args, *extra) -> None:
    assert main(["predict", *inputs, "-o", str(out), "--block-records", "37", "--write-hits", *REGIONS_IN_EVERY_BLOCK,
                 *model_args, *extra]) == 0


@pytest.fixture(scope="module")
def single(inputs, model_args, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    _run(inputs, out, model_args)
    return out


def _same(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_the_single_run_has_regions_to_merge(single):
    assert len((single / "regions.tsv").read_text().splitlines()) > 100
    assert len((single / "virus_summary.tsv").read_text().splitlines()) > 100


def test_two_workers_equal_one(inputs, model_args, single, tmp_path):
    _run(inputs, tmp_path / "two", model_args, "--workers", "2")
    _same(single, tmp_path / "two")


def test_merged_shards_equal_one_run(inputs, model_args, single, tmp_path):
    shards = [tmp_path / f"shard{k}" for k in (1, 2, 3)]
    for k, shard in enumerate(shards, 1):
        _run(inputs, shard, model_args, "--shard", f"{k}/3")
    assert main(["merge", *map(str, reversed(shards)), "-o", str(tmp_path / "merged")]) == 0
    _same(single, tmp_path / "merged")
    merged, one = (json.loads((d / "run.json").read_text())["counts"] for d in (tmp_path / "merged", single))
    assert merged == {"records": one["records"], "calls": one["calls"], "regions": one["regions"]}


def test_merge_refuses_incomplete_or_mixed_shards(inputs, model_args, tmp_path, capsys):
    _run(inputs, tmp_path / "a", model_args, "--shard", "1/2")
    assert main(["merge", str(tmp_path / "a"), "-o", str(tmp_path / "m")]) == 1
    assert "missing [2]" in capsys.readouterr().err
    _run(inputs, tmp_path / "b", model_args, "--shard", "2/2", "--threshold", "0.3")
    assert main(["merge", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "m")]) == 1
    assert "different" in capsys.readouterr().err
    assert main(["merge", str(tmp_path), "-o", str(tmp_path / "m")]) == 1


@pytest.mark.parametrize("text", ["0/2", "3/2", "x", "1/0"])
def test_bad_shard_is_refused(inputs, model_args, tmp_path, capsys, text):
    assert main(["predict", *inputs, "-o", str(tmp_path / "o"), "--shard", text, *model_args]) == 1
    assert "--shard" in capsys.readouterr().err


def test_gpu_selection_parsing():
    assert _gpu_indices("all", 4) == [0, 1, 2, 3]
    assert _gpu_indices("2", 4) == [0, 1]
    assert _gpu_indices("0,2", 4) == [0, 2]
    for bad in ("x", "0,0", "", "-1"):
        with pytest.raises(SetupError):
            _gpu_indices(bad, 4)


def test_an_embed_shard_finishes_without_a_shard_log(inputs, model_args, tmp_path):
    """embed --shard writes its blocks' parquet; shard.json (for merge's result files) is predict's only."""
    out = tmp_path / "part1.parquet"
    assert main(["embed", *inputs, "-o", str(out), "--block-records", "37", "--shard", "1/2", *model_args]) == 0
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["part1.parquet"]
