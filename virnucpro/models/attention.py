"""Variable-length (packed) self-attention with automatically chosen backends.

All backends take q, k, v as [T, H, Dh] streams plus int32 cumulative lengths and return [T, H, Dh]:
- `flash-attn`: flash_attn_varlen_func, when the package is installed (CUDA, fp16/bf16);
- `torch-varlen`: torch.nn.attention.varlen.varlen_attn (PyTorch >= 2.10, CUDA, fp16/bf16);
- `sdpa-padded`: an exact fallback for CPU, fp32 and anything else: the stream is scattered into a
  padded [B, H, Lmax, Dh] block, attended with a key-padding mask and gathered back.
No backend scales q for the caller: pass `scale` (ESM-2 folds 1/sqrt(Dh) into q beforehand).
On CUDA, ESM-2 and DNABERT-S can instead use the Triton kernel of `packed_attention.py`, which
reads the fused QKV matmul output directly and applies rotary or ALiBi itself.
"""

from __future__ import annotations

import functools
import importlib.util

import torch
import torch.nn.functional as F

FLASH_ATTN = "flash-attn"
TORCH_VARLEN = "torch-varlen"
SDPA_PADDED = "sdpa-padded"
_LAST_USED: dict[str, str] = {}


@functools.cache
def flash_varlen():
    """flash-attn's varlen kernel, or None when the package is not installed (or does not import).
    The one flash-attn detection: ESM-2 (through `select_backend`), DNABERT-S and doctor ask here."""
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    return flash_attn_varlen_func


@functools.cache
def _has_torch_varlen() -> bool:
    return importlib.util.find_spec("torch.nn.attention.varlen") is not None


def fused_kernels_apply(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the fused varlen kernels (flash-attn, torch varlen) can run: CUDA in fp16/bf16."""
    return device.type == "cuda" and dtype in (torch.float16, torch.bfloat16)


def select_backend(device: torch.device, dtype: torch.dtype) -> str:
    """The fastest backend that supports this device and dtype."""
    fused_ok = fused_kernels_apply(device, dtype)
    if fused_ok and flash_varlen() is not None:
        return FLASH_ATTN
    if fused_ok and _has_torch_varlen():
        return TORCH_VARLEN
    return SDPA_PADDED


def describe_backend(device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> str:
    """For logs: the backend for (device, dtype), or those used so far by `varlen_attention`."""
    if device is not None and dtype is not None:
        return select_backend(torch.device(device), dtype)
    if not _LAST_USED:
        return "none used yet"
    return ", ".join(f"{backend} ({key})" for key, backend in sorted(_LAST_USED.items()))


def varlen_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    scale: float,
    backend: str | None = None,
) -> torch.Tensor:
    """Non-causal attention within each packed sequence; q, k, v: [T, H, Dh]."""
    backend = backend or select_backend(q.device, q.dtype)
    _LAST_USED[f"{q.device.type}/{str(q.dtype).removeprefix('torch.')}"] = backend
    if backend == FLASH_ATTN:
        return flash_varlen()(
            q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, softmax_scale=scale
        )
    if backend == TORCH_VARLEN:
        from torch.nn.attention.varlen import varlen_attn

        return varlen_attn(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, scale=scale)
    return sdpa_padded_attention(q, k, v, cu_seqlens, max_seqlen, scale)


def padded_index(cu_seqlens: torch.Tensor, max_seqlen: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(index [B, Lmax] into the stream, clamped; valid [B, Lmax] bool) for padding a packed stream."""
    starts = cu_seqlens[:-1].long().unsqueeze(1)  # [B, 1]
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long().unsqueeze(1)
    offsets = torch.arange(max_seqlen, device=cu_seqlens.device).unsqueeze(0)  # [1, Lmax]
    valid = offsets < lengths
    index = torch.where(valid, starts + offsets, starts)
    return index, valid


def sdpa_padded_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    scale: float,
) -> torch.Tensor:
    """Exact reference backend: pad to [B, H, Lmax, Dh], SDPA with a key mask, unpad."""
    index, valid = padded_index(cu_seqlens, max_seqlen)
    # [T, H, Dh] -> [B, Lmax, H, Dh] -> [B, H, Lmax, Dh]
    qp, kp, vp = (t[index].transpose(1, 2) for t in (q, k, v))
    key_mask = valid[:, None, None, :]  # [B, 1, 1, Lmax]: True = attend
    out = F.scaled_dot_product_attention(qp, kp, vp, attn_mask=key_mask, scale=scale)
    out = out.transpose(1, 2)[valid]  # [B, Lmax, H, Dh] -> [T, H, Dh] (row-major order = stream order)
    return out
