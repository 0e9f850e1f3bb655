"""Load DNABERT-S from a local Hugging Face directory (config.json + weights) into `DnabertS`.

Everything in the directory is untrusted. Weights: safetensors if present, else pytorch_model.bin
through the project's allow-list unpickler (models/safe_pickle.py), so a checkpoint can never run
code and a refusal names what the file asked for. The config is type- and range-checked and its
layer count matched to the weights before the model is built. Keys may carry a `bert.` prefix
(checkpoints saved from BertForMaskedLM) or not (saved from BertModel, as DNABERT-S's config
declares); both load.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import torch

from virnucpro.errors import ModelLoadError
from virnucpro.models import config_check
from virnucpro.models.checkpoint_keys import check_tensors
from virnucpro.models.dnabert import DnabertConfig, DnabertS
from virnucpro.models.hf_weights import read_hf_weights
from virnucpro.models.meta_build import build_on_meta
from virnucpro.models.weight_checks import check_norms_finite

PREFIX = "bert."
# Checkpoint entries outside the encoder we run: the pooler and the masked-LM head.
IGNORED_PREFIXES = ("pooler.", "cls.")
LAYER_PREFIX = "encoder.layer."


def load_dnabert(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 read_onto_device: bool = False) -> DnabertS:
    """DnabertS in eval mode on `device` with parameters in `dtype`. `read_onto_device`: safetensors
    are read straight onto `device` and checked and cast there (the same values: a cast rounds the
    same way on either side)."""
    path = Path(path)
    config = read_dnabert_config(path / "config.json")
    state = _strip_prefix(read_hf_weights(path, "DNABERT-S", device if read_onto_device else "cpu"))
    config_check.check_layer_count(config.num_hidden_layers, state, LAYER_PREFIX, path / "config.json")
    model = build_on_meta(lambda: DnabertS(config))
    check_tensors(f"DNABERT-S checkpoint {path} does not match the architecture", model.state_dict(), state)
    check_norms_finite(f"DNABERT-S checkpoint {path}", state)
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()


def read_dnabert_config(file: Path) -> DnabertConfig:
    """The config's sizes, each checked; keys it lacks keep the published values."""
    raw = config_check.read_config(file, "DNABERT-S")
    published = DnabertConfig()
    values = {}
    for f in fields(DnabertConfig):
        default = getattr(published, f.name)
        check = config_check.config_float if f.name in config_check.FLOAT_BOUNDS else config_check.config_int
        values[f.name] = check(raw, f.name, file, default)
    config_check.check_heads(values["hidden_size"], values["num_attention_heads"], file)
    return DnabertConfig(**values)


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    stripped = {key.removeprefix(PREFIX): value for key, value in state.items()}
    return {key: value for key, value in stripped.items() if not key.startswith(IGNORED_PREFIXES)}
