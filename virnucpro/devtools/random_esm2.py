"""Random-weight ESM-2 checkpoints in the published on-disk layouts (tests and benchmarks).

`write_random_esm2` writes a Hugging Face directory (config.json + model.safetensors, keys with the
`esm.` prefix plus lm_head/contact_head, per-layer fp16-rounded rotary inv_freq) exactly as the
published facebook/esm2_* repositories hold it. The safetensors file is streamed one tensor at a
time, so the full 3B size (11 GB of fp32) needs little host memory; tensors are drawn on the GPU
when there is one. `write_fair_esm_checkpoint` re-saves such a directory as a fair-esm `.pt`.
"""

from __future__ import annotations

import argparse
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import torch

from virnucpro.models.esm2 import ESM2Config, rotary_inv_freq

SIZES = {
    "tiny": ESM2Config(num_layers=3, hidden_size=128, num_heads=8, ffn_size=512),
    "full": ESM2Config(num_layers=36, hidden_size=2560, num_heads=40, ffn_size=10240),  # esm2_t36_3B_UR50D
}
_WEIGHT_STD = 0.02  # like the published models' initializer_range
_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def hf_config(cfg: ESM2Config) -> dict:
    """config.json fields as in facebook/esm2_t36_3B_UR50D, sizes from cfg."""
    return {
        "architectures": ["EsmForMaskedLM"],
        "model_type": "esm",
        "attention_probs_dropout_prob": 0.0,
        "hidden_dropout_prob": 0.0,
        "emb_layer_norm_before": False,
        "hidden_act": "gelu",
        "hidden_size": cfg.hidden_size,
        "initializer_range": _WEIGHT_STD,
        "intermediate_size": cfg.ffn_size,
        "is_folding_model": False,
        "layer_norm_eps": cfg.layer_norm_eps,
        "mask_token_id": 32,
        "max_position_embeddings": 1026,
        "num_attention_heads": cfg.num_heads,
        "num_hidden_layers": cfg.num_layers,
        "pad_token_id": 1,
        "position_embedding_type": "rotary",
        "token_dropout": True,
        "torch_dtype": "float32",
        "vocab_size": cfg.vocab_size,
    }


def _tensor_specs(cfg: ESM2Config) -> Iterator[tuple[str, tuple[int, ...], str]]:
    """(HF key, shape, init) for every tensor of the published HF layout."""
    d, f = cfg.hidden_size, cfg.ffn_size
    yield "esm.embeddings.word_embeddings.weight", (cfg.vocab_size, d), "embedding"
    for i in range(cfg.num_layers):
        p = f"esm.encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):  # fmt: skip
            yield f"{p}{name}.weight", (d, d), "weight"
            yield f"{p}{name}.bias", (d,), "bias"
        yield f"{p}attention.self.rotary_embeddings.inv_freq", (cfg.head_dim // 2,), "inv_freq"
        for name, shape in (("intermediate.dense", (f, d)), ("output.dense", (d, f))):
            yield f"{p}{name}.weight", shape, "weight"
            yield f"{p}{name}.bias", shape[:1], "bias"
        for name in ("attention.LayerNorm", "LayerNorm"):
            yield f"{p}{name}.weight", (d,), "norm"
            yield f"{p}{name}.bias", (d,), "bias"
    yield "esm.encoder.emb_layer_norm_after.weight", (d,), "norm"
    yield "esm.encoder.emb_layer_norm_after.bias", (d,), "bias"
    yield "esm.contact_head.regression.weight", (1, cfg.num_layers * cfg.num_heads), "weight"
    yield "esm.contact_head.regression.bias", (1,), "bias"
    yield "lm_head.dense.weight", (d, d), "weight"
    yield "lm_head.dense.bias", (d,), "bias"
    yield "lm_head.layer_norm.weight", (d,), "norm"
    yield "lm_head.layer_norm.bias", (d,), "bias"
    yield "lm_head.bias", (cfg.vocab_size,), "bias"


def _draw(shape: tuple[int, ...], init: str, cfg: ESM2Config, gen: torch.Generator) -> torch.Tensor:
    if init == "inv_freq":
        return rotary_inv_freq(cfg.head_dim, cfg.rope_theta)
    t = torch.randn(shape, generator=gen, device=gen.device)
    scale = {"embedding": 1.0, "weight": _WEIGHT_STD, "bias": _WEIGHT_STD, "norm": 0.1}[init]
    t.mul_(scale)
    return t.add_(1.0) if init == "norm" else t


def write_random_esm2(outdir: str | Path, size: str = "tiny", seed: int = 0) -> int:
    """Write an HF ESM-2 directory with random weights; returns the hidden size."""
    cfg = SIZES[size]
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "config.json").write_text(json.dumps(hf_config(cfg), indent=2) + "\n")
    device = "cuda" if size == "full" and torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=device).manual_seed(seed)
    specs = list(_tensor_specs(cfg))
    tensors = ((name, _draw(shape, init, cfg, gen).cpu()) for name, shape, init in specs)
    write_safetensors_streaming(outdir / "model.safetensors", [(n, s, torch.float32) for n, s, _ in specs], tensors)
    return cfg.hidden_size


def write_safetensors_streaming(path: Path, layout: list, tensors: Iterator[tuple[str, torch.Tensor]]) -> None:
    """Write a .safetensors file tensor by tensor: header from (name, shape, dtype), then the data."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, dtype in layout:
        nbytes = torch.Size(shape).numel() * dtype.itemsize
        header[name] = {"dtype": _DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # 8-byte aligned data start
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(blob)) + blob)
        for (name, shape, dtype), (got_name, tensor) in zip(layout, tensors, strict=True):
            if got_name != name or tuple(tensor.shape) != tuple(shape) or tensor.dtype != dtype:
                raise ValueError(f"tensor {got_name} does not match the header entry {name}")
            out.write(tensor.contiguous().view(torch.uint8).numpy().tobytes())


def write_fair_esm_checkpoint(esm2_dir: str | Path, pt_path: str | Path) -> None:
    """Re-save an HF ESM-2 directory (as written above) in fair-esm's `.pt` layout."""
    from safetensors.torch import load_file

    raw = json.loads((Path(esm2_dir) / "config.json").read_text())
    renames = (
        ("esm.embeddings.word_embeddings.", "embed_tokens."),
        ("esm.encoder.emb_layer_norm_after.", "emb_layer_norm_after."),
        ("esm.encoder.layer.", "layers."),
        (".attention.self.query.", ".self_attn.q_proj."),
        (".attention.self.key.", ".self_attn.k_proj."),
        (".attention.self.value.", ".self_attn.v_proj."),
        (".attention.self.rotary_embeddings.", ".self_attn.rot_emb."),
        (".attention.output.dense.", ".self_attn.out_proj."),
        (".attention.LayerNorm.", ".self_attn_layer_norm."),
        (".intermediate.dense.", ".fc1."),
        (".output.dense.", ".fc2."),
        (".LayerNorm.", ".final_layer_norm."),
        ("esm.contact_head.", "contact_head."),
    )
    state = {}
    for key, tensor in load_file(Path(esm2_dir) / "model.safetensors").items():
        for old, new in renames:
            key = key.replace(old, new)
        state[key if key.startswith(("lm_head", "contact_head")) else f"encoder.sentence_encoder.{key}"] = tensor
    model_cfg = argparse.Namespace(
        encoder_layers=raw["num_hidden_layers"],
        encoder_embed_dim=raw["hidden_size"],
        encoder_ffn_embed_dim=raw["intermediate_size"],
        encoder_attention_heads=raw["num_attention_heads"],
        token_dropout=True,
    )
    torch.save({"model": state, "cfg": {"model": model_cfg}}, pt_path)
