"""The Triton packed attention kernel (rotary for ESM-2, ALiBi for DNABERT-S) against plain references.

On CPU it runs in Triton's interpreter (needs the `triton` package; skipped without it), in a
subprocess because the interpreter is chosen when kernels are defined. On CUDA it runs compiled.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from virnucpro.models.attention import sdpa_padded_attention
from virnucpro.models.dnabert import alibi_slopes
from virnucpro.models.esm2 import rotary_qkv

LENGTHS = [3, 70, 1, 50, 130, 7, 64]  # tiles holding several sequences, sequences spanning tiles
SHORT_LENGTHS = [3, 64, 1, 50, 17, 33, 51]  # sequence tiles: each fits one 64-row tile
TILE_128_LENGTHS = [100, 3, 128, 65, 1]  # one 128-row tile each
HEADS, HEAD_DIM = 2, 64


def _inputs(dtype: torch.dtype, q_scale: float, lengths=LENGTHS):
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor(lengths)
    cu = torch.cat((torch.zeros(1, dtype=torch.long), lengths.cumsum(0))).int()
    tokens = int(cu[-1])
    qkv = torch.randn(tokens, 3 * HEADS * HEAD_DIM, generator=gen)
    qkv[:, : HEADS * HEAD_DIM] *= q_scale
    qkv = qkv.to(dtype).float()  # the reference sees the same rounded inputs
    starts, ends = torch.repeat_interleave(cu[:-1], lengths), torch.repeat_interleave(cu[1:], lengths)
    return qkv, cu, starts, ends


def _relative_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    return ((got.float().cpu() - ref).abs().max() / ref.abs().max()).item()


def _rotary_case(dtype: torch.dtype, lengths):
    """(qkv, cu, starts, ends, cos, sin, reference) for ESM-2's use: q pre-scaled, rotary on q and
    k; the reference is rotary + exact padded SDPA."""
    qkv, cu, starts, ends = _inputs(dtype, HEAD_DIM**-0.5, lengths)
    positions = torch.arange(qkv.shape[0]) - starts
    angles = positions[:, None].float() * (1.0 / 10000 ** (torch.arange(0, HEAD_DIM, 2) / HEAD_DIM))
    cos, sin = angles.cos(), angles.sin()
    q, k, v = rotary_qkv(qkv, cos, sin, HEADS)
    return qkv, cu, starts, ends, cos, sin, sdpa_padded_attention(q, k, v, cu, max(lengths), 1.0)


def check_rotary(device: str, dtype: torch.dtype) -> float:
    """The stream-tile kernel with rotary vs the reference."""
    from virnucpro.models.packed_attention import packed_attention

    qkv, cu, starts, ends, cos, sin, ref = _rotary_case(dtype, LENGTHS)
    got = packed_attention(
        qkv.to(device, dtype), starts.int().to(device), ends.int().to(device), HEADS,
        rotary=(cos.to(device), sin.to(device)),
    )  # fmt: skip
    return _relative_error(got, ref)


def check_sequence_rotary(device: str, dtype: torch.dtype, lengths=SHORT_LENGTHS) -> float:
    """The sequence-tile kernel (one program per sequence and head) with rotary vs the reference,
    on the output poisoned beforehand with NaN (every row must be written)."""
    from virnucpro.models import packed_attention as kernels

    qkv, cu, _, _, cos, sin, ref = _rotary_case(dtype, lengths)
    real_empty = torch.empty
    kernels.torch.empty = lambda *a, **k: real_empty(*a, **k).fill_(float("nan"))
    try:
        got = kernels.sequence_attention(
            qkv.to(device, dtype), cu.to(device), max(lengths), HEADS, rotary=(cos.to(device), sin.to(device))
        )
    finally:
        kernels.torch.empty = real_empty
    return _relative_error(got, ref)


def check_alibi(device: str, dtype: torch.dtype) -> float:
    """DNABERT-S's use: softmax(q.k / sqrt(d) - slope * |i - j|) per sequence, written out plainly."""
    from virnucpro.models.packed_attention import packed_attention

    qkv, cu, starts, ends = _inputs(dtype, 1.0)
    slopes = torch.tensor(alibi_slopes(HEADS))
    q, k, v = qkv.view(-1, 3, HEADS, HEAD_DIM).unbind(1)
    ref = torch.empty_like(q)
    for lo, hi in zip(cu[:-1].tolist(), cu[1:].tolist()):
        pos = torch.arange(hi - lo).float()
        bias = -slopes[:, None, None] * (pos[:, None] - pos[None, :]).abs()  # [H, L, L]
        scores = torch.einsum("ihd,jhd->hij", q[lo:hi], k[lo:hi]) * HEAD_DIM**-0.5 + bias
        ref[lo:hi] = torch.einsum("hij,jhd->ihd", scores.softmax(-1), v[lo:hi])
    got = packed_attention(
        qkv.to(device, dtype), starts.int().to(device), ends.int().to(device), HEADS, HEAD_DIM**-0.5,
        alibi_slopes=slopes.to(device),
    )  # fmt: skip
    return _relative_error(got, ref)


_INTERPRETER_SCRIPT = """
import triton.runtime.interpreter as interp
original = getattr(interp, "_patch_lang_tensor", None)
def patched(tensor, scope):  # the interpreter keeps scalars as shape-(1,) arrays; numpy 2 won't int() them
    original(tensor, scope)
    scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))
if original is not None:
    interp._patch_lang_tensor = patched
import torch
from tests.models.test_packed_attention import check_alibi, check_rotary, check_sequence_rotary
from tests.models.test_packed_attention import TILE_128_LENGTHS
print(check_rotary("cpu", torch.float32), check_alibi("cpu", torch.float32), check_sequence_rotary("cpu", torch.float32),
      check_sequence_rotary("cpu", torch.float32, TILE_128_LENGTHS))
"""


def test_sequence_bounds_name_each_tokens_own_sequence():
    from virnucpro.models.packed_attention import sequence_bounds

    cu = torch.tensor([0, *torch.tensor(LENGTHS).cumsum(0).tolist()], dtype=torch.long)
    starts, ends = sequence_bounds(cu, int(cu[-1]))
    expected = [(int(cu[i]), int(cu[i + 1])) for i in range(len(LENGTHS)) for _ in range(LENGTHS[i])]
    assert starts.dtype == ends.dtype == torch.int32  # what the kernel reads
    assert list(zip(starts.tolist(), ends.tolist())) == expected


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs the triton package")
def test_kernel_in_triton_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run(
        [sys.executable, "-c", _INTERPRETER_SCRIPT], env=env, capture_output=True, text=True, timeout=240, check=False,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    rotary_error, alibi_error, sequence_error, tile_128_error = map(float, run.stdout.split()[-4:])
    assert rotary_error < 1e-5
    assert alibi_error < 1e-5
    assert sequence_error < 1e-5
    assert tile_128_error < 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(
    "check", [check_rotary, check_alibi, check_sequence_rotary, lambda d, t: check_sequence_rotary(d, t, TILE_128_LENGTHS)]
)
def test_kernel_on_gpu_bf16(check):
    error = check("cuda", torch.bfloat16)
    assert error < 1e-2, error


def test_sequence_tile_fits_the_longest_sequence_or_refuses():
    from virnucpro.models.packed_attention import SEQUENCE_TILE_MAX, sequence_attention, sequence_tile

    assert [sequence_tile(n) for n in (1, 16, 17, 33, 52, 64, 65, 128)] == [16, 16, 32, 64, 64, 64, 128, 128]
    assert sequence_tile(SEQUENCE_TILE_MAX + 1) is None and sequence_tile(0) is None
    with pytest.raises(ValueError, match="1..128 tokens, not 129"):
        sequence_attention(torch.zeros(129, 6), torch.tensor([0, 129], dtype=torch.int32), 129, 1)
