"""Random-weight classifiers in the published pickled format and in ours (tests, benchmarks).

The published `.pth` files are `torch.save(model)` of a class `MLPClassifier` defined in the
training script, so the pickle names `__main__.MLPClassifier`. `save_original_pth` reproduces that
byte layout: a class with the original's submodules, registered as `__main__.MLPClassifier` only
while torch.save runs (pickle checks that the name resolves to the very class it writes).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from virnucpro.models.classifier import (
    ClassifierInfo,
    MLPClassifier,
    save_classifier_safetensors,
)

_MISSING = object()


class _OriginalLayout(nn.Module):
    """The submodules of the original training script's MLPClassifier, in its order."""

    def __init__(self, input_dim: int, hidden_dim: int, num_class: int) -> None:
        super().__init__()
        self.hidden_layer = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)
        self.output_layer = nn.Linear(hidden_dim, num_class)


def random_classifier(input_dim: int, seed: int, hidden: int = 512) -> MLPClassifier:
    """An MLPClassifier with seeded random weights and non-trivial BatchNorm running statistics."""
    generator = torch.Generator().manual_seed(seed)
    model = MLPClassifier(input_dim, hidden)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(1000 + seed)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                scale = {"hidden_layer.weight": input_dim**-0.5, "output_layer.weight": 4 * hidden**-0.5}
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale.get(name, 0.1))
    return model.eval()


def save_original_pth(model: MLPClassifier, path: str | Path, legacy: bool = False) -> None:
    """torch.save the whole module as the original did (class `__main__.MLPClassifier`).

    `legacy=True` writes torch's pre-1.6 (non-zip) format instead of the zip format.
    """
    original_class = type("MLPClassifier", (_OriginalLayout,), {"__module__": "__main__"})
    original = original_class(model.input_dim, model.hidden, 2)
    original.load_state_dict(model.state_dict())
    original.eval()
    main_module = sys.modules["__main__"]
    previous = main_module.__dict__.get("MLPClassifier", _MISSING)
    main_module.MLPClassifier = original_class
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy format: "couldn't retrieve source code"
            torch.save(original, path, _use_new_zipfile_serialization=not legacy)
    finally:
        if previous is _MISSING:
            del main_module.MLPClassifier
        else:
            main_module.MLPClassifier = previous


def write_random_classifier(outdir: str | Path, input_dim: int, seed: int) -> None:
    """Write OUTDIR/classifier.pth (original pickled format) and OUTDIR/classifier.safetensors (ours)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    model = random_classifier(input_dim, seed)
    save_original_pth(model, outdir / "classifier.pth")
    info = ClassifierInfo(input_dim=input_dim, hidden=model.hidden, source_name=f"random seed {seed}")
    save_classifier_safetensors(model, outdir / "classifier.safetensors", info)
