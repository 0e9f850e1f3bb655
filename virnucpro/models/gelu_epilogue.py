"""Whether ESM-2's fc1 + GELU may run as one cuBLASLt matmul with the GELU epilogue.

ESM-2 uses exact (erf) GELU; cuBLASLt's epilogue computes the tanh form. The two differ by at most
~4.7e-4 per element, under bf16's own rounding. On an H200 with full-size random weights
(benchmarks/results/esm2_h200_gelu.json, both in one call) the epilogue made ESM-2 4.6% faster at
48-50 aa (104.1k vs 99.5k tokens/s; the separate GELU kernel was 6% of the time) and the embeddings'
cosine to the fp32 erf reference stayed the same (min 0.999988 vs 0.999987 with erf). So the
epilogue runs on CUDA in fp16/bf16 only; fp32 (the reference path) and the CPU keep exact erf GELU.

The op, `torch._addmm_activation(bias, x, weight.t(), use_gelu=True)`, is private to aten: it is
checked once per device and dtype (present, runs, gives GELU of the matmul), and the model falls
back to matmul + erf GELU where it is not.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

HALF_DTYPES = (torch.float16, torch.bfloat16)
_PROBE_MAX_ERROR = 2e-2  # relative; bf16 output rounding alone gives ~4e-3


def fc1_gelu_epilogue(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """GELU(h @ weight.T + bias) in one matmul (tanh-form GELU fused into cuBLASLt's epilogue)."""
    return torch._addmm_activation(bias, h, weight.t(), use_gelu=True)


@functools.cache
def gelu_epilogue_problem(device: torch.device, dtype: torch.dtype) -> str | None:
    """None where the fused epilogue should run on (device, dtype); otherwise why not, for the log."""
    if device.type != "cuda":
        return f"exact erf GELU on {device.type}"
    if dtype not in HALF_DTYPES:
        return f"exact erf GELU in {str(dtype).removeprefix('torch.')} (the reference precision)"
    return probe_gelu_epilogue(device, dtype)


def probe_gelu_epilogue(device: torch.device, dtype: torch.dtype) -> str | None:
    """Run the op once on a small problem and compare with GELU of the same matmul in fp32:
    None if it is there and right, else what went wrong (the model then uses erf GELU)."""
    op = getattr(torch, "_addmm_activation", None)
    if op is None:
        return f"torch {torch.__version__} has no _addmm_activation"
    gen = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*shape, generator=gen) for shape in ((64, 128), (256, 128), (256,)))
    w = w / 128**0.5
    try:
        got = op(b.to(device, dtype), x.to(device, dtype), w.to(device, dtype).t(), use_gelu=True).float().cpu()
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        return f"torch._addmm_activation failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    want = F.gelu(F.linear(x, w, b))
    error = ((got - want).norm() / want.norm()).item()
    if not error <= _PROBE_MAX_ERROR:  # also catches NaN
        return f"torch._addmm_activation is off from GELU by {error:.2g} (relative)"
    return None
