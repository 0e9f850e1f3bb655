"""Which files a model directory's weights are in, and keeping every such path inside it.

Paths come from files anyone can edit (manifest.json, an index's weight_map), so each one must
resolve, symlinks followed, inside the directory it belongs to; anything else is refused before
the outside file is opened or even sized. A Hugging Face cache snapshot links its files into the
repository's blobs/ folder, so there the boundary is the repository folder.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from virnucpro.errors import ModelLoadError
from virnucpro.untrusted import Invalid, load_json_object

# (index file, single file) pairs, preferred first: safetensors never run a pickle.
WEIGHT_LAYOUTS = (("model.safetensors.index.json", "model.safetensors"),
                  ("pytorch_model.bin.index.json", "pytorch_model.bin"))  # fmt: skip


def boundary(directory: Path) -> Path:
    """The folder a model directory's files must resolve into (see module docstring)."""
    directory = _real(directory)
    return directory.parent.parent if directory.parent.name == "snapshots" else directory


def inside(directory: Path, relative: object, what: str, root: Path | None = None) -> Path:
    """directory/relative, refused unless a plain relative name resolving inside `root`
    (default: the directory itself)."""
    if not isinstance(relative, str) or not relative or "\\" in relative or "\0" in relative:
        raise ModelLoadError(f"{what}: {str(relative)[:80]!r} is not a relative file name")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise ModelLoadError(f"{what}: {relative[:80]!r} points outside {directory}; refused")
    path = Path(directory) / pure
    if not _real(path).is_relative_to(root or _real(directory)):
        raise ModelLoadError(f"{what}: {relative[:80]!r} resolves outside {directory} (a symlink?); refused")
    return path


def _real(path: Path) -> Path:
    """Symlinks followed, without stat-ing the target (Path.resolve would)."""
    return Path(os.path.realpath(path))


def weight_files(directory: Path) -> list[Path]:
    """The weight files a loader reads from a Hugging Face directory, in load order.

    An index's shards must be relative names inside the directory; with no index, the single
    preferred weights file. Empty when the directory has no weights.
    """
    root = boundary(directory)
    for index_name, single_name in WEIGHT_LAYOUTS:
        index = directory / index_name
        if index.is_file():
            return [inside(directory, name, str(index), root) for name in _index_shards(index)]
        if (directory / single_name).is_file():
            return [inside(directory, single_name, str(directory), root)]
    return []


def files_read(directory: Path) -> list[Path]:
    """Every file a loader reads from an encoder directory: configs, tokenizer, index, weights."""
    support = [directory / name for name in ("config.json", "tokenizer.json") if (directory / name).is_file()]
    indexes = [directory / index for index, _ in WEIGHT_LAYOUTS if (directory / index).is_file()][:1]
    return support + indexes + weight_files(directory)


def _index_shards(index: Path) -> list[str]:
    try:
        weight_map = load_json_object(index).get("weight_map")
    except Invalid as err:
        raise ModelLoadError(f"{index} is not a weights index: {err}") from None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelLoadError(f"{index}: weight_map is not a non-empty object")
    shards = set()
    for name in weight_map.values():
        if not isinstance(name, str):
            raise ModelLoadError(f"{index}: weight_map holds a {type(name).__name__}, not a file name")
        shards.add(name)
    return sorted(shards)
