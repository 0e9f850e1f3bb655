"""Checking a checkpoint's tensors against a model: every problem reported in one error.

A checkpoint that half-matches (a renamed layer, a different size) must never load silently, and
the user should see everything wrong at once, not one key per attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from virnucpro.errors import ModelLoadError

_SHOWN = 6  # keys listed per kind of problem; the rest are counted


def check_tensors(what: str, expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor],
                  optional: Iterable[str] = ()) -> None:
    """Raise ModelLoadError naming missing, unexpected and wrongly shaped tensors of `found`."""
    missing = sorted(set(expected) - set(found) - set(optional))
    unexpected = sorted(set(found) - set(expected))
    wrong_shape = sorted(
        f"{key} {tuple(found[key].shape)} != {tuple(expected[key].shape)}"
        for key in set(expected) & set(found) if found[key].shape != expected[key].shape
    )
    problems = [f"{label}: {_few(keys)}" for label, keys in
                (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)) if keys]
    if problems:
        raise ModelLoadError(f"{what} ({'; '.join(problems)})")


def _few(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown if len(keys) <= _SHOWN else f"{shown}, ... ({len(keys)} in all)"
