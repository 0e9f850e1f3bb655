"""ESM-2 on packed variable-length batches: one token stream, cumulative lengths, no padding.

Numerics follow fair-esm's ESM-2 (see docs/models.md): embeddings scaled by 0.88 (token dropout at
inference, no <mask> present -- `encode_proteins` never emits one), pre-LN layers, q scaled by
1/sqrt(head_dim) (folded into the fused QKV weights at load time), rotary positions restarting at
every sequence with fp16-rounded inv_freq and fp32 angles, final `emb_layer_norm_after`.
Layer norms, the embedding table, rotary tables and the residual stream stay fp32; the big matmuls
and attention run in the compute dtype (bf16 by default on GPU).

Two code paths compute the same function: the eager path (any device/dtype, the reference) and a
compiled path (`enable_compile`): torch.compile, with the token count dynamic, fuses norms,
residual adds and GELU around the cuBLAS matmuls, and on CUDA rotary is applied inside a Triton
packed-attention kernel (one program per sequence where all fit 64 tokens). Each layer's residual
add is fused with the next layer's LN1 (the last with emb_layer_norm_after). On CUDA in fp16/bf16, fc1's GELU runs as cuBLASLt's epilogue (tanh
form, within bf16 rounding of erf: models/gelu_epilogue.py); fp32 and the CPU keep exact erf GELU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from virnucpro.models.attention import select_backend, varlen_attention
from virnucpro.models.gelu_epilogue import fc1_gelu_epilogue, gelu_epilogue_problem
from virnucpro.models.packed_attention import (
    SEQUENCE_TILE_MAX,
    TRITON_PACKED,
    TRITON_SEQUENCE_TILES,
    has_packed_attention,
    packed_attention,
    sequence_attention,
    sequence_bounds,
)
from virnucpro.models.pooling import segment_sums
from virnucpro.models.stream_overlap import fork, join, on_stream, side_streams, split_at_half
from virnucpro.tokenize.packing import PackedTokens

TOKEN_DROPOUT_SCALE = 1.0 - 0.15 * 0.8  # fair-esm: mask ratio used in training, no <mask> at inference
MAX_MEAN_POSITIONS = 1024  # the original averages positions 1..min(len, 1024)
_FUSED_ATTENTION_MAX_MEAN_TOKENS = 64  # see ESM2.enable_compile
SEQUENCE_TILE_TOKENS = 64  # see ESM2.enable_compile
GELU_EPILOGUE = "cuBLASLt GELU epilogue (tanh form)"
log = logging.getLogger("virnucpro")


@dataclass(frozen=True)
class ESM2Config:
    num_layers: int
    hidden_size: int
    num_heads: int
    ffn_size: int
    vocab_size: int = 33
    layer_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def num_parameters(self) -> int:
        d, f = self.hidden_size, self.ffn_size
        per_layer = 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d
        return self.num_layers * per_layer + self.vocab_size * d + 2 * d


def rotary_inv_freq(head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """inv_freq as the published checkpoints store it: computed in fp32, rounded to fp16."""
    exponent = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
    return (1.0 / theta**exponent).half().float()


class ESM2Layer(nn.Module):
    def __init__(self, cfg: ESM2Config):
        super().__init__()
        d = cfg.hidden_size
        self.attn_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.qkv = nn.Linear(d, 3 * d)  # rows: q (pre-scaled by 1/sqrt(head_dim)) | k | v
        self.out_proj = nn.Linear(d, d)
        self.ffn_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.fc1 = nn.Linear(d, cfg.ffn_size)
        self.fc2 = nn.Linear(cfg.ffn_size, d)


def _apply_rotary(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Non-interleaved rotary (rotate_half) in fp32; t: [T, H, Dh], cos/sin: [T, Dh/2] fp32."""
    t32 = t.float()
    t1, t2 = t32.chunk(2, dim=-1)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return torch.cat((t1 * cos - t2 * sin, t2 * cos + t1 * sin), dim=-1).to(t.dtype)


def rotary_qkv(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, num_heads: int):
    """Split the fused QKV output [T, 3*D] into q, k, v [T, H, Dh] with rotary on q and k."""
    q, k, v = qkv.unflatten(-1, (3, num_heads, -1)).unbind(1)
    return _apply_rotary(q, cos, sin), _apply_rotary(k, cos, sin), v


def post_attention(
    x, attn, out_w, out_b, norm_w, norm_b, fc1_w, fc1_b, fc2_w, fc2_b, next_w, next_b,
    eps: float, next_dtype: torch.dtype, gelu_epilogue: bool = False,
):  # fmt: skip
    """Residual += out_proj(attn); residual += fc2(gelu(fc1(LN2(residual)))); then the next norm.

    x: [T, D] fp32 residual, attn: [T, H, Dh]. Returns (residual, next_norm(residual) as
    next_dtype): the next layer's LN1 (or emb_layer_norm_after) fused with the residual add.
    `gelu_epilogue`: fc1 + tanh GELU as one cuBLASLt matmul (see ESM2.use_gelu_epilogue).
    """
    x = x + F.linear(attn.flatten(1), out_w, out_b).float()
    h = F.layer_norm(x, (x.shape[-1],), norm_w, norm_b, eps).to(fc1_w.dtype)
    if gelu_epilogue:
        h = fc1_gelu_epilogue(h, fc1_w, fc1_b)
    else:
        h = F.gelu(F.linear(h, fc1_w, fc1_b))  # exact erf GELU, as ESM-2
    x = x + F.linear(h, fc2_w, fc2_b).float()
    return x, F.layer_norm(x, (x.shape[-1],), next_w, next_b, eps).to(next_dtype)


class ESM2(nn.Module):
    """ESM-2 encoder; `embed(packed)` returns one fp32 mean embedding per sequence."""

    def __init__(self, cfg: ESM2Config):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(ESM2Layer(cfg) for _ in range(cfg.num_layers))
        self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.register_buffer("inv_freq", rotary_inv_freq(cfg.head_dim, cfg.rope_theta))
        self._rotary = rotary_qkv
        self._post = post_attention
        self._fused_attention: bool | None = False  # None: per batch, see _use_fused_attention
        self.gelu_epilogue = False  # exact erf GELU until use_gelu_epilogue says otherwise
        self.sequence_tile_tokens = 0  # batches of sequences up to this long: sequence-tile attention
        self.stream_overlap = False  # embed: two half batches on two CUDA streams (stream_overlap.py)
        self._streams: tuple | None = None

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.layers[0].qkv.weight.dtype

    def cast(self, dtype: torch.dtype) -> ESM2:
        """Matmul weights to `dtype`; norms, embedding table and inv_freq stay fp32 (cheap, exact)."""
        for layer in self.layers:
            for linear in (layer.qkv, layer.out_proj, layer.fc1, layer.fc2):
                linear.to(dtype)
        return self

    def use_gelu_epilogue(self, enabled: bool | None = None) -> ESM2:
        """fc1's GELU as cuBLASLt's fused epilogue (True) or exact erf (False); None (what the
        loader does): the epilogue where it is checked to work, i.e. CUDA in fp16/bf16 with the
        private op present and right (models/gelu_epilogue.py). The choice is logged."""
        if enabled is None:
            device = self.embed_tokens.weight.device
            problem = gelu_epilogue_problem(device, self.compute_dtype)
            enabled = problem is None
            level = logging.INFO if device.type == "cuda" else logging.DEBUG
            log.log(level, "ESM-2 fc1 GELU: %s", GELU_EPILOGUE if enabled else problem)
        self.gelu_epilogue = enabled
        return self

    def enable_compile(
        self,
        mode: str = "default",
        fused_attention: bool | None = None,
        sequence_tile_tokens: int = SEQUENCE_TILE_TOKENS,
    ) -> ESM2:
        """Compile the per-layer code once for any token count (Inductor fuses norms, residual adds
        and GELU around the cuBLAS matmuls; no padding, so a short batch costs only its tokens).

        Measured on an H200 (3B, 64k-token batches), this beat padding every batch to one static
        token count by 4% at both 48-50 and 95-100 aa (benchmarks/results/esm2_h200.json).
        `fused_attention` (default: where it runs) uses the Triton kernel that applies rotary
        inside attention instead of rotary + a varlen library kernel, for batches averaging
        <= 64 tokens (where it was measured to win). Where that kernel runs, batches whose
        sequences are all <= `sequence_tile_tokens` long (0: never) take its sequence-tile form
        (one program per sequence and head): +2.2% end to end at 48-50 aa on an H200, cosine to
        fp32 unchanged; at 95-100 aa its 128-row tiles lost 1% to torch varlen
        (benchmarks/results/esm2_h200_overlap.json), hence 64.
        """
        if not 0 <= sequence_tile_tokens <= SEQUENCE_TILE_MAX:
            raise ValueError(f"sequence_tile_tokens must be 0..{SEQUENCE_TILE_MAX}, not {sequence_tile_tokens}")
        options = {"dynamic": None, "fullgraph": True, "mode": mode}
        self._post = _tokens_dynamic(torch.compile(post_attention, **options), token_args=2)
        self._rotary = _tokens_dynamic(torch.compile(rotary_qkv, **options), token_args=3)
        device, cfg = self.embed_tokens.weight.device, self.cfg
        possible = has_packed_attention(device, self.compute_dtype, cfg.head_dim)
        self._fused_attention = fused_attention if possible else False
        self.sequence_tile_tokens = sequence_tile_tokens if self._fused_attention is not False else 0
        return self

    def attention_backend(self, mean_tokens: float | None = None, max_seqlen: int | None = None) -> str:
        """The attention used for batches of this mean and longest sequence length (in tokens)."""
        if max_seqlen is not None and self._use_sequence_tiles(max_seqlen):
            return TRITON_SEQUENCE_TILES
        if self._use_fused_attention(mean_tokens):
            return TRITON_PACKED
        return select_backend(self.embed_tokens.weight.device, self.compute_dtype)

    def describe_attention(self) -> str:
        """For logs: the attention kernels this model will use, and the compiled mode."""
        varlen = select_backend(self.embed_tokens.weight.device, self.compute_dtype)
        if self._fused_attention is None:
            kernels = f"{TRITON_PACKED} (batches averaging <= {_FUSED_ATTENTION_MAX_MEAN_TOKENS} tokens), else {varlen}"
        else:
            kernels = TRITON_PACKED if self._fused_attention else varlen
        if self.sequence_tile_tokens:
            tiles = f"{TRITON_SEQUENCE_TILES} (batches of sequences <= {self.sequence_tile_tokens} tokens)"
            kernels = f"{tiles}, else {kernels}"
        return f"{kernels}; compiled" if self._post is not post_attention else kernels

    def _use_sequence_tiles(self, max_seqlen: int) -> bool:
        """Also checks that the Triton kernels run here (`sequence_tile_tokens` may be set directly)."""
        return self._fused_attention is not False and 0 < max_seqlen <= self.sequence_tile_tokens

    def _use_fused_attention(self, mean_tokens: float | None) -> bool:
        if self._fused_attention is None:
            return mean_tokens is not None and mean_tokens <= _FUSED_ATTENTION_MAX_MEAN_TOKENS
        return self._fused_attention

    @torch.inference_mode()
    def embed(self, packed: PackedTokens) -> torch.Tensor:
        """[B, D] fp32 mean over residues (BOS/EOS excluded, positions 1..min(len, 1024))."""
        device = self.embed_tokens.weight.device
        halves = split_at_half(packed) if self.stream_overlap else None
        if halves is not None:
            return self._embed_overlapped(halves)
        packed = packed.to(device, non_blocking=True)
        return _mean_over_residues(self.forward(packed), packed)

    def forward(self, packed: PackedTokens) -> torch.Tensor:
        """Final hidden states [T, D] fp32 (after emb_layer_norm_after) of a packed batch."""
        state = self._start(packed)
        for i in range(len(self.layers)):
            self._layer(i, state)
        return state.h

    def _embed_overlapped(self, halves: tuple[PackedTokens, PackedTokens]) -> torch.Tensor:
        """`embed` of two halves of one batch, each on its own stream, queued layer by layer so
        that one half's memory-bound kernels can run beside the other's matmuls."""
        device = self.embed_tokens.weight.device
        streams = self._streams = self._streams or side_streams(device)
        fork(streams)
        states = []
        for half, stream in zip(halves, streams):
            with on_stream(stream):
                states.append(self._start(half.to(device, non_blocking=True)))
        for i in range(len(self.layers)):
            for state, stream in zip(states, streams):
                with on_stream(stream):
                    self._layer(i, state)
        means = []
        for state, stream in zip(states, streams):
            with on_stream(stream):
                means.append(_mean_over_residues(state.h, state.packed))
        join(streams, means)
        return torch.cat(means)

    def _start(self, packed: PackedTokens) -> _ForwardState:
        """Rotary tables, embeddings, the first LayerNorm and the attention choice of a batch."""
        cu, eps = packed.cu_seqlens, self.cfg.layer_norm_eps
        positions, seq_start, seq_end = _token_spans(cu, packed.num_tokens)
        angles = positions.float().unsqueeze(-1) * self.inv_freq  # [T, Dh/2] fp32
        x = self.embed_tokens(packed.ids).float() * TOKEN_DROPOUT_SCALE
        first = self.layers[0].attn_norm
        h = F.layer_norm(x, (x.shape[-1],), first.weight, first.bias, eps).to(self.compute_dtype)
        mean_tokens = packed.num_tokens / max(packed.num_sequences, 1)
        fused = self._use_fused_attention(mean_tokens)
        sequence_tiles = self._use_sequence_tiles(packed.max_seqlen)
        return _ForwardState(
            packed, angles.cos(), angles.sin(), seq_start, seq_end, x, h, fused, sequence_tiles,
            self.attention_backend(mean_tokens),
        )  # fmt: skip

    def _layer(self, i: int, s: _ForwardState) -> None:
        """Layer i on the state: attention, then `post_attention` (residual, FFN, next norm)."""
        layer, heads, packed = self.layers[i], self.cfg.num_heads, s.packed
        qkv = F.linear(s.h, layer.qkv.weight, layer.qkv.bias)  # [T, 3*D]; q pre-scaled
        if s.sequence_tiles:
            attn = sequence_attention(qkv, packed.cu_seqlens, packed.max_seqlen, heads, rotary=(s.cos, s.sin))
        elif s.fused:
            attn = packed_attention(qkv, s.seq_start, s.seq_end, heads, rotary=(s.cos, s.sin))
        else:
            q, k, v = self._rotary(qkv, s.cos, s.sin, heads)
            attn = varlen_attention(q, k, v, packed.cu_seqlens, packed.max_seqlen, 1.0, s.backend)
        last = i + 1 == len(self.layers)
        nxt = self.final_norm if last else self.layers[i + 1].attn_norm
        s.x, s.h = self._post(
            s.x, attn, layer.out_proj.weight, layer.out_proj.bias, layer.ffn_norm.weight,
            layer.ffn_norm.bias, layer.fc1.weight, layer.fc1.bias, layer.fc2.weight,
            layer.fc2.bias, nxt.weight, nxt.bias, self.cfg.layer_norm_eps,
            torch.float32 if last else self.compute_dtype, self.gelu_epilogue,
        )  # fmt: skip


@dataclass
class _ForwardState:
    """One batch (or half batch) on its way through the layers."""

    packed: PackedTokens
    cos: torch.Tensor
    sin: torch.Tensor
    seq_start: torch.Tensor
    seq_end: torch.Tensor
    x: torch.Tensor  # fp32 residual stream
    h: torch.Tensor  # the next layer's normed input (after the last layer: the final hidden states)
    fused: bool
    sequence_tiles: bool
    backend: str


def _tokens_dynamic(compiled, token_args: int):
    """`compiled` with dim 0 (tokens) of its first `token_args` arguments marked dynamic, so one
    compilation serves every batch size (dynamo would otherwise specialise on the first)."""

    def call(*args):
        for arg in args[:token_args]:
            torch._dynamo.maybe_mark_dynamic(arg, 0)
        return compiled(*args)

    return call


def _token_spans(cu_seqlens: torch.Tensor, num_tokens: int):
    """Per token: position in its own sequence (0 at BOS), and that sequence's [start, end)."""
    starts, ends = sequence_bounds(cu_seqlens, num_tokens)
    return torch.arange(num_tokens, device=cu_seqlens.device) - starts, starts, ends


def _mean_over_residues(hidden: torch.Tensor, packed: PackedTokens) -> torch.Tensor:
    """Mean of hidden[positions 1..min(len-2, 1024)] per sequence, fp32."""
    cu = packed.cu_seqlens
    lengths = cu[1:] - cu[:-1]
    seq_index = torch.repeat_interleave(
        torch.arange(lengths.numel(), device=cu.device), lengths, output_size=packed.num_tokens
    )
    positions = _token_spans(cu, packed.num_tokens)[0]
    counted_len = (lengths - 2).clamp(min=0, max=MAX_MEAN_POSITIONS)  # residues, BOS/EOS excluded
    counted = (positions >= 1) & (positions <= counted_len[seq_index])
    sums = segment_sums(hidden.float() * counted.unsqueeze(-1), lengths)
    means = sums / counted_len.clamp(min=1).unsqueeze(-1)
    return means
