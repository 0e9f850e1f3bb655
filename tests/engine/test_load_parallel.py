"""Loading in parallel (DNABERT-S and the classifier on a thread while ESM-2 loads) gives the same
weights bit for bit as loading one after the other; each load phase is timed for run.json; the
compile caches persist under the virnucpro cache directory unless the user chose their own."""

from __future__ import annotations

import json
import os

import pytest
import torch
from conftest import READS, tiny_model_paths

from virnucpro.cli.main import main
from virnucpro.engine.compile_cache import compile_cache_dirs, use_persistent_compile_caches
from virnucpro.engine.encoders import _SideLoad, load_encoders
from virnucpro.engine.threads import lingering, start_thread
from virnucpro.errors import ModelLoadError
from virnucpro.models.classifier import load_classifier
from virnucpro.models.dnabert_loader import load_dnabert
from virnucpro.models.esm2_loader import load_esm2


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    left, right = a.state_dict(), b.state_dict()
    assert left.keys() == right.keys()
    for key in left:
        assert left[key].dtype == right[key].dtype and torch.equal(left[key], right[key]), key


def test_the_dnabert_thread_loads_the_weights_of_the_sequential_load(tiny_models):
    path = tiny_model_paths(tiny_models)["dnabert"]
    model, phases = _SideLoad(path, torch.device("cpu"), torch.float32).result()
    _same_state(model, load_dnabert(path, "cpu", torch.float32))
    assert set(phases) == {"dnabert_load_parallel"}
    assert not lingering()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_on_a_gpu_the_parallel_load_gives_the_sequential_weights(tiny_models, dtype):
    paths, device = tiny_model_paths(tiny_models), torch.device("cuda")  # no index, as a caller may pass
    phases: dict[str, float] = {}
    encoders, _ = load_encoders(paths, device, dtype, phases)
    assert "dnabert_load_parallel" in phases
    _same_state(encoders.dnabert, load_dnabert(paths["dnabert"], device, dtype))
    _same_state(encoders.esm, load_esm2(paths["esm2"], device, dtype))
    assert not lingering()


def test_the_loaded_models_are_those_of_the_plain_loaders(tiny_models):
    paths = tiny_model_paths(tiny_models)
    phases: dict[str, float] = {}
    encoders, info = load_encoders(paths, torch.device("cpu"), torch.float32, phases)
    _same_state(encoders.dnabert, load_dnabert(paths["dnabert"], "cpu", torch.float32))
    _same_state(encoders.esm, load_esm2(paths["esm2"], "cpu", torch.float32))
    classifier, sequential_info = load_classifier(paths["classifier"])
    _same_state(encoders.classifier, classifier)
    assert info == sequential_info
    assert {"esm2_read", "esm2_convert_cast", "esm2_kernel_setup", "dnabert_load", "classifier_load"} <= phases.keys()
    assert all(seconds >= 0 for seconds in phases.values())
    assert not lingering()


def test_a_failing_load_on_the_thread_is_raised_and_the_thread_joined(tmp_path):
    broken = tmp_path / "dnabert-s"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # no weights
    side = _SideLoad(broken, torch.device("cpu"), torch.float32)
    with pytest.raises(ModelLoadError, match="no DNABERT-S weights"):
        side.result()
    assert not lingering()


def test_compile_caches_go_under_the_virnucpro_cache_unless_the_user_set_them(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "mine"))
    dirs = use_persistent_compile_caches()
    assert dirs == {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache" / "virnucpro" / "compile" / "inductor"),
                    "TRITON_CACHE_DIR": str(tmp_path / "mine")}
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == dirs["TORCHINDUCTOR_CACHE_DIR"]
    assert compile_cache_dirs() == dirs


def test_run_json_has_the_load_phases_and_the_first_block_time(tmp_path, model_args, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for variable in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        monkeypatch.delenv(variable, raising=False)  # restored afterwards: the load sets them
    reads = tmp_path / "reads.fastq"
    reads.write_text("".join(READS.read_text().splitlines(True)[:400]))
    assert main(["predict", str(reads), "-o", str(tmp_path / "out"), *model_args]) == 0
    timings = json.loads((tmp_path / "out" / "run.json").read_text())["timings_seconds"]
    phases = timings["load_phases"]
    assert {"process_start_to_load", "cuda_context", "resolve_paths", "models_wall", "esm2_read",
            "dnabert_load", "classifier_load"} <= phases.keys()
    assert phases["models_wall"] <= timings["model_load"]
    assert timings["first_block_written_since_process_start"] > phases["process_start_to_load"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_each_warm_up_batch_is_its_own_phase(tiny_models):
    from virnucpro.engine.encoders import warm_up

    encoders, _ = load_encoders(tiny_model_paths(tiny_models), torch.device("cuda"), torch.bfloat16)
    phases: dict[str, float] = {}
    warm_up(encoders, 4096, phases)
    assert set(phases) == {"warm_up_esm2_48_aa", "warm_up_esm2_49_aa", "warm_up_esm2_100_aa",
                           "warm_up_dnabert_34_tokens", "warm_up_dnabert_41_tokens"}


def test_on_the_cpu_nothing_imports_the_compiler_while_loading(tiny_models):
    phases: dict[str, float] = {}
    load_encoders(tiny_model_paths(tiny_models), torch.device("cpu"), torch.float32, phases)
    assert "compiler_import" not in phases


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_the_compiler_is_imported_before_the_load_thread_starts(tiny_models, monkeypatch):
    import virnucpro.engine.encoders as encoders

    order = []
    monkeypatch.setattr(encoders, "import_compiler", lambda: order.append("compiler"))
    monkeypatch.setattr(encoders, "start_thread", lambda name, *args, **kwargs: order.append(name) or
                        start_thread(name, *args, **kwargs))
    phases: dict[str, float] = {}
    load_encoders(tiny_model_paths(tiny_models), torch.device("cuda"), torch.bfloat16, phases)
    assert order[:2] == ["compiler", "load-dnabert"]
    assert "compiler_import" in phases and "dnabert_load_parallel" in phases
    assert not lingering()
