"""Loading DNABERT-S directories: layouts, strict key check, refusal of code-running pickles."""

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from virnucpro.devtools.random_dnabert import (
    TOKENIZER_FILES,
    published_shapes,
)
from virnucpro.errors import ModelLoadError
from virnucpro.models.dnabert_loader import load_dnabert
from virnucpro.tokenize.dnabert import DnabertTokenizer
from virnucpro.tokenize.packing import pack

SEQS = ["GAGTTTTATCGCTTCCATGACGCAGAAGTTAACACTTTCGGATATTTCTGATGAGTCG", "ACGTTGCA", "TTAGGC" * 25]


@pytest.fixture(scope="module")
def packed():
    return pack(DnabertTokenizer.default().encode_batch(SEQS))


@pytest.fixture(scope="module")
def expected(tiny_dnabert, packed):
    return load_dnabert(tiny_dnabert).embed(packed)


def state_of(directory):
    return torch.load(directory / "pytorch_model.bin", weights_only=True)


def variant(tmp_path, tiny_dnabert, state=None):
    """A copy of the tiny directory with another pytorch_model.bin."""
    for name in ("config.json", *TOKENIZER_FILES):
        (tmp_path / name).write_bytes((tiny_dnabert / name).read_bytes())
    if state is not None:
        torch.save(state, tmp_path / "pytorch_model.bin")
    return tmp_path


def test_random_directory_has_the_published_layout(tiny_dnabert):
    config = json.loads((tiny_dnabert / "config.json").read_text())
    assert config["vocab_size"] == 4096 and config["layer_norm_eps"] == 1e-12
    assert config["architectures"] == ["BertModel"]
    assert config["hidden_size"] == 96  # the tiny size
    state = state_of(tiny_dnabert)
    assert {k: tuple(v.shape) for k, v in state.items()} == published_shapes(config)
    assert all(v.dtype == torch.float32 for v in state.values())


def test_bert_prefix_and_heads_are_accepted(tmp_path, tiny_dnabert, packed, expected):
    """A BertForMaskedLM-style file: `bert.` prefix plus an MLM head, which is ignored."""
    state = {f"bert.{k}": v for k, v in state_of(tiny_dnabert).items()}
    state["cls.predictions.decoder.weight"] = torch.zeros(4096, 96)
    model = load_dnabert(variant(tmp_path, tiny_dnabert, state))
    torch.testing.assert_close(model.embed(packed), expected, rtol=0, atol=0)


def test_safetensors_preferred(tmp_path, tiny_dnabert, packed, expected):
    directory = variant(tmp_path, tiny_dnabert)
    save_file(state_of(tiny_dnabert), directory / "model.safetensors")
    torch.testing.assert_close(load_dnabert(directory).embed(packed), expected, rtol=0, atol=0)


def test_dtype_and_device(tiny_dnabert):
    model = load_dnabert(tiny_dnabert, "cpu", torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not model.training


def test_key_mismatch_is_one_error_listing_everything(tmp_path, tiny_dnabert):
    state = state_of(tiny_dnabert)
    del state["encoder.layer.1.mlp.wo.bias"]
    state["encoder.layer.0.attention.self.query.weight"] = torch.zeros(96, 96)
    state["embeddings.LayerNorm.bias"] = torch.zeros(95)
    with pytest.raises(ModelLoadError) as err:
        load_dnabert(variant(tmp_path, tiny_dnabert, state))
    message = str(err.value)
    assert "\n" not in message
    assert "missing: encoder.layer.1.mlp.wo.bias" in message
    assert "unexpected: encoder.layer.0.attention.self.query.weight" in message
    assert "wrong shape: embeddings.LayerNorm.bias (95,) != (96,)" in message


class CodeRunningPayload:
    """Unpickling this would call os.mkdir(marker)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_code_running_pickle_is_refused(tmp_path, tiny_dnabert):
    marker = tmp_path / "pwned"
    state = state_of(tiny_dnabert) | {"payload": CodeRunningPayload(marker)}
    (tmp_path / "model").mkdir()
    directory = variant(tmp_path / "model", tiny_dnabert, state)
    with pytest.raises(ModelLoadError, match="refused untrusted model file: it references .*mkdir"):
        load_dnabert(directory)
    assert not marker.exists()


def test_missing_files(tmp_path, tiny_dnabert):
    with pytest.raises(ModelLoadError, match="config not found"):
        load_dnabert(tmp_path)
    with pytest.raises(ModelLoadError, match="no DNABERT-S weights"):
        load_dnabert(variant(tmp_path, tiny_dnabert))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a readable PyTorch checkpoint"):
        load_dnabert(tmp_path)
