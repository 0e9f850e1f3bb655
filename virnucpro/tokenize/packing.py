"""Packed token batches: every sequence of a batch in one stream, no padding tokens.

Attention kernels with variable-length support (flash-attn, torch varlen) take the stream plus the
cumulative sequence lengths, so no compute is spent on padding. Used by ESM-2 and DNABERT-S alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PackedTokens:
    """`ids[cu_seqlens[i]:cu_seqlens[i+1]]` are the tokens of sequence i (special tokens included)."""

    ids: torch.Tensor  # [T] int64
    cu_seqlens: torch.Tensor  # [B+1] int32, cu_seqlens[0] == 0, cu_seqlens[-1] == T
    max_seqlen: int

    @property
    def num_sequences(self) -> int:
        return self.cu_seqlens.numel() - 1

    @property
    def num_tokens(self) -> int:
        return self.ids.numel()

    def lengths(self) -> torch.Tensor:
        """Tokens per sequence, [B] int32."""
        return self.cu_seqlens[1:] - self.cu_seqlens[:-1]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PackedTokens:
        return PackedTokens(
            self.ids.to(device, non_blocking=non_blocking),
            self.cu_seqlens.to(device, non_blocking=non_blocking),
            self.max_seqlen,
        )


def pack(token_arrays: Sequence[np.ndarray | Sequence[int]]) -> PackedTokens:
    """Concatenate per-sequence token id arrays into one PackedTokens (each array non-empty)."""
    lengths = np.fromiter(map(len, token_arrays), dtype=np.int64, count=len(token_arrays))
    if lengths.size and lengths.min() == 0:
        raise ValueError("pack() got an empty token sequence")
    cu = np.zeros(len(token_arrays) + 1, dtype=np.int32)
    np.cumsum(lengths, out=cu[1:])
    # one concatenation, then one cast (DNABERT-S ids arrive as int32)
    ids = np.concatenate(token_arrays).astype(np.int64, copy=False) if len(token_arrays) else np.zeros(0, dtype=np.int64)
    max_seqlen = int(lengths.max()) if lengths.size else 0
    return PackedTokens(torch.from_numpy(ids), torch.from_numpy(cu), max_seqlen)
