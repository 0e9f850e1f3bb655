"""Attention over a packed token stream in one Triton kernel, with rotary or ALiBi built in.

For the short sequences of this pipeline (ESM-2: ~50 tokens, DNABERT-S: ~33) the generic varlen
kernels spend most of their time on per-sequence tile overhead, and rotary or a padded ALiBi bias
costs extra passes over memory. This kernel reads q, k and v straight from the fused QKV matmul
output [T, 3*D], attends 64-token tiles of the stream with a same-sequence mask (so one tile holds
several short sequences), and applies in registers either
- rotary (ESM-2): rotate_half on q and k in fp32 from per-token cos/sin tables, or
- ALiBi (DNABERT-S): score - slope[head] * |i - j| (within a sequence, |i - j| is the distance of
  the two tokens in the stream, so no positions are needed).
Softmax statistics and the output accumulate in fp32; the result is cast to the input dtype.

`sequence_attention` is the same computation with one program per (sequence, head) instead of per
(64-token stretch of the stream, head): for batches whose longest sequence fits one tile (<= 128
tokens), q, k, v
and the rotary tables of a sequence are read once, with one softmax pass and no key loop (the
stream tiles of `packed_attention` straddle 2-3 sequences and reload their keys per key block).
"""

from __future__ import annotations

import torch

TRITON_PACKED = "triton-packed"
TRITON_SEQUENCE_TILES = "triton-sequence-tiles"
# Tile sizes and launch shape, fixed (not autotuned) so that every run and every GPU makes the same
# choice: the order of the softmax accumulation, hence the last bits of the output, depends on them.
# The fastest of 16 configs on an H200 for both ESM-2 (51-token) and DNABERT-S (33-token) shapes:
# 34% and 19% faster than 64-key tiles (benchmarks/results/esm2_h200.json, attention_sweep).
KERNEL_CONFIG = {"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 3}

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU installs: the exact and torch backends remain
    triton = None


def has_packed_attention(device: torch.device, dtype: torch.dtype, head_dim: int) -> bool:
    """Whether `packed_attention` runs here (CUDA fp16/bf16, head dim a multiple of 32, <= 128)."""
    if triton is None or device.type != "cuda":
        return False
    return dtype in (torch.float16, torch.bfloat16) and head_dim % 32 == 0 and head_dim <= 128


SEQUENCE_TILE_MAX = 128  # longest sequence `sequence_attention` takes (one tile per sequence)


def sequence_tile(max_seqlen: int) -> int | None:
    """Rows of `sequence_attention`'s tile for batches whose longest sequence is `max_seqlen`
    (a power of two >= 16), or None when a sequence would not fit one tile."""
    if not 0 < max_seqlen <= SEQUENCE_TILE_MAX:
        return None
    return max(16, 1 << (max_seqlen - 1).bit_length())


def sequence_bounds(cu_seqlens: torch.Tensor, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token of a packed stream: [start, end) of its own sequence, int32 (the kernel's
    `seq_start` / `seq_end`); no host sync (the output size is given)."""
    cu = cu_seqlens.int()
    lengths = cu[1:] - cu[:-1]
    starts = torch.repeat_interleave(cu[:-1], lengths, output_size=num_tokens)
    ends = torch.repeat_interleave(cu[1:], lengths, output_size=num_tokens)
    return starts, ends


def packed_attention(
    qkv: torch.Tensor,
    seq_start: torch.Tensor,
    seq_end: torch.Tensor,
    num_heads: int,
    scale: float = 1.0,
    rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
    alibi_slopes: torch.Tensor | None = None,
    config: dict | None = None,
) -> torch.Tensor:
    """Non-causal attention of each token over its own sequence; returns [T, H, Dh].

    qkv: [T, 3*D] rows q | k | v (each [H, Dh]); seq_start, seq_end: [T] int32 bounds of each
    token's sequence; scale multiplies q.k; rotary: (cos, sin) [T, Dh/2] fp32; alibi_slopes: [H] fp32.
    """
    tokens, width = qkv.shape
    head_dim = width // (3 * num_heads)
    cfg = {**KERNEL_CONFIG, **(config or {})}
    out = torch.empty(tokens, num_heads, head_dim, device=qkv.device, dtype=qkv.dtype)
    cos, sin = rotary if rotary is not None else (qkv, qkv)  # unused when HAS_ROTARY is off
    slopes = alibi_slopes if alibi_slopes is not None else qkv
    grid = (triton.cdiv(tokens, cfg["BLOCK_M"]), num_heads)
    _packed_attention_kernel[grid](
        qkv, cos, sin, slopes, seq_start, seq_end, out, tokens, qkv.stride(0), out.stride(0), scale,
        MODEL_DIM=width // 3, HEAD_DIM=head_dim, HALF=head_dim // 2,
        HAS_ROTARY=rotary is not None, HAS_ALIBI=alibi_slopes is not None,
        BLOCK_M=cfg["BLOCK_M"], BLOCK_N=cfg["BLOCK_N"], num_warps=cfg["num_warps"], num_stages=cfg["num_stages"],
    )  # fmt: skip
    return out


def sequence_attention(
    qkv: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int,
    num_heads: int,
    scale: float = 1.0,
    rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
    num_warps: int = 4,
) -> torch.Tensor:
    """`packed_attention` with one program per (sequence, head); every sequence must fit one tile
    (max_seqlen <= SEQUENCE_TILE_MAX). cu_seqlens: [B+1] int32 on qkv's device; returns [T, H, Dh].
    num_warps 4: on an H200 (3B shapes, 65,536 tokens) 0.71 ms vs 1.17 with 8 at 48-50 aa and 1.05
    vs 1.47 at 95-100 aa (the stream-tile kernel: 0.92 and 1.14; esm2_h200_overlap.json)."""
    tile = sequence_tile(max_seqlen)
    if tile is None:
        raise ValueError(f"sequence_attention takes sequences of 1..{SEQUENCE_TILE_MAX} tokens, not {max_seqlen}")
    tokens, width = qkv.shape
    head_dim = width // (3 * num_heads)
    out = torch.empty(tokens, num_heads, head_dim, device=qkv.device, dtype=qkv.dtype)
    cos, sin = rotary if rotary is not None else (qkv, qkv)
    grid = ((cu_seqlens.numel() - 1) * num_heads,)  # heads vary fastest: a sequence's rows are read together
    _sequence_attention_kernel[grid](
        qkv, cos, sin, cu_seqlens, out, qkv.stride(0), out.stride(0), scale,
        NUM_HEADS=num_heads, MODEL_DIM=width // 3, HEAD_DIM=head_dim, HALF=head_dim // 2,
        HAS_ROTARY=rotary is not None, TILE=tile, num_warps=num_warps,
    )  # fmt: skip
    return out


if triton is not None:

    @triton.jit
    def _load_halves(x_ptr, cos_ptr, sin_ptr, rows, row_ok, half_cols, HALF: tl.constexpr, HAS_ROTARY: tl.constexpr):
        """Both halves of a [rows, Dh] tile; rotated (rotate_half, fp32 math) when HAS_ROTARY."""
        x1 = tl.load(x_ptr, mask=row_ok[:, None], other=0.0)
        x2 = tl.load(x_ptr + HALF, mask=row_ok[:, None], other=0.0)
        if HAS_ROTARY:
            cs_off = rows[:, None] * HALF + half_cols[None, :]
            c = tl.load(cos_ptr + cs_off, mask=row_ok[:, None], other=0.0)
            s = tl.load(sin_ptr + cs_off, mask=row_ok[:, None], other=0.0)
            a, b = x1.to(tl.float32), x2.to(tl.float32)
            x1, x2 = (a * c - b * s).to(x1.dtype), (b * c + a * s).to(x2.dtype)
        return x1, x2

    @triton.jit
    def _packed_attention_kernel(
        qkv_ptr, cos_ptr, sin_ptr, slopes_ptr, start_ptr, end_ptr, out_ptr, T, stride_qkv, stride_out, scale,
        MODEL_DIM: tl.constexpr, HEAD_DIM: tl.constexpr, HALF: tl.constexpr,
        HAS_ROTARY: tl.constexpr, HAS_ALIBI: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    ):  # fmt: skip
        first = tl.program_id(0) * BLOCK_M
        head_index = tl.program_id(1)
        head = head_index * HEAD_DIM
        rows = first + tl.arange(0, BLOCK_M)
        row_ok = rows < T
        half_cols = tl.arange(0, HALF)
        dims = tl.arange(0, HEAD_DIM)
        q_start = tl.load(start_ptr + rows, mask=row_ok, other=T)
        q_end = tl.load(end_ptr + rows, mask=row_ok, other=0)
        lo = tl.min(q_start, 0)  # keys of all sequences this query tile touches
        hi = tl.max(q_end, 0)
        q_ptr = qkv_ptr + rows[:, None] * stride_qkv + head + half_cols[None, :]
        q1, q2 = _load_halves(q_ptr, cos_ptr, sin_ptr, rows, row_ok, half_cols, HALF, HAS_ROTARY)
        m_i = tl.full([BLOCK_M], -1.0e30, tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
        for key_first in range(lo, hi, BLOCK_N):
            cols = key_first + tl.arange(0, BLOCK_N)
            col_ok = cols < hi
            k_ptr = qkv_ptr + cols[:, None] * stride_qkv + MODEL_DIM + head + half_cols[None, :]
            k1, k2 = _load_halves(k_ptr, cos_ptr, sin_ptr, cols, col_ok, half_cols, HALF, HAS_ROTARY)
            scores = (tl.dot(q1, tl.trans(k1)) + tl.dot(q2, tl.trans(k2))) * scale  # fp32
            if HAS_ALIBI:
                slope = tl.load(slopes_ptr + head_index)
                distance = tl.abs(rows[:, None] - cols[None, :]).to(tl.float32)
                scores = scores - slope * distance
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

    @triton.jit
    def _sequence_attention_kernel(
        qkv_ptr, cos_ptr, sin_ptr, cu_ptr, out_ptr, stride_qkv, stride_out, scale,
        NUM_HEADS: tl.constexpr, MODEL_DIM: tl.constexpr, HEAD_DIM: tl.constexpr, HALF: tl.constexpr,
        HAS_ROTARY: tl.constexpr, TILE: tl.constexpr,
    ):  # fmt: skip
        program = tl.program_id(0)
        head_index = program % NUM_HEADS
        sequence = program // NUM_HEADS
        head = head_index * HEAD_DIM
        start = tl.load(cu_ptr + sequence)
        end = tl.load(cu_ptr + sequence + 1)
        rows = start + tl.arange(0, TILE)
        row_ok = rows < end
        rows = rows.to(tl.int64)  # row * stride may pass 2**31 in large batches
        half_cols = tl.arange(0, HALF)
        dims = tl.arange(0, HEAD_DIM)
        base = qkv_ptr + rows[:, None] * stride_qkv + head
        q1, q2 = _load_halves(base + half_cols[None, :], cos_ptr, sin_ptr, rows, row_ok, half_cols, HALF, HAS_ROTARY)
        k1, k2 = _load_halves(
            base + MODEL_DIM + half_cols[None, :], cos_ptr, sin_ptr, rows, row_ok, half_cols, HALF, HAS_ROTARY
        )
        v = tl.load(base + 2 * MODEL_DIM + dims[None, :], mask=row_ok[:, None], other=0.0)
        scores = (tl.dot(q1, tl.trans(k1)) + tl.dot(q2, tl.trans(k2))) * scale  # fp32 [TILE, TILE]
        scores = tl.where(row_ok[None, :], scores, -1.0e30)
        m = tl.max(scores, 1)
        p = tl.where(row_ok[None, :], tl.exp(scores - m[:, None]), 0.0)
        l = tl.sum(p, 1)
        acc = tl.dot(p.to(v.dtype), v)
        out = acc / tl.maximum(l, 1.0e-30)[:, None]
        out_ptr = out_ptr + rows[:, None] * stride_out + head + dims[None, :]
        tl.store(out_ptr, out.to(out_ptr.dtype.element_ty), mask=row_ok[:, None])
