"""Model resolution: user paths, models directories, the Hugging Face cache, offline mode, manifests."""

from __future__ import annotations

import pytest
from fake_hub import ESM2, FakeHub, isolated_env, stock_published, use_endpoint  # noqa: F401 (fixture)

from virnucpro.models import manifest as manifest_module
from virnucpro.models.manifest import Manifest
from virnucpro.models.registry import (
    ModelNotFoundError,
    default_models_dir,
    find_model,
    hash_stamps,
    resolve_model,
)

pytestmark = pytest.mark.usefixtures("isolated_env")


def _encoder_dir(path, weights="pytorch_model.bin"):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / weights).write_bytes(b"weights")
    return path


def _models_dir(root):
    """A hand-assembled models directory (no manifest), as a user might copy one."""
    _encoder_dir(root / "dnabert-s")
    _encoder_dir(root / "esm2_t36_3B_UR50D", "model.safetensors")
    (root / "classifiers").mkdir()
    (root / "classifiers" / "300_model.pth").write_bytes(b"pth")
    return root


def _cache_from_fake_hub(monkeypatch, repo_id: str) -> None:
    """Fill the HF cache the way huggingface_hub itself does, from a hub on 127.0.0.1."""
    from huggingface_hub import snapshot_download

    with FakeHub() as hub:
        stock_published(hub)
        hub.repos[repo_id] = dict(hub.repos[ESM2])
        use_endpoint(monkeypatch, hub.url)
        snapshot_download(repo_id, allow_patterns=["config.json", "model.safetensors"])
    use_endpoint(monkeypatch, "http://127.0.0.1:9")


def test_local_path_is_used_as_is(tmp_path):
    local = _encoder_dir(tmp_path / "my-esm")
    assert resolve_model("esm2", str(local), 300) == local
    weights = tmp_path / "esm2_t6.pt"
    weights.write_bytes(b"fair-esm")
    assert resolve_model("esm2", str(weights), 300) == weights


def test_missing_local_path_is_an_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model("dnabert", str(tmp_path / "nope"), 300)
    with pytest.raises(ModelNotFoundError, match="classifier file .* does not exist"):
        resolve_model("classifier", str(tmp_path / "x.pth"), 300)


def test_models_dir_flag_then_env_then_default(tmp_path, monkeypatch):
    flag = _models_dir(tmp_path / "flag")
    env = _models_dir(tmp_path / "env")
    _models_dir(default_models_dir())
    monkeypatch.setenv("VIRNUCPRO_MODELS", str(env))
    assert resolve_model("dnabert", None, 300, models_dir=flag) == flag / "dnabert-s"
    assert resolve_model("dnabert", None, 300) == env / "dnabert-s"
    monkeypatch.delenv("VIRNUCPRO_MODELS")
    assert resolve_model("dnabert", None, 300) == default_models_dir() / "dnabert-s"


def test_models_dir_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="from --models-dir"):
        resolve_model("esm2", None, 300, models_dir=tmp_path / "typo")
    monkeypatch.setenv("VIRNUCPRO_MODELS", str(tmp_path / "typo"))
    with pytest.raises(ModelNotFoundError, match="from VIRNUCPRO_MODELS"):
        resolve_model("esm2", None, 300)


def test_incomplete_encoder_dir_falls_through_to_the_next_place(tmp_path):
    partial = tmp_path / "models"
    (partial / "dnabert-s").mkdir(parents=True)
    (partial / "dnabert-s" / "config.json").write_text("{}")  # no weights
    _models_dir(default_models_dir())
    assert resolve_model("dnabert", None, 300, models_dir=partial) == default_models_dir() / "dnabert-s"


def test_classifier_prefers_converted_safetensors(tmp_path):
    root = _models_dir(tmp_path / "models")
    assert resolve_model("classifier", None, 300, models_dir=root) == root / "classifiers/300_model.pth"
    (root / "classifiers" / "300_model.safetensors").write_bytes(b"st")
    assert resolve_model("classifier", None, 300, models_dir=root) == root / "classifiers/300_model.safetensors"
    with pytest.raises(ModelNotFoundError, match="500-bp classifier is not in"):
        resolve_model("classifier", None, 500, models_dir=root)
    with pytest.raises(ModelNotFoundError, match="use 300 or 500"):
        resolve_model("classifier", None, 400, models_dir=root)


def test_nothing_anywhere_says_how_to_get_the_models():
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model("esm2", None, 300)
    message = str(caught.value)
    assert "\n" not in message
    assert "virnucpro download" in message and "VIRNUCPRO_MODELS" in message
    assert str(default_models_dir()) in message


def test_hf_cache_is_used_offline(monkeypatch):
    from huggingface_hub import constants

    _cache_from_fake_hub(monkeypatch, ESM2)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    found = find_model("esm2", None, 300)
    assert found.source == "hf-cache" and (found.path / "model.safetensors").is_file()
    assert resolve_model("esm2", ESM2, 300) == found.path  # the hub name, spelled out
    with pytest.raises(ModelNotFoundError, match="DNABERT-S not found"):
        resolve_model("dnabert", None, 300)


def test_other_hub_names_come_from_the_hf_cache_only(monkeypatch):
    from huggingface_hub import constants

    _cache_from_fake_hub(monkeypatch, "facebook/esm2_t6_8M_UR50D")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    found = resolve_model("esm2", "facebook/esm2_t6_8M_UR50D", 300)
    assert "models--facebook--esm2_t6_8M_UR50D" in str(found) and (found / "config.json").is_file()
    with pytest.raises(ModelNotFoundError, match="hf download facebook/esm2_t12_35M_UR50D"):
        resolve_model("esm2", "facebook/esm2_t12_35M_UR50D", 300)


def test_sha256_is_computed_on_first_use_only(tmp_path, monkeypatch):
    root = _models_dir(tmp_path / "models")
    manifest = Manifest.load_or_empty(root)
    stamps = hash_stamps()
    for name in ("esm2_t36_3B_UR50D/config.json", "esm2_t36_3B_UR50D/model.safetensors"):
        manifest.record(name, stamps.sha256(root / name))
    manifest.save()

    hashed = []
    real_sha256 = manifest_module.sha256_file
    monkeypatch.setattr(manifest_module, "sha256_file", lambda path: hashed.append(path) or real_sha256(path))
    resolve_model("esm2", None, 300, models_dir=root)
    assert hashed == []  # stamped when recorded
    (root / "esm2_t36_3B_UR50D" / "model.safetensors").write_bytes(b"WEIGHTS")  # same size, new content
    with pytest.raises(manifest_module.ModelIntegrityError, match="corrupt"):
        resolve_model("esm2", None, 300, models_dir=root)
    assert len(hashed) == 1


def test_unreadable_manifest_is_a_one_line_error(tmp_path):
    root = _models_dir(tmp_path / "models")
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(manifest_module.ModelIntegrityError, match="unreadable model manifest"):
        resolve_model("dnabert", None, 300, models_dir=root)
