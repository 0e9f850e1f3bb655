"""Load ESM-2 weights from a Hugging Face directory or a fair-esm `.pt` into our `ESM2`.

Checkpoints are untrusted: safetensors are plain tensors; pickled files (`pytorch_model.bin`,
fair-esm `.pt`) go through the project's allow-list unpickler with only `argparse.Namespace` (the
config object fair-esm files hold) allowed beyond tensors and containers. The model is built on the meta device and the weights are assigned,
so startup costs no random initialisation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from virnucpro.errors import ModelLoadError
from virnucpro.models.checkpoint_keys import check_tensors
from virnucpro.models.esm2 import ESM2, ESM2Config, rotary_inv_freq
from virnucpro.models.safe_pickle import load_pickle_checkpoint

# Keys present in published checkpoints that the encoder does not use.
_IGNORED = re.compile(r"^(lm_head|contact_head|pooler)\.|^embeddings\.position_ids$|inv_freq$")
# Heads of the published fair-esm sizes, for `.pt` files whose config cannot be read: (layers, dim).
_PUBLISHED_HEADS = {(6, 320): 20, (12, 480): 20, (30, 640): 20, (33, 1280): 20, (36, 2560): 40, (48, 5120): 40}

# our per-layer name -> (HF name, fair-esm name); q/k/v are fused separately.
_LAYER_KEYS = {
    "attn_norm": ("attention.LayerNorm", "self_attn_layer_norm"),
    "out_proj": ("attention.output.dense", "self_attn.out_proj"),
    "ffn_norm": ("LayerNorm", "final_layer_norm"),
    "fc1": ("intermediate.dense", "fc1"),
    "fc2": ("output.dense", "fc2"),
}
_QKV_KEYS = (("attention.self.query", "attention.self.key", "attention.self.value"),
             ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"))  # fmt: skip
_TOP_KEYS = {
    "embed_tokens.weight": ("embeddings.word_embeddings.weight", "embed_tokens.weight"),
    "final_norm.weight": ("encoder.emb_layer_norm_after.weight", "emb_layer_norm_after.weight"),
    "final_norm.bias": ("encoder.emb_layer_norm_after.bias", "emb_layer_norm_after.bias"),
}


def load_esm2(
    path: str | Path,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    fast: bool | None = None,
) -> ESM2:
    """An ESM2 in eval mode on `device`; dtype defaults to bf16 on CUDA and fp32 elsewhere.

    `fast` (default: on for CUDA fp16/bf16 when Triton is installed) turns on the compiled,
    fixed-token-count path (`ESM2.enable_compile`); off keeps the plain eager path. Either path
    runs fc1's GELU as cuBLASLt's epilogue where that is checked to work (`ESM2.use_gelu_epilogue`).
    """
    path = Path(path)
    device = torch.device(device)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    if path.is_dir():
        cfg, state, layout = _read_hf_dir(path, device)
    elif path.is_file():
        cfg, state, layout = _read_fair_esm(path)
    else:
        raise ModelLoadError(f"ESM-2 checkpoint not found: {path}")
    model = build_esm2(cfg, state, layout, device, dtype).use_gelu_epilogue()
    if fast is None:
        fast = device.type == "cuda" and dtype != torch.float32 and importlib.util.find_spec("triton") is not None
    return model.enable_compile() if fast else model


def build_esm2(
    cfg: ESM2Config, state: Mapping[str, torch.Tensor], layout: int, device, dtype
) -> ESM2:
    """Map a checkpoint state dict (layout 0 = HF, 1 = fair-esm, prefixes stripped) onto ESM2."""
    ours, used = _convert(cfg, state, layout)
    with torch.device("meta"):
        model = ESM2(cfg)
    unused = {k: t for k, t in state.items() if k not in used and not _IGNORED.search(k)}
    check_tensors("ESM-2 checkpoint does not match the architecture", dict(model.named_parameters()),
                  {**ours, **unused})
    stored = [t for k, t in state.items() if k.endswith("inv_freq")]
    ours["inv_freq"] = stored[0].float() if stored else rotary_inv_freq(cfg.head_dim, cfg.rope_theta)
    model.load_state_dict(ours, assign=True, strict=True)
    model.to(device=device, dtype=torch.float32)
    return model.cast(dtype).eval()


def _convert(cfg: ESM2Config, state: Mapping[str, torch.Tensor], layout: int):
    """Our state dict (fp32, q pre-scaled, q|k|v fused) and the set of checkpoint keys it used."""
    ours: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(src: str) -> torch.Tensor | None:
        if src not in state:
            return None
        used.add(src)
        return state[src].float()

    for ours_name, names in _TOP_KEYS.items():
        if (t := take(names[layout])) is not None:
            ours[ours_name] = t
    q_scale = cfg.head_dim**-0.5  # ESM scales q after projection; folding it in is exact for 4^k
    prefix = "encoder.layer." if layout == 0 else "layers."
    for i, p in ((i, p) for i in range(cfg.num_layers) for p in ("weight", "bias")):
        src = f"{prefix}{i}."
        for ours_name, names in _LAYER_KEYS.items():
            if (t := take(f"{src}{names[layout]}.{p}")) is not None:
                ours[f"layers.{i}.{ours_name}.{p}"] = t
        q, k, v = (take(f"{src}{n}.{p}") for n in _QKV_KEYS[layout])
        if q is not None and k is not None and v is not None:
            ours[f"layers.{i}.qkv.{p}"] = torch.cat((q * q_scale, k, v))
    return ours, used


# --- Hugging Face directory -------------------------------------------------------------------


def _read_hf_dir(path: Path, device: torch.device):
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(f"{path} has no config.json (expected a Hugging Face ESM-2 directory)")
    raw = json.loads(config_file.read_text())
    if raw.get("position_embedding_type", "rotary") != "rotary" or raw.get("emb_layer_norm_before"):
        raise ModelLoadError(f"{config_file}: not an ESM-2 config (needs rotary, no emb_layer_norm_before)")
    cfg = ESM2Config(
        num_layers=raw["num_hidden_layers"],
        hidden_size=raw["hidden_size"],
        num_heads=raw["num_attention_heads"],
        ffn_size=raw["intermediate_size"],
        vocab_size=raw.get("vocab_size", 33),
        layer_norm_eps=raw.get("layer_norm_eps", 1e-5),
        rope_theta=raw.get("rope_theta", 10000.0),
    )
    if not raw.get("token_dropout", True):
        raise ModelLoadError(f"{config_file}: token_dropout is off; ESM-2 checkpoints have it on")
    state = {_strip(k, "esm."): t for k, t in _read_hf_weights(path, device).items()}
    return cfg, state, 0


def _read_hf_weights(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    """safetensors go straight to `device` one tensor at a time (the 11 GB fp32 3B checkpoint never
    sits whole in host memory); pickled files are read on the host."""
    from safetensors.torch import load_file as load_safetensors

    def load_file(file: Path) -> dict[str, torch.Tensor]:
        return load_safetensors(file, device=str(device))

    for index_name, reader in (("model.safetensors.index.json", load_file),
                               ("pytorch_model.bin.index.json", _load_pickled_weights)):  # fmt: skip
        if (path / index_name).is_file():
            shards = sorted(set(json.loads((path / index_name).read_text())["weight_map"].values()))
            return {k: t for shard in shards for k, t in reader(path / shard).items()}
    if (path / "model.safetensors").is_file():
        return load_file(path / "model.safetensors")
    if (path / "pytorch_model.bin").is_file():
        return _load_pickled_weights(path / "pytorch_model.bin")
    raise ModelLoadError(f"{path} has no model.safetensors or pytorch_model.bin")


def _strip(key: str, prefix: str) -> str:
    return key.removeprefix(prefix)


# --- fair-esm .pt ------------------------------------------------------------------------------


def _load_pickled_weights(file: Path) -> dict:
    """Allow-list unpickling (models/safe_pickle.py); argparse.Namespace (fair-esm's config) is inert."""
    data = load_pickle_checkpoint(file, extra_globals={"argparse.Namespace": argparse.Namespace})
    if not isinstance(data, dict):
        raise ModelLoadError(f"{file}: expected a pickled dict of tensors, found {type(data).__name__}")
    return data


def _field(holder, name: str):
    """holder[name] or holder.name for the dicts and Namespaces fair-esm files hold; else None."""
    return holder.get(name) if isinstance(holder, dict) else getattr(holder, name, None)


def _read_fair_esm(file: Path):
    data = _load_pickled_weights(file)
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ModelLoadError(f"{file}: not a fair-esm checkpoint (no 'model' state dict)")
    prefix = re.compile(r"^(encoder\.sentence_encoder\.|encoder\.)")
    state = {prefix.sub("", k): t for k, t in data["model"].items()}
    if "embed_tokens.weight" not in state:
        raise ModelLoadError(f"{file}: not a fair-esm ESM-2 checkpoint (no embed_tokens.weight)")
    vocab, dim = state["embed_tokens.weight"].shape
    num_layers = len({k.split(".")[1] for k in state if k.startswith("layers.")})
    cfg = ESM2Config(
        num_layers=num_layers,
        hidden_size=dim,
        num_heads=_fair_esm_heads(data, num_layers, dim, file),
        ffn_size=state["layers.0.fc1.weight"].shape[0] if num_layers else 4 * dim,
        vocab_size=vocab,
    )
    return cfg, state, 1


def _fair_esm_heads(data: dict, num_layers: int, dim: int, file: Path) -> int:
    """Attention heads from cfg['model'] (ESM-2) or args (ESM-1 style), else the published table."""
    for holder in (_field(_field(data, "cfg"), "model"), _field(data, "args")):
        if isinstance(heads := _field(holder, "encoder_attention_heads"), int):
            return heads
    if (num_layers, dim) in _PUBLISHED_HEADS:
        return _PUBLISHED_HEADS[(num_layers, dim)]
    raise ModelLoadError(f"{file}: cannot tell the number of attention heads (no cfg/args in the file)")
