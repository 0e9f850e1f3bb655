"""What differs between two runs' identities (inputs, parameters, model files), in words.

A resume or a merge that is refused must say what changed ("parameter threshold changed 0.5 -> 0.7",
"input reads.fq changed (size)", "model file esm2/model.safetensors changed (content)"), so the
journal and shard.json keep the components of a run's identity, not just one hash of them.
"""

from __future__ import annotations

import json
from pathlib import PurePath

_INPUT_FIELDS = {"size": "size", "mtime_ns": "modification time", "head_sha256": "content"}
_MODEL_FIELDS = {"size": "size", "sha256": "content"}
# the read layout (parameter `pairs`, absent for single-end reads) in the words of the CLI
_LAYOUTS = {"paired": "paired-end (--paired)", "interleaved": "paired-end, interleaved (--interleaved)"}
MAX_SHOWN = 4


def as_json(value):
    """The value as a JSON file gives it back (tuples become lists), so equal runs compare equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def describe_changes(before_inputs, before_parameters, inputs: list[dict], parameters: dict) -> list[str]:
    """Every difference, inputs first; [] when the two runs are the same."""
    inputs, parameters = as_json(inputs), as_json(parameters)
    before_parameters = _mapping(before_parameters)
    changes = _input_changes(before_inputs if isinstance(before_inputs, list) else [], inputs)
    for key in sorted((set(before_parameters) | set(parameters)) - {"models"}):
        if before_parameters.get(key) != parameters.get(key):
            changes.append(_parameter_change(key, before_parameters.get(key), parameters.get(key)))
    changes += _model_changes(_mapping(before_parameters.get("models")), _mapping(parameters.get("models")))
    if not changes and (before_inputs, before_parameters) != (inputs, parameters):
        changes.append("the recorded run identity is malformed")
    return changes


def summary(changes: list[str]) -> str:
    """The first few changes on one line."""
    shown = "; ".join(changes[:MAX_SHOWN])
    return shown + (f"; and {len(changes) - MAX_SHOWN} more" if len(changes) > MAX_SHOWN else "")


def _parameter_change(key: str, old, new) -> str:
    if key == "pairs":  # "pairs changed paired -> null" would name an internal key, not the flag
        return f"the read layout changed from {read_layout(old)} to {read_layout(new)}"
    return f"parameter {key} changed {_show(old)} -> {_show(new)}"


def read_layout(pairs) -> str:
    """A run's `pairs` parameter as the user knows it: single-end, or paired-end with its flag."""
    return "single-end" if pairs is None else _LAYOUTS.get(pairs, f"of read layout {_show(pairs)}")


def _input_changes(before: list, now: list[dict]) -> list[str]:
    changes = []
    for position in range(max(len(before), len(now))):
        old = _mapping(before[position]) if position < len(before) else None
        new = now[position] if position < len(now) else None
        if new is None:
            changes.append(f"input {_name(old.get('path'))} was removed")
        elif old is None:
            changes.append(f"input {_name(new.get('path'))} was added")
        elif old.get("path") != new.get("path"):
            changes.append(f"input {position + 1} changed from {old.get('path')} to {new.get('path')}")
        else:
            what = [label for key, label in _INPUT_FIELDS.items() if old.get(key) != new.get(key)]
            if what:
                changes.append(f"input {_name(new.get('path'))} changed ({', '.join(what)})")
    return changes


def _model_changes(before: dict, now: dict) -> list[str]:
    changes = []
    for kind in sorted(set(before) | set(now)):
        old, new = _mapping(before.get(kind)), _mapping(now.get(kind))
        if old.get("path") != new.get("path"):
            changes.append(f"model {kind} changed from {old.get('path')} to {new.get('path')}")
            continue
        old_files, new_files = _mapping(old.get("files")), _mapping(new.get("files"))
        for name in sorted(set(old_files) | set(new_files)):
            old_file, new_file = _mapping(old_files.get(name)), _mapping(new_files.get(name))
            what = [label for key, label in _MODEL_FIELDS.items() if old_file.get(key) != new_file.get(key)]
            if what:
                shown = name if name == _name(new.get("path")) else f"{_name(new.get('path'))}/{name}"
                changes.append(f"model file {shown} changed ({', '.join(what)})")
    return changes


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _name(path) -> str:
    return PurePath(str(path)).name


def _show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
