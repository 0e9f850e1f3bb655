"""Two micro-batches of one packed batch on two CUDA streams (issue #20.4, lever (a)).

ESM-2's memory-bound kernels (residual + LayerNorm, attention, rotary) leave the GPU's matrix units
idle; with a batch split into two halves along sequence boundaries and each half's layers queued on
its own stream, the GPU may run one half's memory-bound kernels while the other half's matmuls run.
Every op is per token or per sequence, so each sequence gets the same function as in one stream
(the last bits may differ where cuBLAS picks another kernel for the smaller token count).
On the CPU (no streams) the halves simply run one after the other: the same code path, testable.
Measured on an H200 (benchmarks/results/esm2_h200_overlap.json): 1.7% slower at 48-50 aa and 2.3%
at 95-100 aa than one stream -- the matmuls already fill the GPU -- so `ESM2.stream_overlap` is off
by default; it stays for re-measuring on GPUs where that may differ.
"""

from __future__ import annotations

import contextlib

import torch

from virnucpro.tokenize.packing import PackedTokens


def split_at_half(packed: PackedTokens) -> tuple[PackedTokens, PackedTokens] | None:
    """The batch cut at the sequence boundary nearest half its tokens, or None (fewer than two
    sequences). A batch already on the GPU costs one host sync to read its boundaries."""
    cu = packed.cu_seqlens.cpu()
    if cu.numel() < 3:
        return None
    inner = cu[1:-1].long()
    cut = int(torch.argmin((2 * inner - packed.num_tokens).abs())) + 1  # sequences in the first half
    tokens = int(cu[cut])
    lengths = cu[1:] - cu[:-1]
    first = PackedTokens(packed.ids[:tokens], packed.cu_seqlens[: cut + 1], int(lengths[:cut].max()))
    second_cu = (packed.cu_seqlens[cut:] - tokens).to(packed.cu_seqlens.dtype)
    second = PackedTokens(packed.ids[tokens:], second_cu, int(lengths[cut:].max()))
    return first, second


def side_streams(device: torch.device) -> tuple[torch.cuda.Stream | None, torch.cuda.Stream | None]:
    """Two new streams on a CUDA device; (None, None) elsewhere (the halves then run in turn)."""
    if device.type != "cuda":
        return None, None
    return torch.cuda.Stream(device), torch.cuda.Stream(device)


def on_stream(stream: torch.cuda.Stream | None):
    """Queue work on `stream` (a no-op context for None)."""
    return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()


def fork(streams) -> None:
    """Each side stream waits for the work already queued on the current stream."""
    for stream in streams:
        if stream is not None:
            stream.wait_stream(torch.cuda.current_stream(stream.device))


def join(streams, results: list[torch.Tensor]) -> None:
    """The current stream waits for the side streams; their results may be freed after its use."""
    for stream in streams:
        if stream is not None:
            main = torch.cuda.current_stream(stream.device)
            main.wait_stream(stream)
            for tensor in results:
                tensor.record_stream(main)
