"""The staged safetensors reader (pinned double buffers on a GPU) gives exactly the tensors of
safetensors' own reader, and the loaders built on it exactly the models of the current path; a
damaged header is a one-line ModelLoadError."""

from __future__ import annotations

import json
import struct

import pytest
import safetensors.torch
import torch
from safetensors.torch import load_file, save_file

from virnucpro.errors import ModelLoadError
from virnucpro.models import hf_weights
from virnucpro.models.dnabert_loader import load_dnabert
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.models.staged_safetensors import read_safetensors_staged


def _same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert left[key].dtype == right[key].dtype and left[key].shape == right[key].shape, key
        assert torch.equal(left[key].cpu(), right[key].cpu()), key


@pytest.fixture
def mixed_file(tmp_path):
    """Odd sizes and mixed dtypes, so chunks end inside tensors and tensors straddle chunks."""
    g = torch.Generator().manual_seed(1)
    tensors = {"a": torch.randn(7, 13, generator=g), "b": torch.randn(5, generator=g).to(torch.bfloat16),
               "c": torch.randint(0, 100, (3, 3), generator=g), "d": torch.zeros(0), "e": torch.tensor(2.5),
               "f": torch.randn(33, generator=g).half()}
    path = tmp_path / "mixed.safetensors"
    save_file(tensors, path, metadata={"format": "pt"})
    return path


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000, 1 << 20])
def test_staged_read_is_bit_identical_to_safetensors(mixed_file, chunk):
    _same(read_safetensors_staged(mixed_file, "cpu", chunk_bytes=chunk, pin=False), load_file(mixed_file))


def test_loaders_through_the_staged_reader_give_the_same_models(tiny_esm2, tiny_dnabert, monkeypatch):
    esm, dnabert = load_esm2(tiny_esm2), load_dnabert(tiny_dnabert)

    def staged(file, device="cpu"):  # the loaders' CPU reads, staged in small chunks as on a GPU
        return read_safetensors_staged(file, device, chunk_bytes=4096, pin=False)

    monkeypatch.setattr(safetensors.torch, "load_file", staged)
    _same(esm.state_dict(), load_esm2(tiny_esm2).state_dict())
    _same(dnabert.state_dict(), load_dnabert(tiny_dnabert).state_dict())


def _with_header(tmp_path, header: dict, data: bytes = b"\0" * 16):
    raw = json.dumps(header).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize("header", [
    {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 32]}},  # past the end
    {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}},  # size does not match the shape
    {"x": {"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}},  # unknown dtype
    {"x": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}},
    {"x": {"dtype": "F32", "shape": [4], "data_offsets": [8, 4]}},
    {"x": [1, 2]},
])
def test_a_damaged_header_is_one_line(tmp_path, header):
    with pytest.raises(ModelLoadError) as error:
        read_safetensors_staged(_with_header(tmp_path, header), "cpu", pin=False)
    assert "\n" not in str(error.value) and "bad.safetensors" in str(error.value)


def test_a_header_length_past_the_file_is_refused(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(ModelLoadError, match="header length"):
        read_safetensors_staged(path, "cpu", pin=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_on_a_gpu_the_pinned_read_is_bit_identical(mixed_file, chunk):
    staged = read_safetensors_staged(mixed_file, "cuda", chunk_bytes=chunk)
    assert all(t.device.type == "cuda" for t in staged.values())
    _same(staged, load_file(mixed_file, device="cuda"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_the_loaders_match_the_unstaged_path(tiny_esm2, tiny_dnabert, monkeypatch):
    esm = load_esm2(tiny_esm2, "cuda", torch.bfloat16, fast=False)
    dnabert = load_dnabert(tiny_dnabert, "cuda", torch.bfloat16, read_onto_device=True)
    monkeypatch.setenv(hf_weights.STAGED_ENV, "0")
    _same(esm.state_dict(), load_esm2(tiny_esm2, "cuda", torch.bfloat16, fast=False).state_dict())
    _same(dnabert.state_dict(), load_dnabert(tiny_dnabert, "cuda", torch.bfloat16, read_onto_device=True).state_dict())


def test_a_file_cut_short_is_one_line(mixed_file, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(mixed_file.read_bytes()[:-10])
    with pytest.raises(ModelLoadError) as error:
        read_safetensors_staged(cut, "cpu", chunk_bytes=64, pin=False)
    assert "\n" not in str(error.value)


def test_big_chunks_are_read_by_several_threads(tmp_path, monkeypatch):
    from virnucpro.engine.threads import lingering
    from virnucpro.models import staged_safetensors

    tensors = {"w": torch.arange(300_000, dtype=torch.float32), "b": torch.arange(7, dtype=torch.int64)}
    path = tmp_path / "big.safetensors"
    save_file(tensors, path)
    reads: list[int] = []
    real = staged_safetensors.os.preadv

    def counting(fd, buffers, offset):
        reads.append(offset)
        return real(fd, buffers, offset)

    monkeypatch.setattr(staged_safetensors.os, "preadv", counting)
    _same(read_safetensors_staged(path, "cpu", chunk_bytes=1 << 19, pin=False), load_file(path))
    assert len(reads) >= staged_safetensors.READ_THREADS * 2  # each of >= 2 chunks split across the readers
    assert not lingering()
