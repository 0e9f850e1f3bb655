"""--engine ray with CPU actors on a local Ray instance: result files identical to the local engine,
even when an actor is killed in the middle of the run (Ray restarts it and retries its block)."""

from __future__ import annotations

import json
import logging
import pickle
import sys
from pathlib import Path

import pytest
import torch
from conftest import GENOMES, READS, first_real_block, tiny_model_paths

from virnucpro.cli.main import main
from virnucpro.engine.devices import SetupError

ray = pytest.importorskip("ray")

from virnucpro.engine import ray_workers

FILES = ("prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv", "viral.fa",
         "embeddings.parquet")


@pytest.fixture
def inputs(tmp_path) -> list[str]:
    reads = tmp_path / "reads.fastq"
    reads.write_text("".join((READS).read_text().splitlines(True)[:1200]))
    return [str(reads), str(GENOMES / "phiX174_NC_001422.fa")]


def _run(inputs, out: Path, model_args, *extra) -> int:
    return main(["predict", *inputs, "-o", str(out), "--block-records", "37", "--write-hits", "--save-embeddings",
                 *model_args, *extra])


@pytest.mark.slow  # 18 s on a quiet machine, 77 s on a loaded one: starts a Ray cluster, kills an actor
def test_ray_with_a_killed_actor_equals_local_engine(inputs, model_args, tmp_path, monkeypatch):
    """No Ray running: the run starts a local instance with 2 CPU actors, one of which is killed
    with a block in flight, and shuts Ray down at the end."""
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    killed = []
    submit = ray_workers.RayWorker.submit

    def submit_then_kill(worker, block, want_features):
        reference = submit(worker, block, want_features)
        if block.index == 3:
            ray.kill(worker.actor, no_restart=False)
            killed.append(block.index)
        return reference

    monkeypatch.setattr(ray_workers.RayWorker, "submit", submit_then_kill)
    assert _run(inputs, tmp_path / "local", model_args) == 0
    assert not ray.is_initialized()
    assert _run(inputs, tmp_path / "ray", model_args, "--engine", "ray", "--workers", "2") == 0
    assert not ray.is_initialized()
    assert killed == [3]
    for name in FILES:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
    summary = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert summary["engine"] == "ray" and len(summary["devices"]) == 2


class _FakeRay:
    def __init__(self, resources: dict):
        self.resources = resources

    def cluster_resources(self) -> dict:
        return self.resources


@pytest.mark.parametrize("resources, args, expected", [
    ({"CPU": 4}, ("auto", None, 3), ["cpu"] * 3),
    ({"CPU": 4, "GPU": 8}, ("auto", None, 1), ["cuda"] * 8),
    ({"CPU": 4, "GPU": 8}, ("cuda", "2", 1), ["cuda"] * 2),
    ({"CPU": 4, "GPU": 8}, ("cpu", None, 2), ["cpu"] * 2),
])
def test_one_actor_per_cluster_gpu_or_per_cpu_worker(resources, args, expected):
    devices = ray_workers.RayEngine(_FakeRay(resources), logging.getLogger()).devices(*args)
    assert [d.type for d in devices] == expected


@pytest.mark.parametrize("resources, args, message", [
    ({"CPU": 2}, ("cpu", None, 3), "has 2 CPU(s)"),
    ({"CPU": 2}, ("cuda", None, 1), "no GPUs"),
    ({"CPU": 2, "GPU": 2}, ("auto", "4", 1), "has 2 GPU(s)"),
    ({"CPU": 2, "GPU": 2}, ("auto", "0,1", 1), "all or a number"),
    ({"CPU": 2, "GPU": 2}, ("cuda:1", None, 1), "use auto, cpu or cuda"),
])
def test_impossible_actor_requests_are_refused(resources, args, message):
    with pytest.raises(SetupError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ray_workers.RayEngine(_FakeRay(resources), logging.getLogger()).devices(*args)


def test_missing_ray_is_a_one_line_error(inputs, model_args, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert _run(inputs, tmp_path / "o", model_args, "--engine", "ray") == 1
    assert "pip install 'virnucpro[ray]'" in capsys.readouterr().err


def test_actor_that_cannot_load_the_models_says_why(tiny_models):
    """Models missing on an actor's node: a one-line reason from describe(), not a dead actor."""
    paths = {**tiny_model_paths(tiny_models), "classifier": tiny_models / "not-there.pth"}
    info = ray_workers.BlockActor(paths, "cpu", torch.float32).describe(None)
    assert "not-there.pth" in info.error and "\n" not in info.error


def test_actor_gets_a_slim_block_and_rebuilds_token_arrays(tiny_models):
    """Records, chunks and per-sequence token arrays stay on the driver; the actor restores the arrays."""
    block = first_real_block(tiny_models, 2048)
    slim = ray_workers._slim(block)
    assert len(pickle.dumps(slim)) < len(pickle.dumps(block)) / 2
    restored = ray_workers._with_token_arrays(pickle.loads(pickle.dumps(slim)))
    for before, after in zip(block.esm_batches + block.dnabert_batches, restored.esm_batches + restored.dnabert_batches):
        assert [a.tolist() for a in before.token_arrays] == [a.tolist() for a in after.token_arrays]
