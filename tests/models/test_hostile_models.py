"""Hostile model files (issue #16): each is tiny, and each is refused in one line, fast, in bounded memory.

A hostile file may make loading exponential (a DAG pickle), allocate terabytes (a zero-stride
tensor, a huge config), escape the models directory (paths in a manifest or an index), or load
fine and make every score NaN. Each test writes one such file and checks the refusal.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import GENOMES, peak_rss_kib, reset_peak_rss_kib
from safetensors.torch import load_file, save_file

from virnucpro.devtools.random_classifier import random_classifier, save_original_pth
from virnucpro.errors import ModelLoadError
from virnucpro.models.classifier import (
    ClassifierInfo,
    MLPClassifier,
    chunk_size_mismatch,
    load_classifier,
    save_classifier_safetensors,
)
from virnucpro.models.dnabert_loader import load_dnabert
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.models.manifest import Manifest, ModelIntegrityError
from virnucpro.models.pickle_budget import PickleBudgetError, check_pickle_budget
from virnucpro.models.registry import resolve_model
from virnucpro.models.safe_pickle import load_pickle_checkpoint
from virnucpro.tokenize import dnabert as dnabert_tokenize
from virnucpro.tokenize.dnabert import DnabertTokenizer

FAST_S = 1.0
MAX_EXTRA_RSS_KB = 300 * 1024


def refused(call, *args, match: str, **kwargs) -> str:
    """Run a load that must fail: one-line ModelLoadError, under a second, no big allocation."""
    rss_before = reset_peak_rss_kib()
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match=match) as caught:
        call(*args, **kwargs)
    assert time.perf_counter() - started < FAST_S
    assert peak_rss_kib() - rss_before < MAX_EXTRA_RSS_KB
    message = str(caught.value)
    assert "\n" not in message
    return message


def predict_cli(tmp_path: Path, models: Path, *extra: str, **override: Path) -> subprocess.CompletedProcess:
    """`python -m virnucpro predict` on phiX with the tiny models, some replaced by `override`."""
    paths = {"esm": models / "esm2", "dnabert": models / "dnabert-s", "classifier": models / "classifier.pth"}
    paths |= override
    args = [sys.executable, "-m", "virnucpro", "predict", str(GENOMES / "phiX174_NC_001422.fa"),
            "-o", str(tmp_path / "out"), "--device", "cpu", "-q", *extra]
    for name, path in paths.items():
        args += [f"--{name}", str(path)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def assert_one_line_refusal(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # no warnings, no traceback before or after it
    assert lines[0].startswith("virnucpro: error:")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def copy_model(models: Path, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(models / name, target)
    return target


# --- point 1: bounded work -----------------------------------------------------------------------


def _module_dag(depth: int) -> torch.nn.Module:
    """Modules whose two children are one shared module, `depth` times: 2**depth paths to walk."""
    node = torch.nn.ReLU()
    for _ in range(depth):
        parent = torch.nn.ReLU()
        parent.add_module("a", node)
        parent.add_module("b", node)
        node = parent
    return node


def test_dag_pickle_classifier_is_refused_at_once(tmp_path, tiny_models):
    model = MLPClassifier(4, 2)
    model.add_module("dag", _module_dag(40))
    path = tmp_path / "dag.pth"
    torch.save(model, path)
    assert path.stat().st_size < 100_000
    message = refused(load_classifier, path, match="refused untrusted model file")
    assert "expand" in message
    assert_one_line_refusal(predict_cli(tmp_path, tiny_models, classifier=path), "refused untrusted model file")


def _tuple_dag_key_pickle(levels: int) -> bytes:
    """{t: 1} with t = (t', t'), `levels` deep, written by hand: building it in Python would hash it."""
    ops = [b"\x80\x02}", b"K\x01\x85q\x000"]  # {}, (1,) memoised as 0
    ops += [b"h%ch%c\x86q%c0" % (i - 1, i - 1, i) for i in range(1, levels + 1)]
    return b"".join(ops) + b"h%cK\x01s." % levels


def test_tuple_dag_dict_key_is_refused_before_it_is_hashed(tmp_path):
    t1 = ((1,), (1,))
    assert pickle.loads(_tuple_dag_key_pickle(2)) == {(t1, t1): 1}
    path = tmp_path / "tuples.pth"
    with zipfile.ZipFile(path, "w") as archive:  # hashing the key would visit 2**60 leaves
        archive.writestr("archive/data.pkl", _tuple_dag_key_pickle(60))
    refused(load_pickle_checkpoint, path, match="expand to more than")


def test_huge_object_pickle_is_refused_unread(tmp_path, monkeypatch):
    from virnucpro.models import safe_pickle

    path = tmp_path / "big.pth"
    torch.save({"names": [f"{i}" + "x" * 1000 for i in range(2000)]}, path)  # a 2 MB object pickle
    monkeypatch.setattr(safe_pickle, "MAX_PICKLE_BYTES", 1 << 20)
    refused(load_pickle_checkpoint, path, match="object pickle is over 1 MiB")


def test_deeply_nested_pickle_is_refused():
    depth = 5000
    data = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."  # lists in lists, 5000 deep
    with pytest.raises(PickleBudgetError, match="nested more than"):
        check_pickle_budget(io.BytesIO(data))


def test_genuine_pickles_pass_the_budget(tiny_models):
    load_classifier(tiny_models / "classifier.pth")  # whole-module pickle
    load_dnabert(tiny_models / "dnabert-s")  # pickled state dict (pytorch_model.bin)


def test_zero_stride_terabyte_tensor_is_refused_before_allocation(tmp_path):
    huge = torch.zeros(1).expand(10**6, 10**6)  # 4 TB once materialised, 1 element on disk
    path = tmp_path / "stride.pth"
    torch.save({"hidden_layer.weight": huge}, path)
    assert path.stat().st_size < 5000
    refused(load_classifier, path, match="more elements than its storage")


def test_many_views_of_one_storage_are_refused(tmp_path):
    base = torch.zeros(4096)
    path = tmp_path / "views.pth"
    torch.save({f"w{i}": base.view(-1) for i in range(3000)}, path)  # distinct views: not memoised
    refused(load_classifier, path, match="view far more data than the file holds")


@pytest.mark.parametrize(("model", "change", "match"), [
    ("dnabert-s", {"num_hidden_layers": 200000}, "num_hidden_layers is 200000"),
    ("dnabert-s", {"num_hidden_layers": 3}, "says 3 layers but the weights hold 2"),
    ("dnabert-s", {"hidden_size": [96]}, "hidden_size is list"),
    ("dnabert-s", {"hidden_size": "96"}, 'hidden_size is "96"'),
    ("dnabert-s", {"num_attention_heads": 0}, "num_attention_heads is 0"),
    ("dnabert-s", {"num_attention_heads": 5}, "not a multiple of num_attention_heads"),
    ("dnabert-s", {"layer_norm_eps": True}, "layer_norm_eps is true"),
    ("esm2", {"num_hidden_layers": 200000}, "num_hidden_layers is 200000"),
    ("esm2", {"num_hidden_layers": None}, "lacks num_hidden_layers"),
    ("esm2", {"num_attention_heads": 0}, "num_attention_heads is 0"),
    ("esm2", {"intermediate_size": 1.5}, "intermediate_size is 1.5"),
])  # fmt: skip
def test_bad_config_is_one_line_before_any_build(tmp_path, tiny_models, model, change, match):
    directory = copy_model(tiny_models, model, tmp_path)
    config = json.loads((directory / "config.json").read_text())
    for key, value in change.items():
        config.pop(key) if value is None else config.__setitem__(key, value)
    (directory / "config.json").write_text(json.dumps(config))
    refused(load_dnabert if model == "dnabert-s" else load_esm2, directory, match=match)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '"text"', "9" * 5000])
@pytest.mark.parametrize("model", ["dnabert-s", "esm2"])
def test_unreadable_config_is_one_line(tmp_path, tiny_models, model, content):
    directory = copy_model(tiny_models, model, tmp_path)
    (directory / "config.json").write_text(content)
    refused(load_dnabert if model == "dnabert-s" else load_esm2, directory, match="config")


def test_huge_layer_count_config_through_the_cli(tmp_path, tiny_models):
    directory = copy_model(tiny_models, "dnabert-s", tmp_path)
    config = json.loads((directory / "config.json").read_text()) | {"num_hidden_layers": 200000}
    (directory / "config.json").write_text(json.dumps(config))
    started = time.perf_counter()
    assert_one_line_refusal(predict_cli(tmp_path, tiny_models, dnabert=directory), "num_hidden_layers is 200000")
    assert time.perf_counter() - started < 60  # a Python start and the tiny models; the old code took minutes


def test_absurd_safetensors_metadata_is_one_line(tmp_path, tiny_models):
    model, info = load_classifier(tiny_models / "classifier.safetensors")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    for key, value in (("input_dim", "9" * 5000), ("hidden", "٣"), ("source_name", "x" * 100_000)):
        path = tmp_path / f"{key}.safetensors"
        save_file(tensors, path, metadata=info.to_metadata() | {key: value})
        refused(load_classifier, path, match=f"metadata {key}")


def test_wrongly_typed_safetensors_metadata_is_one_line(tmp_path, tiny_models):
    raw = (tiny_models / "classifier.safetensors").read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    header["__metadata__"]["hidden"] = 512  # a number where safetensors allows only strings
    encoded = json.dumps(header).encode()
    path = tmp_path / "typed.safetensors"
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + raw[8 + length :])
    refused(load_classifier, path, match="unreadable safetensors file")


# --- point 2: the models directory is a boundary ------------------------------------------------


def _models_dir(tmp_path: Path, tiny_models: Path) -> Path:
    """A models directory holding the tiny ESM-2 under its published name, with a manifest."""
    from virnucpro.models.manifest import sha256_file
    from virnucpro.models.registry import ENCODERS

    root = tmp_path / "models"
    subdir = ENCODERS["esm2"].subdir
    shutil.copytree(tiny_models / "esm2", root / subdir)
    manifest = Manifest(root, {}, {})
    for file in sorted((root / subdir).iterdir()):
        manifest.record(f"{subdir}/{file.name}", sha256_file(file))
    manifest.save()
    return root


def test_manifest_path_outside_the_models_dir_is_refused(tmp_path, tiny_models, monkeypatch):
    root = _models_dir(tmp_path, tiny_models)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"outside")
    for name in ("../secret.bin", str(secret), "esm2_t36_3B_UR50D/../../secret.bin"):
        data = json.loads((root / "manifest.json").read_text())
        data["files"][name] = {"size": 7, "sha256": "0" * 64}
        (root / "manifest.json").write_text(json.dumps(data))
        monkeypatch.setattr(Path, "stat", _no_stat_of(secret))
        with pytest.raises(ModelLoadError, match="outside"):
            resolve_model("esm2", None, 300, models_dir=root)
        monkeypatch.undo()
        del data["files"][name]
        (root / "manifest.json").write_text(json.dumps(data))


def _no_stat_of(forbidden: Path):
    original, forbidden_real = Path.stat, os.path.realpath(forbidden)

    def stat(self, *args, **kwargs):
        assert os.path.realpath(str(self)) != forbidden_real, "the outside file was sized"
        return original(self, *args, **kwargs)

    return stat


def test_symlink_out_of_the_models_dir_is_refused(tmp_path, tiny_models):
    root = _models_dir(tmp_path, tiny_models)
    weights = root / "esm2_t36_3B_UR50D" / "model.safetensors"
    outside = tmp_path / "elsewhere.safetensors"
    weights.rename(outside)
    weights.symlink_to(outside)
    with pytest.raises(ModelLoadError, match="resolves outside"):
        resolve_model("esm2", None, 300, models_dir=root)
    refused(load_esm2, weights.parent, match="resolves outside")


def test_hf_cache_snapshot_links_into_its_blobs_but_not_beyond(tmp_path, tiny_models):
    from virnucpro.models.model_files import weight_files

    repo = tmp_path / "hub" / "models--facebook--esm2_t36_3B_UR50D"
    snapshot = repo / "snapshots" / "0123abc"
    shutil.copytree(tiny_models / "esm2", snapshot)
    (repo / "blobs").mkdir()
    (snapshot / "model.safetensors").rename(repo / "blobs" / "f00d")
    (snapshot / "model.safetensors").symlink_to(Path("../../blobs/f00d"))  # as huggingface_hub links
    assert weight_files(snapshot) == [snapshot / "model.safetensors"]
    load_esm2(snapshot)
    (repo / "blobs" / "f00d").rename(tmp_path / "f00d")
    (snapshot / "model.safetensors").unlink()
    (snapshot / "model.safetensors").symlink_to(tmp_path / "f00d")
    refused(load_esm2, snapshot, match="resolves outside")


@pytest.mark.parametrize("shard", ["../elsewhere.safetensors", "/etc/passwd", "sub/../../x", 7])
def test_index_pointing_outside_is_refused(tmp_path, tiny_models, shard):
    directory = copy_model(tiny_models, "esm2", tmp_path)
    index = {"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": shard}}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    refused(load_esm2, directory, match="outside|not a relative file name|not a file name")


def test_index_cannot_bypass_the_manifest_checksums(tmp_path, tiny_models):
    root = _models_dir(tmp_path, tiny_models)
    directory = root / "esm2_t36_3B_UR50D"
    shutil.copy(directory / "model.safetensors", directory / "unchecked.safetensors")
    index = {"metadata": {}, "weight_map": dict.fromkeys(load_file(directory / "model.safetensors"),
                                                         "unchecked.safetensors")}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    manifest = Manifest.load(root)  # even with the index itself recorded, its shards must be
    manifest.record(f"{directory.name}/model.safetensors.index.json", "0" * 64)
    manifest.save()
    with pytest.raises(ModelIntegrityError, match="unchecked.safetensors .*not in .*manifest.json"):
        resolve_model("esm2", None, 300, models_dir=root, verify=False)


def test_download_refuses_a_manifest_pointing_outside(tmp_path):
    from virnucpro.models.manifest import MANIFEST_FORMAT
    from virnucpro.pipeline.download import download_models

    root = tmp_path / "models"
    root.mkdir()
    entry = {"size": 1, "sha256": "0" * 64}
    (root / "manifest.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "files": {"../x": entry}}))
    refused(download_models, root, (300,), match="points outside")  # before any network access


# --- point 3: impossible weights ----------------------------------------------------------------


@pytest.mark.parametrize(("tensor", "value", "match"), [
    ("hidden_layer.weight", float("nan"), "NaN or infinite weights .*hidden_layer.weight"),
    ("output_layer.bias", float("inf"), "NaN or infinite weights .*output_layer.bias"),
    ("bn1.running_var", -1.0, "negative BatchNorm running variance"),
])  # fmt: skip
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_impossible_classifier_weights_are_refused(tmp_path, tensor, value, match, fmt):
    model = random_classifier(8, seed=0, hidden=4)
    with torch.no_grad():
        model.state_dict()[tensor].view(-1)[0] = value
    path = tmp_path / f"bad.{fmt}"
    if fmt == "pth":
        save_original_pth(model, path)
    else:
        save_classifier_safetensors(model, path, ClassifierInfo(input_dim=8, hidden=4))
    refused(load_classifier, path, match=match)


def test_nan_classifier_through_the_cli(tmp_path, tiny_models):
    model, _ = load_classifier(tiny_models / "classifier.pth")
    with torch.no_grad():
        model.bn1.running_mean.fill_(float("nan"))
    path = tmp_path / "nan.pth"
    save_original_pth(model, path)
    assert_one_line_refusal(predict_cli(tmp_path, tiny_models, classifier=path), "NaN or infinite")
    assert not (tmp_path / "out" / "prediction_results.txt").exists()


@pytest.mark.parametrize("model", ["dnabert-s", "esm2"])
def test_nan_encoder_norm_is_refused(tmp_path, tiny_models, model):
    directory = copy_model(tiny_models, model, tmp_path)
    if model == "esm2":
        state = load_file(directory / "model.safetensors")
        key = next(k for k in state if "LayerNorm.weight" in k)
        state[key][0] = float("inf")
        save_file(state, directory / "model.safetensors")
    else:
        state = torch.load(directory / "pytorch_model.bin", weights_only=True)
        key = next(k for k in state if "LayerNorm.weight" in k)
        state[key][0] = float("nan")
        torch.save(state, directory / "pytorch_model.bin")
    refused(load_dnabert if model == "dnabert-s" else load_esm2, directory, match="NaN or infinite")


# --- point 4: one line naming the refused global, no torch advice ------------------------------


class _Payload:
    def __reduce__(self):
        return os.system, ("echo pwned",)


def test_malicious_dnabert_bin_is_one_line_naming_the_global(tmp_path, tiny_models):
    directory = copy_model(tiny_models, "dnabert-s", tmp_path)
    state = torch.load(directory / "pytorch_model.bin", weights_only=True)
    torch.save(state | {"payload": _Payload()}, directory / "pytorch_model.bin")
    result = predict_cli(tmp_path, tiny_models, dnabert=directory)
    line = assert_one_line_refusal(result, "untrusted", "system")
    assert "weights_only" not in line and "pwned" not in result.stdout


# --- point 5 (tokenizer part) ---------------------------------------------------------------------


@pytest.mark.parametrize(("content", "match"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"model": {"vocab": ["A", "C"]}}', "no model.vocab object"),
    ('{"model": {"vocab": {"A": "1"}}}', "vocabulary ids must be whole numbers"),
    ('{"model": {"vocab": {"[CLS]": 1, "[SEP]": 2}}}', "not a usable tokenizer"),
    ('{"model": {"vocab": {"[CLS]": 1, "[SEP]": 2}}, "added_tokens": 5}', "added_tokens must each have"),
])  # fmt: skip
def test_malformed_tokenizer_json_is_one_line(tmp_path, content, match):
    (tmp_path / "tokenizer.json").write_text(content)
    refused(DnabertTokenizer.from_dir, tmp_path, match=match)


def test_absurd_vocabulary_is_refused(tmp_path, tiny_models, monkeypatch):
    shutil.copy(tiny_models / "dnabert-s" / "tokenizer.json", tmp_path / "tokenizer.json")
    DnabertTokenizer.from_dir(tmp_path)
    monkeypatch.setattr(dnabert_tokenize, "MAX_VOCAB", 1000)  # the real file has 4096 entries
    refused(DnabertTokenizer.from_dir, tmp_path, match="4,096 vocabulary entries")


def test_token_ids_beyond_the_model_vocabulary_are_refused(tmp_path, tiny_models):
    directory = copy_model(tiny_models, "dnabert-s", tmp_path)
    DnabertTokenizer.from_dir(directory)
    config = json.loads((directory / "config.json").read_text()) | {"vocab_size": 1000}
    (directory / "config.json").write_text(json.dumps(config))
    refused(DnabertTokenizer.from_dir, directory, match="token id 4095 does not fit the model's vocab_size 1000")


def test_bad_tokenizer_through_the_cli(tmp_path, tiny_models):
    directory = copy_model(tiny_models, "dnabert-s", tmp_path)
    (directory / "tokenizer.json").write_text('{"model": 3}')
    assert_one_line_refusal(predict_cli(tmp_path, tiny_models, dnabert=directory), "tokenizer.json")


# --- point 7 (classifier part): a classifier made for other chunks --------------------------------


def test_chunk_size_mismatch_is_named():
    info = ClassifierInfo(input_dim=8, hidden=4, chunk_size=300)
    assert chunk_size_mismatch(info, "c.safetensors", 300) is None
    assert chunk_size_mismatch(replace(info, chunk_size=None), "c.pth", 500) is None  # nothing recorded
    assert "made for 300-bp chunks but --model-type is 500" in chunk_size_mismatch(info, "c.safetensors", 500)


def test_classifier_for_300_bp_used_with_model_type_500_warns(tmp_path, tiny_models):
    model, info = load_classifier(tiny_models / "classifier.pth")
    path = tmp_path / "300.safetensors"
    save_classifier_safetensors(model, path, replace(info, chunk_size=300))
    result = predict_cli(tmp_path, tiny_models, "--model-type", "500", classifier=path)
    assert result.returncode == 0, result.stderr
    assert "made for 300-bp chunks but --model-type is 500" in result.stderr

