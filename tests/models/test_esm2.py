"""Our packed ESM-2 against transformers' EsmModel (fp32, eager attention) on the same random weights."""

from __future__ import annotations

import logging
import random

import pytest
import torch

import virnucpro.models.esm2 as esm2_module
from virnucpro.models.attention import SDPA_PADDED, describe_backend
from virnucpro.models.esm2 import rotary_inv_freq
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.models.gelu_epilogue import gelu_epilogue_problem, probe_gelu_epilogue
from virnucpro.tokenize.esm_alphabet import (
    MAX_RESIDUES,
    encode_protein,
    encode_proteins,
)

transformers = pytest.importorskip("transformers")
AMINO = "LAGVSERTIDPKQNFYMHWC"


def random_protein(length: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(AMINO) for _ in range(length))


@pytest.fixture(scope="module")
def model(tiny_esm2):
    return load_esm2(tiny_esm2, device="cpu")


@pytest.fixture(scope="module")
def reference(tiny_esm2):
    hf = transformers.EsmModel.from_pretrained(tiny_esm2, attn_implementation="eager", add_pooling_layer=False)
    return hf.float().eval()


def reference_mean(hf, protein: str) -> torch.Tensor:
    """The original's embedding: layer-last hidden states averaged over residues 1..min(len, 1024)."""
    ids = torch.from_numpy(encode_protein(protein)).unsqueeze(0)
    with torch.no_grad():
        hidden = hf(input_ids=ids).last_hidden_state[0]
    return hidden[1 : min(len(protein), MAX_RESIDUES) + 1].mean(0)


@pytest.mark.parametrize("length", [1, 2, 49, 97, 1100])
def test_matches_transformers(model, reference, length):
    protein = random_protein(length, seed=length)
    ours = model.embed(encode_proteins([protein]))[0]
    ref = reference_mean(reference, protein)
    assert ours.dtype == torch.float32
    assert (ours - ref).abs().max() / ref.abs().max() <= 1e-4


def test_packed_mixed_batch_equals_one_at_a_time(model):
    proteins = [random_protein(n, seed=n) for n in (1, 300, 2, 49, 50, 97, 5)]
    packed = model.embed(encode_proteins(proteins))
    single = torch.cat([model.embed(encode_proteins([p])) for p in proteins])
    torch.testing.assert_close(packed, single, rtol=1e-5, atol=1e-6)


def test_long_protein_is_truncated_to_1024_residues(model):
    protein = random_protein(1100, seed=7)
    full, cut = model.embed(encode_proteins([protein, protein[:MAX_RESIDUES]]))
    torch.testing.assert_close(full, cut)


def test_rotary_inv_freq_is_fp16_rounded(model):
    exact = 1.0 / 10000 ** (torch.arange(0, 16, 2, dtype=torch.float64) / 16)
    assert torch.equal(model.inv_freq, exact.half().float())
    assert not torch.equal(rotary_inv_freq(16), exact.float())


def test_cpu_defaults_are_fp32_with_exact_attention(model):
    assert model.compute_dtype == torch.float32
    assert model.attention_backend() == SDPA_PADDED
    assert describe_backend("cpu", torch.float32) == SDPA_PADDED


def test_compiled_path_equals_eager_and_compiles_once(tiny_esm2, model):
    """The compiled path takes any token count with one compilation per compiled function."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = load_esm2(tiny_esm2, device="cpu", fast=False).enable_compile()
    for sizes in ((3, 49), (1, 150, 20, 7), (64,) * 5):
        proteins = [random_protein(n, seed=n + i) for i, n in enumerate(sizes)]
        batch = encode_proteins(proteins)
        torch.testing.assert_close(compiled.embed(batch), model.embed(batch), rtol=1e-5, atol=1e-6)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2  # post-attention + rotary


def test_cpu_and_fp32_keep_exact_erf_gelu(tiny_esm2, caplog, monkeypatch):
    """The epilogue's tanh GELU is for CUDA fp16/bf16 only; the load logs the choice."""
    monkeypatch.setattr(logging.getLogger("virnucpro"), "propagate", True)  # the CLI's setup turns it off
    with caplog.at_level("DEBUG", logger="virnucpro"):
        assert not load_esm2(tiny_esm2, device="cpu").gelu_epilogue
    assert "ESM-2 fc1 GELU: exact erf GELU on cpu" in caplog.text
    assert gelu_epilogue_problem(torch.device("cpu"), torch.bfloat16) == "exact erf GELU on cpu"
    assert "reference precision" in gelu_epilogue_problem(torch.device("cuda"), torch.float32)


def test_loader_takes_the_epilogue_where_the_check_passes(tiny_esm2, monkeypatch):
    monkeypatch.setattr(esm2_module, "gelu_epilogue_problem", lambda device, dtype: None)
    assert load_esm2(tiny_esm2, device="cpu").gelu_epilogue


def test_probe_refuses_a_missing_failing_or_wrong_op(monkeypatch):
    """The op is private to aten: the model must fall back to erf GELU when it is not usable."""
    cpu = torch.device("cpu")
    assert probe_gelu_epilogue(cpu, torch.bfloat16) is None  # the real op (erf on CPU) passes
    monkeypatch.setattr(torch, "_addmm_activation", lambda b, x, w, use_gelu: torch.relu(torch.addmm(b, x, w)))
    assert "off from GELU" in probe_gelu_epilogue(cpu, torch.bfloat16)

    def fails(*args, **kwargs):
        raise RuntimeError("CUBLAS_STATUS_NOT_SUPPORTED")

    monkeypatch.setattr(torch, "_addmm_activation", fails)
    assert probe_gelu_epilogue(cpu, torch.bfloat16) == "torch._addmm_activation failed: CUBLAS_STATUS_NOT_SUPPORTED"
    monkeypatch.delattr(torch, "_addmm_activation")
    assert "has no _addmm_activation" in probe_gelu_epilogue(cpu, torch.bfloat16)


def test_gelu_epilogue_compiles_once_and_computes_gelu(tiny_esm2, model):
    """Forced on the CPU (where the op's GELU is erf), the epilogue path traces into the compiled
    graph with any token count and gives the erf model's embeddings."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    fused = load_esm2(tiny_esm2, device="cpu", fast=False).use_gelu_epilogue(True).enable_compile()
    for sizes in ((3, 49), (1, 150, 20, 7)):
        batch = encode_proteins([random_protein(n, seed=n + i) for i, n in enumerate(sizes)])
        torch.testing.assert_close(fused.embed(batch), model.embed(batch), rtol=1e-5, atol=1e-6)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2


def test_split_at_half_cuts_at_the_sequence_boundary_nearest_half_the_tokens():
    from virnucpro.models.stream_overlap import split_at_half
    from virnucpro.tokenize.packing import pack

    packed = pack([[5] * 10, [6] * 3, [7] * 4, [8] * 9])  # 26 tokens: boundaries at 10, 13, 17
    first, second = split_at_half(packed)
    assert first.cu_seqlens.tolist() == [0, 10, 13] and second.cu_seqlens.tolist() == [0, 4, 13]
    assert first.ids.tolist() == [5] * 10 + [6] * 3 and second.ids.tolist() == [7] * 4 + [8] * 9
    assert (first.max_seqlen, second.max_seqlen) == (10, 9)
    assert second.cu_seqlens.dtype == torch.int32
    assert split_at_half(pack([[5] * 10])) is None


def test_stream_overlap_gives_each_sequence_the_same_embedding(tiny_esm2, model):
    """Two half batches (on the CPU: one after the other, the same code as the two CUDA streams)."""
    overlapped = load_esm2(tiny_esm2, device="cpu", fast=False)
    overlapped.stream_overlap = True
    for sizes in ((3, 49), (1, 150, 20, 7, 64, 5), (64,) * 5):
        batch = encode_proteins([random_protein(n, seed=n + i) for i, n in enumerate(sizes)])
        torch.testing.assert_close(overlapped.embed(batch), model.embed(batch), rtol=1e-5, atol=1e-6)


def test_sequence_tiles_where_the_triton_kernels_run_and_every_sequence_fits(tiny_esm2, monkeypatch):
    """Issue #20.4: the sequence-tile kernel for batches of sequences <= 64 tokens (measured +2.2%
    at 48-50 aa), the stream-tile kernel for longer ones, never where the Triton kernels don't run."""
    from virnucpro.models.packed_attention import TRITON_PACKED, TRITON_SEQUENCE_TILES

    cpu = load_esm2(tiny_esm2, device="cpu", fast=False).enable_compile()
    assert cpu.sequence_tile_tokens == 0
    cpu.sequence_tile_tokens = 64  # set directly: still never where the kernels cannot run
    assert cpu.attention_backend(mean_tokens=51, max_seqlen=52) == SDPA_PADDED
    monkeypatch.setattr(esm2_module, "has_packed_attention", lambda device, dtype, head_dim: True)
    model = load_esm2(tiny_esm2, device="cpu", fast=False).enable_compile()
    assert model.sequence_tile_tokens == 64
    assert model.attention_backend(mean_tokens=51, max_seqlen=64) == TRITON_SEQUENCE_TILES
    assert model.attention_backend(mean_tokens=51, max_seqlen=65) == TRITON_PACKED
    assert model.describe_attention().startswith(f"{TRITON_SEQUENCE_TILES} (batches of sequences <= 64 tokens), else")
    assert load_esm2(tiny_esm2, device="cpu", fast=False).enable_compile(fused_attention=False).sequence_tile_tokens == 0
    with pytest.raises(ValueError, match="0..128, not 129"):
        model.enable_compile(sequence_tile_tokens=129)
