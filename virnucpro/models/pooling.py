"""Per-sequence sums over a packed token stream, deterministic on every device.

`index_add_` on a GPU accumulates with atomics, so the order of additions (and the last bits of a
sum) changes from run to run; that would make result files differ between runs, workers and
resumes. `torch.segment_reduce` adds each sequence's tokens in a fixed order.
"""

from __future__ import annotations

import torch


def segment_sums(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, D] fp32 sums of consecutive runs of `lengths` rows of `values` [T, D] (sum(lengths) == T)."""
    # unsafe=True skips validation that reads `lengths` back to the host (a GPU sync per batch);
    # callers build `lengths` from cu_seqlens, so they are non-negative and sum to T.
    return torch.segment_reduce(values.float(), "sum", lengths=lengths.long(), axis=0, unsafe=True)
