"""Our packed DNABERT-S against a plain, padded, per-head reference written from the published facts."""

import math

import numpy as np
import pytest
import torch

from virnucpro.devtools.random_dnabert import random_state_dict, write_random_dnabert
from virnucpro.models.dnabert import DnabertConfig, DnabertS, alibi_slopes
from virnucpro.models.dnabert_loader import load_dnabert
from virnucpro.tokenize.dnabert import DnabertTokenizer
from virnucpro.tokenize.packing import pack

# Published slopes (docs/models.md) and the 6-head slopes of the same rule: 2^-2, 2^-4, 2^-6, 2^-8
# (power-of-two series for 4 heads), then every other slope of the 8-head series: 2^-1, 2^-3.
SLOPES = {
    12: [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625,
         0.70710678, 0.35355339, 0.1767767, 0.08838835],
    6: [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125],
}
PAD_ID = 3
PHIX_1_302 = (
    "GAGTTTTATCGCTTCCATGACGCAGAAGTTAACACTTTCGGATATTTCTGATGAGTCGAAAAATTATCTTGATAAAGCAGGAATTACTACTGC"
    "TTGTTTACGAATTAAATCGAAGTGGACTGCTGGCGGAAAATGAGAAAATTCGACCTATCCTTGCGCAGCTCGAGAAGCTCTTACTTTGCGACC"
    "TTTCGCCATCAACTAACGATTCTGTCAAAAACTGACGCGTTGGATGAGGAGAAGTGGCTTAATATGCTTGGCACGTTCGTCAAGGACTGGTTTA"
    "GATATGAGTCACATTTTGTTCA"
)


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def reference_embed(state, config, id_lists, dtype=torch.float64, device="cpu"):
    """Padded batch with the original's -10000 padding mask, attention head by head."""
    w = {k.removeprefix("bert."): v.to(device, dtype) for k, v in state.items()}
    hidden, n_heads, inter, eps = (config[k] for k in ("hidden_size", "num_attention_heads",
                                                       "intermediate_size", "layer_norm_eps"))
    head = hidden // n_heads
    n, width = len(id_lists), max(len(ids) for ids in id_lists)
    ids = torch.full((n, width), PAD_ID, dtype=torch.long, device=device)
    mask = torch.zeros(n, width, dtype=dtype, device=device)
    for b, seq in enumerate(id_lists):
        ids[b, : len(seq)] = torch.as_tensor(np.asarray(seq), dtype=torch.long)
        mask[b, : len(seq)] = 1
    pos = torch.arange(width, device=device)
    distance = (pos[None, :] - pos[:, None]).abs().to(dtype)
    padding_bias = (1.0 - mask[:, None, :]) * -10000.0  # [B, 1(query), L(key)]
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        qkv = x @ w[p + "attention.self.Wqkv.weight"].T + w[p + "attention.self.Wqkv.bias"]
        q, k, v = qkv[..., :hidden], qkv[..., hidden : 2 * hidden], qkv[..., 2 * hidden :]
        heads = []
        for h in range(n_heads):
            cols = slice(h * head, (h + 1) * head)
            scores = torch.einsum("bid,bjd->bij", q[..., cols], k[..., cols]) / math.sqrt(head)
            scores = scores - SLOPES[n_heads][h] * distance + padding_bias
            heads.append(torch.einsum("bij,bjd->bid", torch.softmax(scores, -1), v[..., cols]))
        attn = torch.cat(heads, -1) @ w[p + "attention.output.dense.weight"].T + w[p + "attention.output.dense.bias"]
        x = layer_norm(attn + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        gated = x @ w[p + "mlp.gated_layers.weight"].T
        gate, value = gated[..., :inter], gated[..., inter:]
        geglu = 0.5 * gate * (1.0 + torch.erf(gate / math.sqrt(2.0))) * value
        out = geglu @ w[p + "mlp.wo.weight"].T + w[p + "mlp.wo.bias"]
        x = layer_norm(out + x, w[p + "mlp.layernorm.weight"], w[p + "mlp.layernorm.bias"], eps)
    return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def random_dna(n, rng, low=20, high=320):
    return ["".join(rng.choice(list("ACGT"), size=rng.integers(low, high))) for _ in range(n)]


def sharpen(directory):
    """Scale the random matrices 5x so q.k scores (not only ALiBi) shape the attention."""
    file = directory / "pytorch_model.bin"
    state = torch.load(file, weights_only=True)
    torch.save({k: v * 5 if v.dim() == 2 else v for k, v in state.items()}, file)
    return state | {k: v * 5 for k, v in state.items() if v.dim() == 2}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dnabert-tiny")
    write_random_dnabert(directory, "tiny", seed=3)
    state = sharpen(directory)
    config = DnabertConfig.from_hf(__import__("json").loads((directory / "config.json").read_text()))
    return load_dnabert(directory), state, config.__dict__


@pytest.fixture(scope="module")
def token_lists():
    rng = np.random.default_rng(0)
    seqs = [PHIX_1_302[:151], PHIX_1_302, "ACGT", "acgtn" * 9] + random_dna(12, rng)
    return DnabertTokenizer.default().encode_batch(seqs)


def relative_max_error(ours, ref):
    return ((ours.double() - ref).abs().max() / ref.abs().max()).item()


def test_alibi_slopes_follow_the_published_rule():
    assert alibi_slopes(12) == pytest.approx(SLOPES[12], abs=1e-8)
    assert alibi_slopes(6) == pytest.approx(SLOPES[6], abs=1e-12)
    assert alibi_slopes(8) == [2.0**-i for i in range(1, 9)]


def test_packed_matches_padded_reference(tiny, token_lists):
    model, state, config = tiny
    ours = model.embed(pack(token_lists))
    assert ours.dtype == torch.float32 and ours.shape == (len(token_lists), config["hidden_size"])
    assert relative_max_error(ours, reference_embed(state, config, token_lists)) <= 1e-4


def test_packed_equals_one_at_a_time(tiny, token_lists):
    model, _, _ = tiny
    together = model.embed(pack(token_lists))
    alone = torch.cat([model.embed(pack([ids])) for ids in token_lists])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_empty_batch(tiny):
    model, _, config = tiny
    assert model.embed(pack([])).shape == (0, config["hidden_size"])


def test_published_layout_loads_into_default_config(tmp_path):
    """The full-size architecture's parameter names and shapes equal the published checkpoint's."""
    with torch.device("meta"):
        model = DnabertS(DnabertConfig())
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    from virnucpro.devtools.random_dnabert import published_shapes

    config = {f: getattr(DnabertConfig(), f) for f in DnabertConfig.__dataclass_fields__}
    published = {k: v for k, v in published_shapes(config).items() if not k.startswith("pooler.")}
    assert ours == published


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_full_size_bf16_fast_path_matches_fp32_reference(tmp_path):
    config = {f: getattr(DnabertConfig(), f) for f in DnabertConfig.__dataclass_fields__}
    state = random_state_dict(config, seed=11)
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(__import__("json").dumps(config))
    rng = np.random.default_rng(1)
    token_lists = DnabertTokenizer.default().encode_batch(random_dna(96, rng, 140, 160) + random_dna(8, rng, 5, 600))
    torch.backends.cuda.matmul.allow_tf32 = False
    reference = reference_embed(state, config, token_lists, dtype=torch.float32, device="cuda")
    fast = load_dnabert(tmp_path, "cuda", torch.bfloat16).embed(pack(token_lists))
    cosine = torch.nn.functional.cosine_similarity(fast, reference, dim=1)
    assert cosine.min().item() >= 0.9999
    exact = load_dnabert(tmp_path, "cuda", torch.float32).embed(pack(token_lists))
    assert relative_max_error(exact, reference.double()) <= 1e-4
