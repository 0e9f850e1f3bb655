"""The Triton packed rotary attention kernel against rotary + exact padded SDPA.

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
from virnucpro.models.esm2 import rotary_qkv

LENGTHS = [3, 70, 1, 50, 130, 7, 64]  # tiles holding several sequences, sequences spanning tiles


def check_kernel(device: str, dtype: torch.dtype) -> float:
    """Max |kernel - reference| / max |reference| on random inputs."""
    from virnucpro.models.attention import packed_rotary_attention

    gen = torch.Generator().manual_seed(0)
    heads, head_dim = 2, 64
    lengths = torch.tensor(LENGTHS)
    cu = torch.cat((torch.zeros(1, dtype=torch.long), lengths.cumsum(0))).int()
    tokens = int(cu[-1])
    qkv = torch.randn(tokens, 3 * heads * head_dim, generator=gen)
    qkv[:, : heads * head_dim] /= head_dim**0.5  # q pre-scaled, as ESM2 feeds it
    qkv = qkv.to(dtype).float()  # the reference sees the same rounded inputs
    starts, ends = torch.repeat_interleave(cu[:-1], lengths), torch.repeat_interleave(cu[1:], lengths)
    positions = torch.arange(tokens) - starts
    angles = positions[:, None].float() * (1.0 / 10000 ** (torch.arange(0, head_dim, 2) / head_dim))
    cos, sin = angles.cos(), angles.sin()
    q, k, v = rotary_qkv(qkv, cos, sin, heads)
    ref = sdpa_padded_attention(q, k, v, cu, max(LENGTHS), 1.0)
    got = packed_rotary_attention(
        qkv.to(device, dtype), cos.to(device), sin.to(device), starts.int().to(device), ends.int().to(device), heads
    )
    return ((got.float().cpu() - ref).abs().max() / ref.abs().max()).item()


_INTERPRETER_SCRIPT = """
import triton.runtime.interpreter as interp
original = getattr(interp, "_patch_lang_tensor", None)
def patched(tensor, scope):  # the interpreter keeps scalars as shape-(1,) arrays; numpy 2 won't int() them
    original(tensor, scope)
    scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))
if original is not None:
    interp._patch_lang_tensor = patched
import torch
from tests.test_esm2_triton_attention import check_kernel
print(check_kernel("cpu", torch.float32))
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs the triton package")
def test_kernel_in_triton_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run(
        [sys.executable, "-c", _INTERPRETER_SCRIPT], env=env, capture_output=True, text=True, timeout=240, cwd=Path(__file__).parents[1]
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert float(run.stdout.split()[-1]) < 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_kernel_on_gpu_bf16():
    error = check_kernel("cuda", torch.bfloat16)
    assert error < 1e-2, error
