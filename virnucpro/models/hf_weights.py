"""Reading the weights of a Hugging Face model directory into one state dict (DNABERT-S, ESM-2).

One reader for both encoders: the files are those `model_files.weight_files` names (an index's
shards or the single preferred file); safetensors load straight onto the target device (an 11 GB
checkpoint never sits whole in host memory): onto a GPU through bounded pinned staging buffers
(models/staged_safetensors.py; VIRNUCPRO_STAGED_LOAD=0 turns that off, for comparison), elsewhere
through safetensors' own reader. Pickled files go through the allow-list loader.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from virnucpro.errors import ModelLoadError
from virnucpro.models.model_files import weight_files
from virnucpro.models.safe_pickle import load_pickle_checkpoint, tensor_state_dict
from virnucpro.models.staged_safetensors import read_safetensors_staged

STAGED_ENV = "VIRNUCPRO_STAGED_LOAD"


def read_hf_weights(path: Path, label: str, device: torch.device | str = "cpu",
                    load_pickled: Callable[[Path], object] = load_pickle_checkpoint) -> dict[str, torch.Tensor]:
    """Every weight file of directory `path` merged into one state dict; `label` names the model in errors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    files = weight_files(path)
    if not files:
        raise ModelLoadError(f"no {label} weights in {path} (expected model.safetensors or pytorch_model.bin)")
    state: dict[str, torch.Tensor] = {}
    staged = torch.device(device).type == "cuda" and os.environ.get(STAGED_ENV, "1") != "0"
    for file in files:
        if file.name.endswith(".safetensors"):
            try:
                state |= read_safetensors_staged(file, device) if staged else load_file(file, device=str(device))
            except SafetensorError as err:
                raise ModelLoadError(f"unreadable {label} weights {file}: {err}") from None
        else:
            state |= tensor_state_dict(load_pickled(file), file)
    return state
