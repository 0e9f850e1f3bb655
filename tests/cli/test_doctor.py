"""`virnucpro doctor` on this CPU machine: not ready without models, ready with a models directory."""

from __future__ import annotations

import json
from collections import namedtuple

import pytest
from fake_hub import isolated_env  # noqa: F401 (fixture)

from virnucpro import doctor as doctor_module
from virnucpro.cli.main import main
from virnucpro.models.manifest import Manifest
from virnucpro.models.registry import hash_stamps

pytestmark = pytest.mark.usefixtures("isolated_env")


def _verified_models_dir(root):
    """A models directory with every model and a manifest, as `virnucpro download` leaves it."""
    files = {
        "dnabert-s/config.json": b"{}",
        "dnabert-s/pytorch_model.bin": b"dnabert weights",
        "esm2_t36_3B_UR50D/config.json": b"{}",
        "esm2_t36_3B_UR50D/model.safetensors": b"esm2 weights",
        "classifiers/300_model.pth": b"300",
        "classifiers/300_model.safetensors": b"300 st",
        "classifiers/500_model.pth": b"500",
        "classifiers/500_model.safetensors": b"500 st",
    }
    manifest = Manifest.load_or_empty(root)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        manifest.record(name, hash_stamps().sha256(root / name))
    manifest.save()
    return root


def _json_report(capsys, *args) -> tuple[int, dict]:
    code = main(["doctor", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_no_models_is_not_ready_with_advice(capsys):
    assert main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "missing  DNABERT-S" in captured.out and "missing  500-bp classifier" in captured.out
    assert "run `virnucpro download`" in captured.out
    assert "not ready" in captured.err
    assert "Python" in captured.out and "torch" in captured.out and "attention:" in captured.out


def test_models_dir_makes_it_ready(tmp_path, capsys):
    root = _verified_models_dir(tmp_path / "models")
    code, report = _json_report(capsys, "--models-dir", str(root))
    assert code == 0 and report["ok"] is True
    assert {m["status"] for m in report["models"]} == {"ok"}
    assert {m["checksum"] for m in report["models"]} == {"ok"}
    assert report["models"][3]["path"] == str(root / "classifiers/500_model.safetensors")
    assert report["attention"]["cpu_float32"]
    assert [d["role"] for d in report["disk"]] == ["models directory", "working directory"]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU-only warning")
def test_cpu_machine_gets_a_warning_not_an_error(tmp_path, capsys):
    root = _verified_models_dir(tmp_path / "models")
    code, report = _json_report(capsys, "--models-dir", str(root))
    assert code == 0 and report["cuda"]["gpus"] == []
    assert [p["severity"] for p in report["problems"]] == ["warning"]


def test_corrupt_model_is_reported_with_repair_advice(tmp_path, capsys):
    root = _verified_models_dir(tmp_path / "models")
    (root / "esm2_t36_3B_UR50D/model.safetensors").write_bytes(b"esm2 WEIGHTS")
    code, report = _json_report(capsys, "--models-dir", str(root))
    assert code == 1
    esm2 = report["models"][1]
    assert esm2["status"] == "corrupt" and esm2["checksum"] == "failed"
    advice = [p["advice"] for p in report["problems"] if p["severity"] == "error"]
    assert advice == [f"run `virnucpro download --dir {root}` to repair it"]


def test_low_disk_is_a_warning_when_models_must_be_downloaded(capsys, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(doctor_module.shutil, "disk_usage", lambda path: usage(10**10, 10**10 - 10**9, 10**9))
    code, report = _json_report(capsys)
    assert code == 1
    assert any("only 1.0 GB free" in p["message"] for p in report["problems"])


def test_compile_caches_are_reported_with_their_size(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton"))
    (tmp_path / "triton" / "k").mkdir(parents=True)
    (tmp_path / "triton" / "k" / "kernel.cubin").write_bytes(b"x" * 2500)
    root = _verified_models_dir(tmp_path / "models")
    _, report = _json_report(capsys, "--models-dir", str(root))
    assert report["compile_caches"] == [
        {"variable": "TORCHINDUCTOR_CACHE_DIR",
         "path": str(tmp_path / "xdg-cache" / "virnucpro" / "compile" / "inductor"), "size_bytes": 0},
        {"variable": "TRITON_CACHE_DIR", "path": str(tmp_path / "triton"), "size_bytes": 2500},
    ]
    main(["doctor", "--models-dir", str(root)])
    assert f"compile cache (TRITON_CACHE_DIR): {tmp_path / 'triton'}, 0.0 MB" in capsys.readouterr().out
