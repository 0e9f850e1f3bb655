"""The pinned staging ring: every tensor arrives intact, also when the ring wraps around while
earlier copies are still queued behind GPU work (needs CUDA; skipped without it)."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ring_wraps_without_overwriting_queued_copies():
    from virnucpro.engine.staging import PinnedStaging

    staging = PinnedStaging(torch.device("cuda"), capacity=1 << 16)
    busy = torch.randn(4096, 4096, device="cuda")
    sent, arrived = [], []
    for i in range(200):  # ~10 laps of the ring, sizes not multiples of the alignment
        if i % 50 == 0:
            busy = busy @ busy  # keep the GPU behind the host so copies are still queued
            busy /= busy.norm()
        tensor = torch.arange(i, i + 37 + 13 * (i % 17), dtype=torch.int64)
        sent.append(tensor)
        arrived.append(staging.to_device(tensor))
    oversized = torch.arange(20_000, dtype=torch.int64)  # larger than the ring: direct copy
    assert torch.equal(staging.to_device(oversized).cpu(), oversized)
    torch.cuda.synchronize()
    for tensor, copy in zip(sent, arrived):
        assert torch.equal(copy.cpu(), tensor)
