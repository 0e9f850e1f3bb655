"""Where the models are: a user's path, a models directory, or the Hugging Face cache.

Resolution never touches the network (downloads are pipeline/download.py's: `virnucpro download`,
and predict/embed on first use through pipeline/fetch.py), so it runs the same on air-gapped clusters. With no name given, a model is looked for in
  1. the models directory given by `--models-dir` or VIRNUCPRO_MODELS,
  2. the default models directory, $XDG_CACHE_HOME/virnucpro/models (~/.cache/virnucpro/models),
  3. the Hugging Face cache (encoders only; HF_HOME / HF_HUB_CACHE are honoured),
and a miss is one error line saying how to get the models. A models directory holds
dnabert-s/, esm2_t36_3B_UR50D/, classifiers/{300,500}_model.{pth,safetensors} and manifest.json.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from virnucpro.errors import ModelLoadError
from virnucpro.models.manifest import HashStamps, Manifest, ModelIntegrityError, redownload_hint
from virnucpro.models.model_files import files_read

MODELS_ENV = "VIRNUCPRO_MODELS"
CLASSIFIER_SUBDIR = "classifiers"
CLASSIFIER_TYPES = (300, 500)
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_HOW_TO_GET = "run `virnucpro download`, or copy a models directory made by it and set VIRNUCPRO_MODELS to it"


class ModelNotFoundError(ModelLoadError):
    """A model is not at the given path nor in any models directory or cache."""


@dataclass(frozen=True)
class EncoderSpec:
    """One published encoder: its hub repository, its sub-directory here, and the files we use."""

    kind: str
    label: str
    repo_id: str
    subdir: str
    support_files: tuple[str, ...]  # fetched when the repository has them
    weight_files: tuple[str, ...]  # preferred first; one is enough

    def is_complete(self, directory: Path) -> bool:
        has_weights = any((directory / name).is_file() for name in self.weight_files)
        return (directory / "config.json").is_file() and has_weights


ENCODERS: dict[str, EncoderSpec] = {
    "dnabert": EncoderSpec(
        kind="dnabert",
        label="DNABERT-S",
        repo_id="zhihan1996/DNABERT-S",
        subdir="dnabert-s",
        support_files=("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"),
        weight_files=("pytorch_model.bin",),  # the published checkpoint format (no safetensors)
    ),
    "esm2": EncoderSpec(
        kind="esm2",
        label="ESM-2 3B",
        repo_id="facebook/esm2_t36_3B_UR50D",
        subdir="esm2_t36_3B_UR50D",
        support_files=("config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"),
        weight_files=("model.safetensors", "pytorch_model.bin"),  # safetensors: no pickle, mmap
    ),
}


@dataclass(frozen=True)
class ModelLocation:
    """A found model. `root` + `relative` name its manifest entries when it is in a models directory."""

    kind: str
    path: Path
    source: str  # "path" | "models-dir" | "hf-cache"
    root: Path | None = None
    relative: str | None = None


def cache_root() -> Path:
    """$XDG_CACHE_HOME/virnucpro or ~/.cache/virnucpro on every platform, as huggingface_hub does."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "virnucpro"


def default_models_dir() -> Path:
    return cache_root() / "models"


def hash_stamps() -> HashStamps:
    return HashStamps(cache_root() / "verified-sha256.json")


def user_models_dir(models_dir: str | Path | None = None) -> Path | None:
    """The directory from `--models-dir` or VIRNUCPRO_MODELS; an error when it does not exist."""
    chosen = models_dir if models_dir is not None else os.environ.get(MODELS_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        origin = "--models-dir" if models_dir is not None else MODELS_ENV
        raise ModelNotFoundError(f"models directory {path} (from {origin}) does not exist")
    return path


def models_dir_candidates(models_dir: str | Path | None = None) -> list[Path]:
    """Models directories in search order: the user's, then the default one."""
    candidates = [user_models_dir(models_dir), default_models_dir()]
    unique = []
    for candidate in candidates:
        if candidate is not None and candidate not in unique:
            unique.append(candidate)
    return unique


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def find_model(
    kind: str, name_or_path: str | None, model_type: int, *, models_dir: str | Path | None = None
) -> ModelLocation:
    """Where a model is, without checking its contents; raises ModelNotFoundError with advice."""
    if kind == "classifier":
        return _find_classifier(name_or_path, model_type, models_dir)
    if kind not in ENCODERS:
        raise ValueError(f"unknown model kind {kind!r}")
    spec = ENCODERS[kind]
    if name_or_path is not None:
        local = Path(name_or_path).expanduser()
        if local.exists():
            return ModelLocation(kind, local, "path")
        if not _HUB_NAME.fullmatch(name_or_path):
            raise ModelNotFoundError(f"{spec.label} model path {local} does not exist")
        if name_or_path != spec.repo_id:
            return _from_hf_cache_or_fail(spec, name_or_path)
    for root in models_dir_candidates(models_dir):
        if spec.is_complete(root / spec.subdir):
            return ModelLocation(kind, root / spec.subdir, "models-dir", root, spec.subdir)
    snapshot = _from_hf_cache(spec, spec.repo_id)
    if snapshot is not None:
        return ModelLocation(kind, snapshot, "hf-cache")
    searched = ", ".join(str(root) for root in models_dir_candidates(models_dir))
    raise ModelNotFoundError(
        f"{spec.label} not found in {searched} or the Hugging Face cache {hf_cache_dir()}; {_HOW_TO_GET}"
    )


def resolve_model(
    kind: str,
    name_or_path: str | None,
    model_type: int,
    *,
    models_dir: str | Path | None = None,
    verify: bool = True,
) -> Path:
    """A local path for `kind` ("esm2" | "dnabert" | "classifier"), checked against its manifest.

    Files in a models directory with a manifest get a size check always and, with `verify`, a
    sha256 check on first use of each file version (see models/manifest.py).
    """
    location = find_model(kind, name_or_path, model_type, models_dir=models_dir)
    check_location(location, verify=verify)
    return location.path


def check_location(location: ModelLocation, *, verify: bool) -> bool:
    """Check a found model against its manifest; False when there is nothing to check against."""
    if location.root is None:
        return False
    manifest = Manifest.load(location.root)
    if manifest is None or not manifest.under(location.relative):
        return False
    _check_all_recorded(location, manifest)
    if verify:
        manifest.verify(location.relative, hash_stamps())
    else:
        manifest.check_sizes(location.relative)
    return True


def _check_all_recorded(location: ModelLocation, manifest: Manifest) -> None:
    """Every file the loader will read is one the manifest checks: an index or a stray file
    must not smuggle in unchecked weights."""
    if not location.path.is_dir():
        return
    root = location.root.resolve()
    for path in files_read(location.path):
        relative = path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else None
        if relative not in manifest.files:
            raise ModelIntegrityError(
                f"{path} is read when loading {location.relative} but is not in {location.root / 'manifest.json'},"
                f" so its checksum cannot be checked; {redownload_hint(location.root)}"
            )


def classifier_files(model_type: int) -> tuple[str, str]:
    """Relative paths of the published .pth and our converted .safetensors in a models directory."""
    if model_type not in CLASSIFIER_TYPES:
        raise ModelNotFoundError(f"no published classifier for model type {model_type} (use 300 or 500)")
    stem = f"{CLASSIFIER_SUBDIR}/{model_type}_model"
    return f"{stem}.pth", f"{stem}.safetensors"


def _find_classifier(name_or_path: str | None, model_type: int, models_dir) -> ModelLocation:
    if name_or_path is not None:
        local = Path(name_or_path).expanduser()
        if not local.is_file():
            raise ModelNotFoundError(f"classifier file {local} does not exist")
        return ModelLocation("classifier", local, "path")
    pth, safetensors = classifier_files(model_type)
    for root in models_dir_candidates(models_dir):
        for relative in (safetensors, pth):
            if (root / relative).is_file():
                return ModelLocation("classifier", root / relative, "models-dir", root, relative)
    searched = ", ".join(str(root) for root in models_dir_candidates(models_dir))
    raise ModelNotFoundError(f"the {model_type}-bp classifier is not in {searched}; {_HOW_TO_GET}")


def _from_hf_cache(spec: EncoderSpec, repo_id: str) -> Path | None:
    """The cached snapshot of `repo_id` (default branch) when it holds a config and weights."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, "config.json")
    if not isinstance(config, str):
        return None
    snapshot = Path(config).parent
    return snapshot if spec.is_complete(snapshot) else None


def _from_hf_cache_or_fail(spec: EncoderSpec, repo_id: str) -> ModelLocation:
    snapshot = _from_hf_cache(spec, repo_id)
    if snapshot is None:
        raise ModelNotFoundError(
            f"{repo_id} is neither a local path nor complete in the Hugging Face cache {hf_cache_dir()};"
            f" fetch it with `hf download {repo_id}` or give a local directory"
        )
    return ModelLocation(spec.kind, snapshot, "hf-cache")
