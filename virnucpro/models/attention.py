"""Variable-length (packed) self-attention with automatically chosen backends.

All backends take q, k, v as [T, H, Dh] streams plus int32 cumulative lengths and return [T, H, Dh]:
- `flash-attn`: flash_attn_varlen_func, when the package is installed (CUDA, fp16/bf16);
- `torch-varlen`: torch.nn.attention.varlen.varlen_attn (PyTorch >= 2.10, CUDA, fp16/bf16);
- `sdpa-padded`: an exact fallback for CPU, fp32 and anything else: the stream is scattered into a
  padded [B, H, Lmax, Dh] block, attended with a key-padding mask and gathered back.
No backend scales q for the caller: pass `scale` (ESM-2 folds 1/sqrt(Dh) into q beforehand).
ESM-2's compiled path can also use `packed_rotary_attention` (below): a Triton kernel that reads
the fused QKV matmul output and applies rotary itself (`triton-packed-rotary`).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

import torch
import torch.nn.functional as F

FLASH_ATTN = "flash-attn"
TORCH_VARLEN = "torch-varlen"
SDPA_PADDED = "sdpa-padded"
_LAST_USED: dict[str, str] = {}


@lru_cache(maxsize=1)
def _has_flash_attn() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


@lru_cache(maxsize=1)
def _has_torch_varlen() -> bool:
    return importlib.util.find_spec("torch.nn.attention.varlen") is not None


def select_backend(device: torch.device, dtype: torch.dtype) -> str:
    """The fastest backend that supports this device and dtype."""
    fused_ok = device.type == "cuda" and dtype in (torch.float16, torch.bfloat16)
    if fused_ok and _has_flash_attn():
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
        from flash_attn import flash_attn_varlen_func

        return flash_attn_varlen_func(
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


# --- packed attention with rotary fused in (Triton) --------------------------------------------
# For ~50-token proteins the generic varlen kernels spend most of their time on per-sequence tile
# overhead, and rotary costs one more pass over q and k. This kernel reads q, k, v straight from
# the fused QKV matmul output, applies rotary in registers, and attends 64-token tiles of the
# packed stream with a same-sequence mask, so a tile can hold several short sequences.

TRITON_ROTARY = "triton-packed-rotary"

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU installs: the exact and torch backends remain
    triton = None


def has_fused_rotary_attention(device: torch.device, dtype: torch.dtype, head_dim: int) -> bool:
    """Whether `packed_rotary_attention` runs here (CUDA fp16/bf16, head dim a multiple of 32)."""
    if triton is None or device.type != "cuda":
        return False
    return dtype in (torch.float16, torch.bfloat16) and head_dim % 32 == 0 and head_dim <= 128


def packed_rotary_attention(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    seq_start: torch.Tensor,
    seq_end: torch.Tensor,
    num_heads: int,
) -> torch.Tensor:
    """Attention of a packed stream with rotary applied to q and k on the fly.

    qkv: [T, 3*D] (q | k | v, each [H, Dh] per token, q already scaled); cos, sin: [T, Dh/2] fp32;
    seq_start, seq_end: [T] int32, the bounds of each token's own sequence. Returns [T, H, Dh].
    """
    tokens, width = qkv.shape
    head_dim = width // (3 * num_heads)
    out = torch.empty(tokens, num_heads, head_dim, device=qkv.device, dtype=qkv.dtype)
    block = 64
    grid = (triton.cdiv(tokens, block), num_heads)
    _LAST_USED[f"{qkv.device.type}/{str(qkv.dtype).removeprefix('torch.')}"] = TRITON_ROTARY
    _packed_rotary_attention_kernel[grid](
        qkv, cos, sin, seq_start, seq_end, out, tokens, qkv.stride(0), out.stride(0),
        MODEL_DIM=width // 3, HEAD_DIM=head_dim, HALF=head_dim // 2, BLOCK_M=block, BLOCK_N=block,
    )  # fmt: skip
    return out


if triton is not None:

    @triton.jit
    def _rotate(x_ptr, cos_ptr, sin_ptr, rows, row_ok, half_cols, HALF: tl.constexpr):
        """Both halves of rotate_half rotary for a [rows, Dh] tile, in fp32, cast back to x's type."""
        x1 = tl.load(x_ptr, mask=row_ok[:, None], other=0.0)
        x2 = tl.load(x_ptr + HALF, mask=row_ok[:, None], other=0.0)
        cs_off = rows[:, None] * HALF + half_cols[None, :]
        c = tl.load(cos_ptr + cs_off, mask=row_ok[:, None], other=0.0)
        s = tl.load(sin_ptr + cs_off, mask=row_ok[:, None], other=0.0)
        a, b = x1.to(tl.float32), x2.to(tl.float32)
        return (a * c - b * s).to(x1.dtype), (b * c + a * s).to(x1.dtype)

    @triton.jit
    def _packed_rotary_attention_kernel(
        qkv_ptr, cos_ptr, sin_ptr, start_ptr, end_ptr, out_ptr, T, stride_qkv, stride_out,
        MODEL_DIM: tl.constexpr, HEAD_DIM: tl.constexpr, HALF: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    ):  # fmt: skip
        first = tl.program_id(0) * BLOCK_M
        head = tl.program_id(1) * HEAD_DIM
        rows = first + tl.arange(0, BLOCK_M)
        row_ok = rows < T
        half_cols = tl.arange(0, HALF)
        dims = tl.arange(0, HEAD_DIM)
        q_start = tl.load(start_ptr + rows, mask=row_ok, other=T)
        q_end = tl.load(end_ptr + rows, mask=row_ok, other=0)
        lo = tl.min(q_start, 0)  # keys of all sequences this query tile touches
        hi = tl.max(q_end, 0)
        q_ptr = qkv_ptr + rows[:, None] * stride_qkv + head + half_cols[None, :]
        q1, q2 = _rotate(q_ptr, cos_ptr, sin_ptr, rows, row_ok, half_cols, HALF)
        m_i = tl.full([BLOCK_M], -1.0e30, tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
        for key_first in range(lo, hi, BLOCK_N):
            cols = key_first + tl.arange(0, BLOCK_N)
            col_ok = cols < hi
            k_ptr = qkv_ptr + cols[:, None] * stride_qkv + MODEL_DIM + head + half_cols[None, :]
            k1, k2 = _rotate(k_ptr, cos_ptr, sin_ptr, cols, col_ok, half_cols, HALF)
            scores = tl.dot(q1, tl.trans(k1)) + tl.dot(q2, tl.trans(k2))  # [BLOCK_M, BLOCK_N] fp32
            same_seq = (cols[None, :] >= q_start[:, None]) & (cols[None, :] < q_end[:, None])
            scores = tl.where(same_seq, scores, -1.0e30)
            m_new = tl.maximum(m_i, tl.max(scores, 1))
            p = tl.where(same_seq, tl.exp(scores - m_new[:, None]), 0.0)
            alpha = tl.exp(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            v_ptr = qkv_ptr + cols[:, None] * stride_qkv + 2 * MODEL_DIM + head + dims[None, :]
            v = tl.load(v_ptr, mask=col_ok[:, None], other=0.0)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
            m_i = m_new
        out = acc / tl.maximum(l_i, 1.0e-30)[:, None]
        out_ptr = out_ptr + rows[:, None] * stride_out + head + dims[None, :]
        tl.store(out_ptr, out.to(out_ptr.dtype.element_ty), mask=row_ok[:, None])
