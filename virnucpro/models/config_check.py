"""Reading an encoder's config.json as untrusted input: typed, bounded, matched to the weights.

A config is used to build the model before its weights are checked against it, so a value such
as num_hidden_layers=200000 would cost minutes and gigabytes first. Every field the loaders use
is checked here for its type and a sane range, and the layer count against the layers the
weights actually hold, so a bad config is one error line before anything is built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from virnucpro.errors import ModelLoadError
from virnucpro.untrusted import Invalid, load_json_object

# Sane bounds, far outside every published ESM-2 / DNABERT size, far inside what would hang a build.
INT_BOUNDS = {
    "num_hidden_layers": (1, 512),
    "hidden_size": (1, 1 << 16),
    "num_attention_heads": (1, 1024),
    "intermediate_size": (1, 1 << 18),
    "vocab_size": (1, 1 << 20),
    "type_vocab_size": (1, 64),
}
FLOAT_BOUNDS = {"layer_norm_eps": (0.0, 1.0), "rope_theta": (1.0, 1e9)}
_MISSING = object()


def read_config(file: Path, label: str) -> dict:
    """config.json as a dict; a missing, huge, non-JSON or non-object file is one error line."""
    if not file.is_file():
        raise ModelLoadError(f"{label} config not found: {file}")
    try:
        return load_json_object(file)
    except Invalid as err:
        raise ModelLoadError(f"{label} config {file} is unusable: {err}") from None


def config_int(raw: dict, key: str, source: Path, default=_MISSING) -> int:
    """raw[key] as an int within INT_BOUNDS[key] (booleans and floats are refused)."""
    value = _field(raw, key, source, default)
    low, high = INT_BOUNDS[key]
    if type(value) is not int or not low <= value <= high:
        raise ModelLoadError(f"{source}: {key} is {_show(value)}; expected a whole number from {low} to {high}")
    return value


def config_float(raw: dict, key: str, source: Path, default=_MISSING) -> float:
    """raw[key] as a float within FLOAT_BOUNDS[key] (exclusive low end; ints accepted)."""
    value = _field(raw, key, source, default)
    low, high = FLOAT_BOUNDS[key]
    if type(value) not in (int, float) or not low < value <= high:
        raise ModelLoadError(f"{source}: {key} is {_show(value)}; expected a number above {low:g} and at most {high:g}")
    return float(value)


def check_heads(hidden: int, heads: int, source: Path) -> None:
    if hidden % heads:
        raise ModelLoadError(f"{source}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")


def layer_count(keys: Iterable[str], layer_prefix: str, source: Path) -> int:
    """How many layers the weights hold under `layer_prefix`, which must be numbered 0..n-1."""
    pattern = re.compile(rf"^{re.escape(layer_prefix)}(\d{{1,6}})\.")
    found = {int(m.group(1)) for key in keys if (m := pattern.match(key))}
    if found != set(range(len(found))):
        raise ModelLoadError(f"{source}: the weights' layers are not numbered 0..{len(found) - 1}")
    low, high = INT_BOUNDS["num_hidden_layers"]
    if not low <= len(found) <= high:
        raise ModelLoadError(f"{source}: the weights hold {len(found)} layers; expected {low} to {high}")
    return len(found)


def check_layer_count(configured: int, keys: Iterable[str], layer_prefix: str, source: Path) -> None:
    """The config's layer count equals the layers the weights hold."""
    held = layer_count(keys, layer_prefix, source)
    if configured != held:
        raise ModelLoadError(
            f"{source}: config.json says {configured} layers but the weights hold {held}; "
            "the config does not belong to these weights"
        )


def _field(raw: dict, key: str, source: Path, default):
    if key in raw:
        return raw[key]
    if default is _MISSING:
        raise ModelLoadError(f"{source}: config.json lacks {key}")
    return default


def _show(value) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
