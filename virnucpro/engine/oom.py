"""Run a batch; on CUDA out-of-memory split it in halves and retry, never dropping an item.

A batch that fits most of the time can still fail on a fragmented allocator or a neighbour's
allocation. Halving (recursively) finds a size that fits without a global budget change; results
come back in the original item order. A single item that still does not fit is a user-facing
error (the budget or the device is too small), not a silent drop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from virnucpro.errors import VirnucproError

Item = TypeVar("Item")
Result = TypeVar("Result")


class DeviceMemoryError(VirnucproError):
    """Even a single item does not fit in device memory."""


def run_with_oom_split(
    items: Sequence[Item],
    run: Callable[[Sequence[Item]], list[Result]],
    on_split: Callable[[int], None] | None = None,
) -> list[Result]:
    """`run(items)`, or on torch.OutOfMemoryError the results of both halves, concatenated."""
    try:
        return list(run(items))
    except torch.OutOfMemoryError:
        if len(items) <= 1:
            raise DeviceMemoryError(
                "out of GPU memory on a single sequence: free GPU memory or use a smaller --batch-tokens"
            ) from None
    _release_cached_memory()
    if on_split is not None:
        on_split(len(items))
    middle = len(items) // 2
    return run_with_oom_split(items[:middle], run, on_split) + run_with_oom_split(items[middle:], run, on_split)


def _release_cached_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
