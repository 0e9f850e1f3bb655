"""Loading ESM-2 from HF directories (safetensors / bin, with or without `esm.`) and fair-esm `.pt`."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from virnucpro.devtools.random_esm2 import write_fair_esm_checkpoint
from virnucpro.errors import ModelLoadError
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.tokenize.esm_alphabet import encode_proteins

PROTEINS = ["M", "MKVLAAGIW", "ACDEFGHIKLMNPQRSTVWY" * 4]


@pytest.fixture(scope="module")
def expected(tiny_esm2):
    return load_esm2(tiny_esm2).embed(encode_proteins(PROTEINS))


def copy_config(src, dst):
    dst.mkdir()
    (dst / "config.json").write_text((src / "config.json").read_text())


def test_fair_esm_pt_gives_the_same_embeddings(tiny_esm2, expected, tmp_path):
    pt = tmp_path / "esm2_tiny.pt"
    write_fair_esm_checkpoint(tiny_esm2, pt)
    torch.testing.assert_close(load_esm2(pt).embed(encode_proteins(PROTEINS)), expected, rtol=0, atol=0)


def test_pytorch_model_bin_without_prefix(tiny_esm2, expected, tmp_path):
    copy_config(tiny_esm2, tmp_path / "bin")
    state = {k.removeprefix("esm."): t for k, t in load_file(tiny_esm2 / "model.safetensors").items()}
    torch.save(state, tmp_path / "bin" / "pytorch_model.bin")
    torch.testing.assert_close(load_esm2(tmp_path / "bin").embed(encode_proteins(PROTEINS)), expected, rtol=0, atol=0)


def test_key_mismatch_reports_missing_and_unexpected_at_once(tiny_esm2, tmp_path):
    copy_config(tiny_esm2, tmp_path / "bad")
    state = load_file(tiny_esm2 / "model.safetensors")
    del state["esm.encoder.layer.1.attention.self.key.weight"]
    state["esm.encoder.layer.1.attention.self.extra.weight"] = torch.zeros(1)
    save_file(state, tmp_path / "bad" / "model.safetensors")
    with pytest.raises(ModelLoadError) as err:
        load_esm2(tmp_path / "bad")
    assert "layers.1.qkv.weight" in str(err.value) and "attention.self.extra.weight" in str(err.value)


def test_shape_mismatch_is_refused(tiny_esm2, tmp_path):
    copy_config(tiny_esm2, tmp_path / "cfg")
    config = json.loads((tmp_path / "cfg" / "config.json").read_text())
    (tmp_path / "cfg" / "config.json").write_text(json.dumps({**config, "intermediate_size": 64}))
    (tmp_path / "cfg" / "model.safetensors").symlink_to(tiny_esm2 / "model.safetensors")
    with pytest.raises(ModelLoadError, match="shape"):
        load_esm2(tmp_path / "cfg")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_malicious_pt_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model": {"embed_tokens.weight": torch.zeros(2, 2)}, "cfg": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(ModelLoadError, match="refused"):
        load_esm2(tmp_path / "evil.pt")
    assert not marker.exists()


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_esm2(tmp_path / "nope")
