"""Our DNABERT-S (DNABERT-2 / MosaicBERT architecture) over packed token batches.

Numerically the published model run one sequence at a time: word + token-type-0 embeddings ->
LayerNorm, then post-LN layers of ALiBi self-attention (fused Wqkv) and a GEGLU MLP. Module and
parameter names equal the checkpoint's keys, so loading is a key-for-key copy.

Sequences arrive packed (`PackedTokens`: no padding). Every matrix product runs on the packed
tokens; only attention needs per-sequence structure, which it gets from (first that runs here)
flash-attn's varlen kernel with ALiBi slopes, our Triton packed kernel with ALiBi built in
(`packed_attention.py`), or SDPA over a padded view with a float ALiBi + key-padding bias (CPU,
fp32: the exact reference path).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from virnucpro.models.attention import flash_varlen, fused_kernels_apply
from virnucpro.models.packed_attention import (
    has_packed_attention,
    packed_attention,
    sequence_bounds,
)
from virnucpro.models.pooling import segment_sums
from virnucpro.tokenize.packing import PackedTokens


@dataclass(frozen=True)
class DnabertConfig:
    """Sizes as in the published config.json (defaults: DNABERT-S itself)."""

    vocab_size: int = 4096
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_hf(cls, config: dict) -> DnabertConfig:
        """From a Hugging Face config.json dict; keys it lacks keep the published values."""
        return cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


def alibi_slopes(n_heads: int) -> list[float]:
    """ALiBi slopes as MosaicBERT/DNABERT-2 build them.

    A power of two n gets the geometric series 2^(-8/n), 2^(-16/n), ...; otherwise the series of
    the largest power of two below n, then every other slope of the series for twice that.
    """
    closest = 2 ** math.floor(math.log2(n_heads))
    start = 2.0 ** (-8.0 / closest)
    slopes = [start ** (i + 1) for i in range(closest)]
    if closest < n_heads:
        slopes += alibi_slopes(2 * closest)[0::2][: n_heads - closest]
    return slopes


class Embeddings(nn.Module):
    def __init__(self, cfg: DnabertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, ids: Tensor) -> Tensor:
        # Single-segment input: every token has type 0, as the original's default token_type_ids.
        return self.LayerNorm(self.word_embeddings(ids) + self.token_type_embeddings.weight[0])


class FusedQKV(nn.Module):
    def __init__(self, cfg: DnabertConfig) -> None:
        super().__init__()
        self.Wqkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)


class AttentionOutput(nn.Module):
    def __init__(self, cfg: DnabertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class Attention(nn.Module):
    def __init__(self, cfg: DnabertConfig) -> None:
        super().__init__()
        self.self = FusedQKV(cfg)  # named `self` because the checkpoint key is attention.self.Wqkv
        self.output = AttentionOutput(cfg)

    def forward(self, x: Tensor, batch: AttentionBatch) -> Tensor:
        context = batch.attend(self.self.Wqkv(x))  # [T, 3D] -> [T, D]
        norm = self.output.LayerNorm
        return _run(_residual_layer_norm, self.output.dense(context), x, norm.weight, norm.bias, norm.eps)


class GatedMLP(nn.Module):
    """GEGLU: exact GELU of the first half of `gated_layers`, times the second half."""

    def __init__(self, cfg: DnabertConfig) -> None:
        super().__init__()
        self.gated_layers = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.wo = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.wo(_run(_geglu, self.gated_layers(x)))
        norm = self.layernorm
        return _run(_residual_layer_norm, hidden, x, norm.weight, norm.bias, norm.eps)


def _geglu(gated: Tensor) -> Tensor:
    gate, value = gated.chunk(2, dim=-1)
    return F.gelu(gate) * value


def _residual_layer_norm(x: Tensor, residual: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    return F.layer_norm(x + residual, weight.shape, weight, bias, eps)


@functools.cache
def _fused(fn):
    """`fn` under torch.compile for any token count: one fused kernel instead of several passes."""
    return torch.compile(fn, dynamic=True)


def _run(fn, x: Tensor, *args):
    """On CUDA the fused version (+15% frames/s on an H200, compiled once in ~6 s); else eager."""
    return (_fused(fn) if x.is_cuda else fn)(x, *args)


class Layer(nn.Module):
    def __init__(self, cfg: DnabertConfig) -> None:
        super().__init__()
        self.attention = Attention(cfg)
        self.mlp = GatedMLP(cfg)

    def forward(self, x: Tensor, batch: AttentionBatch) -> Tensor:
        return self.mlp(self.attention(x, batch))


class Encoder(nn.Module):
    def __init__(self, cfg: DnabertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_hidden_layers))


class DnabertS(nn.Module):
    """DNABERT-S encoder; `embed` gives the per-sequence mean over all tokens ([CLS]/[SEP] too)."""

    def __init__(self, config: DnabertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)

    def hidden_states(self, ids: Tensor, batch: AttentionBatch) -> Tensor:
        """Last-layer states of packed tokens, [T, D] in the model's dtype."""
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, batch)
        return x

    @torch.inference_mode()
    def embed(self, packed: PackedTokens) -> Tensor:
        """Mean of the last-layer states over each sequence's tokens: [B, D], float32."""
        device = self.embeddings.word_embeddings.weight.device
        ids = packed.ids.to(device, non_blocking=True)
        cu_seqlens = packed.cu_seqlens.to(device, non_blocking=True)
        if packed.num_sequences == 0:
            return torch.zeros(0, self.config.hidden_size, dtype=torch.float32, device=device)
        batch = AttentionBatch.build(self.config, cu_seqlens, packed.max_seqlen, ids.numel(), self.dtype)
        states = self.hidden_states(ids, batch)
        return segment_sums(states, batch.lengths) / batch.lengths.unsqueeze(1)

    @property
    def dtype(self) -> torch.dtype:
        return self.embeddings.word_embeddings.weight.dtype

    def describe_attention(self) -> str:
        """Which attention kernel `embed` uses on this model's device and dtype (for logs)."""
        device = self.embeddings.word_embeddings.weight.device
        fused = "; torch.compile-fused GEGLU and residual+LayerNorm" if device.type == "cuda" else ""
        return _ATTENTION_NAMES[_attention_kind(self.config, device, self.dtype)] + fused


_ATTENTION_NAMES = {
    "flash": "flash-attn varlen (ALiBi slopes)",
    "triton": "Triton packed attention (ALiBi in-kernel)",
    "padded": "SDPA over a padded view (ALiBi + key-padding bias)",
}


def _attention_kind(cfg: DnabertConfig, device: torch.device, dtype: torch.dtype) -> str:
    """flash-attn when installed, else our Triton kernel, else the padded SDPA reference."""
    if fused_kernels_apply(device, dtype) and flash_varlen() is not None:
        return "flash"
    if has_packed_attention(device, dtype, cfg.head_dim):
        return "triton"
    return "padded"


@functools.cache
def _slopes_on(n_heads: int, device: torch.device) -> Tensor:
    """Cached per device: a fresh host-to-device copy per batch would stall the launch queue."""
    return torch.tensor(alibi_slopes(n_heads), dtype=torch.float32, device=device)


@dataclass
class AttentionBatch:
    """Per-batch index tensors shared by all layers: which token belongs to which sequence."""

    n_heads: int
    head_dim: int
    cu_seqlens: Tensor  # [B+1] int32
    max_seqlen: int
    lengths: Tensor  # [B] float32
    seq_index: Tensor  # [T] sequence of each token
    slopes: Tensor  # [H] float32
    kind: str  # see _attention_kind
    padded: PaddedView | None  # only for the padded SDPA path
    seq_bounds: tuple[Tensor, Tensor] | None  # [T] int32 start/end of each token's sequence (Triton)

    @classmethod
    def build(
        cls, cfg: DnabertConfig, cu_seqlens: Tensor, max_seqlen: int, n_tokens: int, dtype: torch.dtype
    ) -> AttentionBatch:
        device = cu_seqlens.device
        lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
        seq_index = torch.repeat_interleave(
            torch.arange(lengths.numel(), device=device), lengths, output_size=n_tokens
        )
        slopes = _slopes_on(cfg.num_attention_heads, device)
        kind = _attention_kind(cfg, device, dtype)
        padded = seq_bounds = None
        if kind == "padded":
            padded = PaddedView.build(cu_seqlens.long(), lengths, seq_index, max_seqlen, slopes, dtype)
        elif kind == "triton":
            seq_bounds = sequence_bounds(cu_seqlens, n_tokens)
        return cls(
            n_heads=cfg.num_attention_heads,
            head_dim=cfg.head_dim,
            cu_seqlens=cu_seqlens.int(),
            max_seqlen=max_seqlen,
            lengths=lengths.float(),
            seq_index=seq_index,
            slopes=slopes,
            kind=kind,
            padded=padded,
            seq_bounds=seq_bounds,
        )

    def attend(self, qkv: Tensor) -> Tensor:
        """Per-sequence softmax(q k^T / sqrt(d) - slope |i - j|) v; [T, 3D] -> [T, D]."""
        n_tokens = qkv.shape[0]
        if self.kind == "triton":
            start, end = self.seq_bounds
            out = packed_attention(qkv, start, end, self.n_heads, self.head_dim**-0.5, alibi_slopes=self.slopes)
            return out.reshape(n_tokens, -1)
        if self.kind == "flash":
            q, k, v = qkv.view(n_tokens, 3, self.n_heads, self.head_dim).unbind(1)
            out = flash_varlen()(
                q, k, v, self.cu_seqlens, self.cu_seqlens, self.max_seqlen, self.max_seqlen,
                softmax_scale=self.head_dim**-0.5, alibi_slopes=self.slopes,
            )
            return out.reshape(n_tokens, -1)
        return self.padded.attend(qkv, self.n_heads, self.head_dim)


@dataclass
class PaddedView:
    """Gather/scatter indices between packed tokens and a [B, L] padded grid, plus the bias.

    Padding slots point at a real token of their sequence (any valid index does: the bias masks
    them out as keys with -inf and their query rows are never read back), so no zero-filling.
    """

    slot_token: Tensor  # [B*L] token index feeding each padded slot
    token_slot: Tensor  # [T] padded slot of each token
    bias: Tensor  # [B, H, L, L] ALiBi and -inf on padded keys, in the compute dtype
    width: int  # L: the longest sequence, rounded up to 8 for aligned kernel access

    @classmethod
    def build(
        cls, cu_seqlens: Tensor, lengths: Tensor, seq_index: Tensor, max_seqlen: int,
        slopes: Tensor, dtype: torch.dtype,
    ) -> PaddedView:
        device = cu_seqlens.device
        width = max(8, -(-max_seqlen // 8) * 8)
        n_seqs = lengths.numel()
        position = torch.arange(seq_index.numel(), device=device) - cu_seqlens[seq_index]
        token_slot = seq_index * width + position
        grid = torch.arange(width, device=device)
        in_range = torch.minimum(grid.unsqueeze(0), (lengths - 1).clamp(min=0).unsqueeze(1))  # [B, L]
        slot_token = (cu_seqlens[:-1].unsqueeze(1) + in_range).reshape(-1)
        distance = (grid.unsqueeze(0) - grid.unsqueeze(1)).abs().float()  # [L, L]
        alibi = -slopes.view(-1, 1, 1) * distance  # [H, L, L]
        padded_key = grid.unsqueeze(0) >= lengths.unsqueeze(1)  # [B, L]
        bias = alibi.unsqueeze(0).masked_fill(padded_key.view(n_seqs, 1, 1, width), float("-inf"))
        return cls(slot_token=slot_token, token_slot=token_slot, bias=bias.to(dtype), width=width)

    def attend(self, qkv: Tensor, n_heads: int, head_dim: int) -> Tensor:
        n_seqs = self.bias.shape[0]
        grid = qkv.index_select(0, self.slot_token).view(n_seqs, self.width, 3, n_heads, head_dim)
        q, k, v = (grid[:, :, i].transpose(1, 2) for i in range(3))  # each [B, H, L, d]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias)  # scale 1/sqrt(d)
        out = out.transpose(1, 2).reshape(n_seqs * self.width, n_heads * head_dim)
        return out.index_select(0, self.token_slot)
