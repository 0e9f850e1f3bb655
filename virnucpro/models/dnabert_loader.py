"""Load DNABERT-S from a local Hugging Face directory (config.json + weights) into `DnabertS`.

Weights: model.safetensors if present, else pytorch_model.bin read with torch.load(weights_only=True)
so a checkpoint can never run code. Keys may carry a `bert.` prefix (checkpoints saved from
BertForMaskedLM) or not (saved from BertModel, as DNABERT-S's config declares); both load.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from virnucpro.errors import ModelLoadError
from virnucpro.models.checkpoint_keys import check_tensors
from virnucpro.models.dnabert import DnabertConfig, DnabertS

PREFIX = "bert."
# Checkpoint entries outside the encoder we run: the pooler and the masked-LM head.
IGNORED_PREFIXES = ("pooler.", "cls.")


def load_dnabert(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> DnabertS:
    """DnabertS in eval mode on `device` with parameters in `dtype`."""
    path = Path(path)
    config = DnabertConfig.from_hf(_read_json(path / "config.json"))
    state = _strip_prefix(_read_weights(path))
    with torch.device("meta"):
        model = DnabertS(config)
    check_tensors(f"DNABERT-S checkpoint {path} does not match the architecture", model.state_dict(), state)
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()


def _read_json(file: Path) -> dict:
    if not file.is_file():
        raise ModelLoadError(f"DNABERT-S config not found: {file}")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"DNABERT-S config is not valid JSON: {file}: {err}") from err


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    safetensors_file, pickle_file = path / "model.safetensors", path / "pytorch_model.bin"
    if safetensors_file.is_file():
        try:
            return load_file(safetensors_file, device="cpu")
        except SafetensorError as err:
            raise ModelLoadError(f"unreadable DNABERT-S weights {safetensors_file}: {err}") from err
    if not pickle_file.is_file():
        raise ModelLoadError(f"no DNABERT-S weights in {path} (expected model.safetensors or pytorch_model.bin)")
    try:
        state = torch.load(pickle_file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"refused or unreadable DNABERT-S weights {pickle_file}: {first_line}") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{pickle_file} is not a state dict of tensors")
    return state


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    stripped = {key.removeprefix(PREFIX): value for key, value in state.items()}
    return {key: value for key, value in stripped.items() if not key.startswith(IGNORED_PREFIXES)}
