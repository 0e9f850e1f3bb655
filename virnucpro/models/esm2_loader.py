"""Load ESM-2 weights from a Hugging Face directory or a fair-esm `.pt` into our `ESM2`.

Checkpoints are untrusted: safetensors are plain tensors; pickled files (`pytorch_model.bin`,
fair-esm `.pt`) go through the project's allow-list unpickler with only `argparse.Namespace` (the
config object fair-esm files hold) allowed beyond tensors and containers. The model is built on the meta device and the weights are assigned,
so startup costs no random initialisation.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from virnucpro.errors import ModelLoadError
from virnucpro.models import config_check
from virnucpro.models.checkpoint_keys import check_tensors
from virnucpro.models.esm2 import ESM2, ESM2Config, rotary_inv_freq
from virnucpro.models.hf_weights import read_hf_weights
from virnucpro.models.load_timer import LoadTimer
from virnucpro.models.meta_build import build_on_meta
from virnucpro.models.safe_pickle import load_pickle_checkpoint, tensor_state_dict
from virnucpro.models.weight_checks import check_norms_finite

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
    timer: LoadTimer | None = None,
) -> ESM2:
    """An ESM2 in eval mode on `device`; dtype defaults to bf16 on CUDA and fp32 elsewhere.

    `fast` (default: on for CUDA fp16/bf16 when Triton is installed) turns on the compiled,
    fixed-token-count path (`ESM2.enable_compile`); off keeps the plain eager path. Either path
    runs fc1's GELU as cuBLASLt's epilogue where that is checked to work (`ESM2.use_gelu_epilogue`).
    `timer` gets the phases: file reads (onto the device), then conversion and casts.
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
    if timer is not None:
        timer.mark("esm2_read")
    model = build_esm2(cfg, state, layout, device, dtype)
    if timer is not None:
        timer.mark("esm2_convert_cast")
    model = model.use_gelu_epilogue()
    if fast is None:
        fast = device.type == "cuda" and dtype != torch.float32 and importlib.util.find_spec("triton") is not None
    model = model.enable_compile() if fast else model
    if timer is not None:
        timer.mark("esm2_kernel_setup")
    return model


def build_esm2(
    cfg: ESM2Config, state: Mapping[str, torch.Tensor], layout: int, device, dtype
) -> ESM2:
    """Map a checkpoint state dict (layout 0 = HF, 1 = fair-esm, prefixes stripped) onto ESM2."""
    ours, used = _convert(cfg, state, layout)
    model = build_on_meta(lambda: ESM2(cfg))
    unused = {k: t for k, t in state.items() if k not in used and not _IGNORED.search(k)}
    check_tensors("ESM-2 checkpoint does not match the architecture", dict(model.named_parameters()),
                  {**ours, **unused})
    check_norms_finite("ESM-2 checkpoint", ours)
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
    raw = config_check.read_config(config_file, "ESM-2")
    if raw.get("position_embedding_type", "rotary") != "rotary" or raw.get("emb_layer_norm_before"):
        raise ModelLoadError(f"{config_file}: not an ESM-2 config (needs rotary, no emb_layer_norm_before)")
    if not raw.get("token_dropout", True):
        raise ModelLoadError(f"{config_file}: token_dropout is off; ESM-2 checkpoints have it on")
    cfg = ESM2Config(
        num_layers=config_check.config_int(raw, "num_hidden_layers", config_file),
        hidden_size=config_check.config_int(raw, "hidden_size", config_file),
        num_heads=config_check.config_int(raw, "num_attention_heads", config_file),
        ffn_size=config_check.config_int(raw, "intermediate_size", config_file),
        vocab_size=config_check.config_int(raw, "vocab_size", config_file, 33),
        layer_norm_eps=config_check.config_float(raw, "layer_norm_eps", config_file, 1e-5),
        rope_theta=config_check.config_float(raw, "rope_theta", config_file, 10000.0),
    )
    config_check.check_heads(cfg.hidden_size, cfg.num_heads, config_file)
    state = {_strip(k, "esm."): t for k, t in read_hf_weights(path, "ESM-2", device, _load_pickled_weights).items()}
    config_check.check_layer_count(cfg.num_layers, state, "encoder.layer.", config_file)
    return cfg, state, 0


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
    if not isinstance(data.get("model"), dict):
        raise ModelLoadError(f"{file}: not a fair-esm checkpoint (no 'model' state dict)")
    prefix = re.compile(r"^(encoder\.sentence_encoder\.|encoder\.)")
    state = {prefix.sub("", k): t for k, t in tensor_state_dict(data["model"], file).items()}
    if "embed_tokens.weight" not in state or state["embed_tokens.weight"].dim() != 2:
        raise ModelLoadError(f"{file}: not a fair-esm ESM-2 checkpoint (no 2-D embed_tokens.weight)")
    vocab, dim = state["embed_tokens.weight"].shape
    num_layers = config_check.layer_count(state, "layers.", file)
    if "layers.0.fc1.weight" not in state or state["layers.0.fc1.weight"].dim() != 2:
        raise ModelLoadError(f"{file}: not a fair-esm ESM-2 checkpoint (no layers.0.fc1.weight)")
    cfg = ESM2Config(
        num_layers=num_layers,
        hidden_size=dim,
        num_heads=_fair_esm_heads(data, num_layers, dim, file),
        ffn_size=state["layers.0.fc1.weight"].shape[0],
        vocab_size=vocab,
    )
    return cfg, state, 1


def _fair_esm_heads(data: dict, num_layers: int, dim: int, file: Path) -> int:
    """Attention heads from cfg['model'] (ESM-2) or args (ESM-1 style), else the published table."""
    for holder in (_field(_field(data, "cfg"), "model"), _field(data, "args")):
        if (heads := _field(holder, "encoder_attention_heads")) is not None:
            heads = config_check.config_int({"num_attention_heads": heads}, "num_attention_heads", file)
            config_check.check_heads(dim, heads, file)
            return heads
    if (num_layers, dim) in _PUBLISHED_HEADS:
        return _PUBLISHED_HEADS[(num_layers, dim)]
    raise ModelLoadError(f"{file}: cannot tell the number of attention heads (no cfg/args in the file)")
