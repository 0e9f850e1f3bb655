"""--engine ray on a local Ray instance with CPU actors: result files identical to the local engine,
also when an actor is killed in the middle of a run."""

from __future__ import annotations

import json
import logging
import pickle
import sys
from pathlib import Path

import pytest

from virnucpro.cli.main import main

from conftest import REAL

ray = pytest.importorskip("ray")

from virnucpro.engine import ray_workers  # noqa: E402  (after the skip: imports nothing from Ray)

FILES = ("prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv", "viral.fa",
         "embeddings.parquet")


@pytest.fixture(scope="module", autouse=True)
def quiet_ray():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        patch.delenv("RAY_ADDRESS", raising=False)
        yield


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    reads = tmp_path_factory.mktemp("in") / "reads.fastq"
    reads.write_text("".join((REAL / "ERR266411_1.first1000.fastq").read_text().splitlines(True)[:1200]))
    return [str(reads), str(REAL / "phiX174_NC_001422.fa")]


def _run(inputs, out: Path, model_args, *extra) -> int:
    return main(["predict", *inputs, "-o", str(out), "--block-records", "37", "--write-hits", "--save-embeddings",
                 *model_args, *extra])


@pytest.fixture(scope="module")
def local(inputs, model_args, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    assert _run(inputs, out, model_args) == 0
    return out


def _same(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_own_local_ray_instance_equals_local_engine(inputs, model_args, local, tmp_path):
    """No Ray running: the run starts a local instance, uses 2 CPU actors and shuts Ray down."""
    assert not ray.is_initialized()
    assert _run(inputs, tmp_path / "ray", model_args, "--engine", "ray", "--workers", "2") == 0
    assert not ray.is_initialized()
    _same(local, tmp_path / "ray")
    summary = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert summary["engine"] == "ray" and len(summary["devices"]) == 2


@pytest.fixture(scope="module")
def ray_instance():
    """One small Ray for the remaining tests; runs use it as it is and leave it running."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 << 20,
             logging_level=logging.WARNING)
    yield
    ray.shutdown()


def test_killed_actor_is_restarted_and_its_block_retried(inputs, model_args, local, tmp_path, monkeypatch,
                                                         ray_instance):
    killed = []
    submit = ray_workers.RayWorker.submit

    def submit_then_kill(worker, block, want_features):
        reference = submit(worker, block, want_features)
        if block.index == 3:
            ray.kill(worker.actor, no_restart=False)  # dies with the block in flight
            killed.append(block.index)
        return reference

    monkeypatch.setattr(ray_workers.RayWorker, "submit", submit_then_kill)
    assert _run(inputs, tmp_path / "ray", model_args, "--engine", "ray", "--workers", "2") == 0
    assert killed == [3]
    _same(local, tmp_path / "ray")


def test_ray_option_errors_are_one_line(inputs, model_args, tmp_path, capsys, ray_instance):
    assert _run(inputs, tmp_path / "a", model_args, "--engine", "ray", "--workers", "3") == 1
    assert "the Ray cluster has 2 CPU(s)" in capsys.readouterr().err
    args = [a for a in model_args if a not in ("--device", "cpu")]
    assert _run(inputs, tmp_path / "b", args, "--engine", "ray", "--device", "cuda") == 1
    assert "has no GPUs" in capsys.readouterr().err


def test_missing_ray_is_a_one_line_error(inputs, model_args, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert _run(inputs, tmp_path / "o", model_args, "--engine", "ray") == 1
    assert "pip install 'virnucpro[ray]'" in capsys.readouterr().err


def test_actor_gets_a_slim_block_and_rebuilds_token_arrays(tiny_models):
    """Records, chunks and per-sequence token arrays stay on the driver; the actor restores the arrays."""
    from virnucpro.io import read_records
    from virnucpro.pipeline.blocks import BlockSettings, iter_blocks
    from virnucpro.pipeline.setup import tokenizer_for

    settings = BlockSettings(chunk_size=300, chunking="even", esm_batch_tokens=2048, dnabert_batch_tokens=2048)
    records = read_records([str(REAL / "ERR266411_1.first1000.fastq")])
    block = next(iter_blocks(records, settings, tokenizer_for(tiny_models / "dnabert-s")))
    slim = ray_workers._slim(block)
    assert len(pickle.dumps(slim)) < len(pickle.dumps(block)) / 2
    restored = ray_workers._with_token_arrays(pickle.loads(pickle.dumps(slim)))
    for before, after in zip(block.esm_batches + block.dnabert_batches, restored.esm_batches + restored.dnabert_batches):
        assert [a.tolist() for a in before.token_arrays] == [a.tolist() for a in after.token_arrays]
