"""The ramp of smaller first blocks: block k's size is a pure function of k and the settings, so
results stay byte-identical across worker counts, shards and resume with the ramp active."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GENOMES, READS

import virnucpro.pipeline.output_run as output_run_module
from virnucpro.cli.main import main
from virnucpro.io import read_records
from virnucpro.pipeline.blocks import BlockSettings, block_limits, iter_blocks
from virnucpro.tokenize.dnabert import DnabertTokenizer

FILES = ("prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv", "viral.fa")
SETTINGS = BlockSettings(chunk_size=300, chunking="even", batch_tokens=4096, block_records=32, block_bases=1 << 30)


def test_block_limits_ramp_up_then_stay_full():
    sizes = [block_limits(SETTINGS, k) for k in range(6)]
    assert [records for _, records in sizes] == [2, 4, 8, 16, 32, 32]
    assert [bases for bases, _ in sizes] == [(1 << 30) // d for d in (16, 8, 4, 2, 1, 1)]
    assert block_limits(BlockSettings(300, "even", 4096, block_records=3, ramp=(16,)), 0) == ((4 << 20) // 16, 1)


def _blocks(records, first_index=0, shard=None):
    return [(b.index, b.first_record, len(b.records)) for b in
            iter_blocks(iter(records), SETTINGS, DnabertTokenizer.default(), first_index=first_index, shard=shard)]


@pytest.fixture(scope="module")
def reads() -> list:
    return list(read_records([str(READS)]))[:150]


def test_first_blocks_ramp_up(reads):
    assert [count for _, _, count in _blocks(reads)] == [2, 4, 8, 16, 32, 32, 32, 24]


def test_a_resumed_stream_cuts_the_same_blocks(reads):
    blocks = _blocks(reads)
    for index, first_record, _ in blocks:
        assert _blocks(reads[first_record:], first_index=index) == blocks[index:]


def test_shards_see_the_same_boundaries(reads):
    blocks = _blocks(reads)
    assert sorted(_blocks(reads, shard=(1, 2)) + _blocks(reads, shard=(2, 2))) == blocks


def _args(inputs, out: Path, model_args, *extra) -> list[str]:
    return ["predict", *inputs, "-o", str(out), "--block-records", "32", "--write-hits", *model_args, *extra]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    reads = tmp_path_factory.mktemp("in") / "reads.fastq"
    reads.write_text("".join(READS.read_text().splitlines(True)[:4 * 250]))
    return [str(reads), str(GENOMES / "phiX174_NC_001422.fa")]


@pytest.fixture(scope="module")
def single(inputs, model_args, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    assert main(_args(inputs, out, model_args)) == 0
    return out


def _same(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_two_workers_equal_one(inputs, model_args, single, tmp_path):
    assert main(_args(inputs, tmp_path / "two", model_args, "--workers", "2")) == 0
    _same(single, tmp_path / "two")


def test_merged_shards_equal_one_run(inputs, model_args, single, tmp_path):
    shards = [tmp_path / f"shard{k}" for k in (1, 2)]
    for k, shard in enumerate(shards, 1):
        assert main(_args(inputs, shard, model_args, "--shard", f"{k}/2")) == 0
    assert main(["merge", *map(str, shards), "-o", str(tmp_path / "merged")]) == 0
    _same(single, tmp_path / "merged")


class _Crash(Exception):
    pass


@pytest.mark.parametrize("crash_after", [1, 3])  # inside the ramp: after its 1st and its 3rd block
def test_interrupted_and_resumed_equals_uninterrupted(inputs, model_args, single, tmp_path, monkeypatch,
                                                      crash_after):
    original, calls = output_run_module.checkpoint, []

    def crashing_checkpoint(*args, **kwargs):
        original(*args, **kwargs)
        calls.append(1)
        if len(calls) == crash_after:
            raise _Crash

    monkeypatch.setattr(output_run_module, "checkpoint", crashing_checkpoint)
    out = tmp_path / "out"
    with pytest.raises(_Crash):
        main(_args(inputs, out, model_args))
    monkeypatch.setattr(output_run_module, "checkpoint", original)
    assert main(_args(inputs, out, model_args, "--resume")) == 0
    _same(single, out)
