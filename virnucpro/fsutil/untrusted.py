"""Checks for JSON files virnucpro reads back (the resume journal, shard.json, model configs and
manifests): they are untrusted.

A user, a script or a bad disk can leave anything in them. Every check raises `Invalid` with a short
phrase naming the field; the loaders turn it into one refusal line (never a traceback).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

MAX_COUNT = 1 << 62  # counts and byte offsets beyond this are not real (and overflow truncate/seek)
MAX_FILE_BYTES = 256 << 20  # a journal or shard.json is kilobytes; refuse to read a huge one
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Invalid(ValueError):
    """A field of an untrusted JSON file has the wrong type or value."""


def load_json_object(path: Path) -> dict:
    """The JSON object in `path`; OSError for a missing file, Invalid for anything that is not one."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise Invalid(f"it is larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        data = json.loads(path.read_bytes(), parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise Invalid(f"it is not valid JSON ({str(error)[:80]})") from None
    if not isinstance(data, dict):
        raise Invalid("it is not a JSON object")
    return data


def _no_constant(name: str):
    """NaN / Infinity: not JSON, and virnucpro never writes them (allow_nan=False), so a file holding
    one was edited; refused here rather than failing later, when a value is written back."""
    raise Invalid(f"it holds {name}, which is not JSON")


def fields(data: dict, required: set[str], what: str) -> None:
    """Exactly the `required` keys, no more, no fewer."""
    missing, extra = sorted(required - set(data)), sorted(set(data) - required)
    if missing:
        raise Invalid(f"{what} lacks {', '.join(missing)}")
    if extra:
        raise Invalid(f"{what} has unknown fields {', '.join(map(str, extra))[:120]}")


def count(value, what: str, minimum: int = 0) -> int:
    """An int (not a bool) in [minimum, MAX_COUNT)."""
    if type(value) is not int:
        raise Invalid(f"{what} is not an integer")
    if not minimum <= value < MAX_COUNT:
        raise Invalid(f"{what} is out of range ({value})" if abs(value) < 10**30 else f"{what} is out of range")
    return value


def sizes(value, what: str, names: set[str]) -> dict[str, int]:
    """A {file name: byte offset} map over exactly `names`."""
    if not isinstance(value, dict):
        raise Invalid(f"{what} is not a map of file sizes")
    if set(value) != names:
        raise Invalid(f"{what} names {sorted(value)[:6]}, expected {sorted(names)}")
    return {name: count(offset, f"{what}[{name}]") for name, offset in value.items()}


def digests(value, what: str, names: set[str]) -> dict[str, str]:
    """A {file name: sha256 hex} map over exactly `names`."""
    if not isinstance(value, dict) or set(value) != names:
        raise Invalid(f"{what} does not list a sha256 for each of {sorted(names)}")
    for name, digest in value.items():
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise Invalid(f"{what}[{name}] is not a sha256 digest")
    return value


def of_type(value, kind: type, what: str):
    if not isinstance(value, kind):
        raise Invalid(f"{what} is not a JSON {'object' if kind is dict else kind.__name__}")
    return value
