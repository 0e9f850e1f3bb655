"""The VirNucPro MLP, and loading it from the published `.pth` files or our safetensors format.

Attribute names match the original's so state_dict keys copy one to one. Two on-disk formats:
the published pickled whole-module `.pth` (read through the allow-list in `safe_pickle`, nothing
in it is executed) and our `.safetensors` with metadata (dims, chunk size, provenance).
"""

from __future__ import annotations

import json
import reprlib
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from virnucpro import __version__
from virnucpro.errors import ModelLoadError
from virnucpro.fsutil.atomic import write_bytes_atomic
from virnucpro.fsutil.hashing import sha256_file
from virnucpro.models.checkpoint_keys import check_tensors
from virnucpro.models.safe_pickle import (
    PickledModule,
    load_pickle_checkpoint,
    module_state_dict,
    tensor_state_dict,
)
from virnucpro.models.weight_checks import check_batchnorm_variance, check_finite

NUM_CLASSES = 2  # class 0 = others (score1), class 1 = virus (score2)
BN_EPS = 1e-5
PUBLISHED_DNABERT_DIM, PUBLISHED_ESM_DIM = 768, 2560
SAFETENSORS_FORMAT = "virnucpro-classifier"
# Classes a genuine classifier pickle names: the original script's class, or ours if re-saved.
PICKLED_CLASSIFIER_CLASSES = ("__main__.MLPClassifier", "virnucpro.models.classifier.MLPClassifier")
_OPTIONAL_KEYS = {"bn1.num_batches_tracked"}
_MAX_METADATA_CHARS = 4096  # provenance strings and small numbers; anything longer is not ours
_MAX_METADATA_DIGITS = 9


class MLPClassifier(nn.Module):
    """Linear(D->hidden) -> BatchNorm1d -> ReLU -> Dropout(0.5) -> Linear(hidden->2)."""

    def __init__(self, input_dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.hidden_layer = nn.Linear(input_dim, hidden)
        self.bn1 = nn.BatchNorm1d(hidden, eps=BN_EPS)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)
        self.output_layer = nn.Linear(hidden, NUM_CLASSES)

    @property
    def input_dim(self) -> int:
        return self.hidden_layer.in_features

    @property
    def hidden(self) -> int:
        return self.hidden_layer.out_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits; follows train()/eval() like any module (used for training)."""
        hidden = self.relu(self.bn1(self.hidden_layer(features)))
        return self.output_layer(self.dropout(hidden))

    @torch.no_grad()
    def probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """[B, 2] softmax (P(others), P(virus)) in fp32 with eval-mode semantics, whatever the mode.

        Spelled out with functional ops so a model left in train mode still scores with the
        running statistics and without dropout, as the original's `model.eval()` inference did.
        """
        weight = self.hidden_layer.weight
        x = features.to(device=weight.device, dtype=torch.float32)
        hidden = F.linear(x, weight.float(), self.hidden_layer.bias.float())
        bn = self.bn1
        hidden = F.batch_norm(
            hidden, bn.running_mean.float(), bn.running_var.float(), bn.weight.float(), bn.bias.float(),
            training=False, eps=bn.eps,
        )
        logits = F.linear(F.relu(hidden), self.output_layer.weight.float(), self.output_layer.bias.float())
        return torch.softmax(logits, dim=1)


@dataclass(frozen=True)
class ClassifierInfo:
    """What is known about a classifier file; stored as safetensors metadata in our format."""

    input_dim: int
    hidden: int
    dnabert_dim: int | None = None
    esm_dim: int | None = None
    chunk_size: int | None = None
    source_name: str | None = None
    source_sha256: str | None = None
    created_by: str | None = None
    file_format: str = "safetensors"  # "safetensors" | "pth" (not stored in the metadata)

    def to_metadata(self) -> dict[str, str]:
        stored = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "file_format"}
        metadata = {key: str(value) for key, value in stored.items() if value is not None}
        return {"format": SAFETENSORS_FORMAT, **metadata}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], path: Path) -> ClassifierInfo:
        if metadata.get("format") != SAFETENSORS_FORMAT:
            raise ModelLoadError(f"{path}: not a virnucpro classifier (safetensors metadata lacks format)")
        ints = {"input_dim", "hidden", "dnabert_dim", "esm_dim", "chunk_size"}
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name in metadata:
                raw = metadata[f.name]
                if len(raw) > _MAX_METADATA_CHARS:
                    raise ModelLoadError(f"{path}: metadata {f.name} is {len(raw):,} characters long; not a virnucpro classifier")
                if f.name in ints and not (raw.isascii() and raw.isdigit() and len(raw) <= _MAX_METADATA_DIGITS):
                    raise ModelLoadError(f"{path}: metadata {f.name}={raw[:40]!r} is not a whole number of at most {_MAX_METADATA_DIGITS} digits")
                values[f.name] = int(raw) if f.name in ints else raw
        return cls(**values)


def chunk_size_mismatch(info: ClassifierInfo, path: str | Path, model_type: int) -> str | None:
    """A warning when the classifier records (at conversion) a chunk size other than the run's
    model type: its scores would be for chunks of another length. None when they agree or the
    file records nothing (a published .pth does not)."""
    if info.chunk_size is None or info.chunk_size == model_type:
        return None
    return (f"classifier {path} was made for {info.chunk_size}-bp chunks but --model-type is {model_type};"
            f" its scores are not calibrated for these chunks (use --model-type {info.chunk_size} or its classifier)")


def load_classifier(path: str | Path) -> tuple[MLPClassifier, ClassifierInfo]:
    """Load either format (detected from the content, not the name); the model is in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: classifier file not found")
    with open(path, "rb") as stream:
        head = stream.read(9)
    if len(head) == 9 and head[8:9] == b"{":  # safetensors: u64 header length, then JSON
        model, info = _load_safetensors(path)
    else:
        model, info = _load_pickled(path)
    return model.eval(), info


def _load_pickled(path: Path) -> tuple[MLPClassifier, ClassifierInfo]:
    """The published format: `torch.save(model)` of the whole module (or a bare state_dict)."""
    obj = load_pickle_checkpoint(path, modules=PICKLED_CLASSIFIER_CLASSES)
    if isinstance(obj, PickledModule):
        _check_batchnorm_eps(obj, path)
        state = module_state_dict(obj)
    else:
        state = tensor_state_dict(obj, path)
    model = model_from_state_dict(state, path)
    published_dims = model.input_dim == PUBLISHED_DNABERT_DIM + PUBLISHED_ESM_DIM
    info = ClassifierInfo(
        input_dim=model.input_dim,
        hidden=model.hidden,
        dnabert_dim=PUBLISHED_DNABERT_DIM if published_dims else None,
        esm_dim=PUBLISHED_ESM_DIM if published_dims else None,
        source_name=path.name,
        source_sha256=sha256_file(path),
        file_format="pth",
    )
    return model, info


def _check_batchnorm_eps(module: PickledModule, path: Path) -> None:
    bn1 = (module.state.get("_modules") or {}).get("bn1")
    eps = getattr(bn1, "state", {}).get("eps") if isinstance(bn1, PickledModule) else None
    if eps is not None and (not isinstance(eps, float) or eps != BN_EPS):
        raise ModelLoadError(f"{path}: bn1.eps is {reprlib.repr(eps)}, the VirNucPro classifier uses {BN_EPS}")


def _load_safetensors(path: Path) -> tuple[MLPClassifier, ClassifierInfo]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except SafetensorError as error:
        raise ModelLoadError(f"{path}: unreadable safetensors file ({error})") from None
    info = ClassifierInfo.from_metadata(metadata, path)
    model = model_from_state_dict(state, path)
    if (info.input_dim, info.hidden) != (model.input_dim, model.hidden):
        raise ModelLoadError(f"{path}: metadata dims disagree with the weight shapes")
    return model, info


def model_from_state_dict(state: dict[str, torch.Tensor], source: str | Path) -> MLPClassifier:
    """Build the MLP from its state_dict: exact key set (all problems in one message), checked shapes."""
    weight = state.get("hidden_layer.weight")
    if weight is None or weight.dim() != 2:
        raise ModelLoadError(f"{source}: no 2-D hidden_layer.weight: not a VirNucPro classifier")
    model = MLPClassifier(input_dim=weight.shape[1], hidden=weight.shape[0])
    expected = model.state_dict()
    check_tensors(f"{source}: not a VirNucPro classifier", expected, state, optional=_OPTIONAL_KEYS)
    check_finite(f"classifier {source}", state)
    check_batchnorm_variance(f"classifier {source}", state)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=False)
    return model


def save_classifier_safetensors(model: MLPClassifier, path: str | Path, info: ClassifierInfo) -> None:
    """Write our format beside `path` then rename, so a reader never sees a half-written file."""
    from safetensors.torch import save

    info = replace(info, input_dim=model.input_dim, hidden=model.hidden, created_by=f"virnucpro {__version__}")
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    write_bytes_atomic(path, _reproducible(save(tensors, metadata=info.to_metadata())))


def _reproducible(data: bytes) -> bytes:
    """The safetensors file `data` with its metadata keys sorted: safetensors writes them from a
    Rust HashMap, in an order that changes from run to run, so the same input gave different bytes.
    The header is rewritten (same JSON, metadata sorted, padded with spaces to 8 bytes as
    safetensors pads it); tensor offsets are relative to the data after it, so the data is kept as is."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def convert_classifier(source: str | Path, output: str | Path, chunk_size: int | None = None) -> ClassifierInfo:
    """Load a classifier once (a pickled `.pth` through the allow-list loader) and store it in our
    safetensors format; `chunk_size`, when given, is recorded in the metadata. The one conversion
    behind both `virnucpro convert-classifier` and `virnucpro download`; returns what was recorded."""
    model, info = load_classifier(source)
    if chunk_size is not None:
        info = replace(info, chunk_size=chunk_size)
    save_classifier_safetensors(model, output, info)
    return info
