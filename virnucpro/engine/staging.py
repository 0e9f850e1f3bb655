"""Host-to-device copies through one pinned buffer per GPU worker, allocated once.

Asynchronous copies need page-locked (pinned) host memory. Pinning per batch (`tensor.pin_memory()`)
calls cudaHostAlloc whenever PyTorch's pinned-memory cache has no free block of the size, and
cudaHostAlloc takes a driver-wide lock: the thread that feeds the GPU stalls on it and the GPU runs
dry (seen as idle gaps in short-kernel stages such as DNABERT-S). Here every input tensor is copied
into a ring of pinned memory and sent from there; an event per copy says when its bytes may be
reused, so the ring never overwrites data still waiting to be copied.
"""

from __future__ import annotations

from collections import deque

import torch

from virnucpro.tokenize.packing import PackedTokens

RING_BYTES = 64 << 20  # ~5 blocks of token ids; a larger tensor falls back to a direct copy
_ALIGN = 64


class PinnedStaging:
    """Copies host tensors to `device` through a pinned ring buffer (one per worker thread)."""

    def __init__(self, device: torch.device, capacity: int = RING_BYTES):
        self.device = device
        self.buffer = torch.empty(capacity, dtype=torch.uint8, pin_memory=True)
        self._head = 0
        self._pending: deque[tuple[int, int, torch.cuda.Event]] = deque()  # (start, end, copy done)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` on the device; the copy is queued on the current stream, the host never waits
        unless the ring is full of copies the GPU has not made yet."""
        tensor = tensor.contiguous()
        nbytes = tensor.numel() * tensor.element_size()
        if nbytes > self.buffer.numel():
            return tensor.to(self.device)
        start = self._reserve(nbytes)
        staged = self.buffer[start : start + nbytes].view(tensor.dtype).view(tensor.shape)
        staged.copy_(tensor)
        out = staged.to(self.device, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        self._pending.append((start, start + nbytes, done))
        self._head = start + -(-nbytes // _ALIGN) * _ALIGN
        return out

    def packed_to_device(self, packed: PackedTokens) -> PackedTokens:
        return PackedTokens(self.to_device(packed.ids), self.to_device(packed.cu_seqlens), packed.max_seqlen)

    def _reserve(self, nbytes: int) -> int:
        """Start of a free region of `nbytes`: after the last one, or at 0 when the end is reached."""
        start = self._head if self._head + nbytes <= self.buffer.numel() else 0
        end = start + nbytes
        while self._pending and self._pending[0][2].query():  # copies already made
            self._pending.popleft()
        for entry in [e for e in self._pending if e[0] < end and start < e[1]]:
            entry[2].synchronize()  # the GPU has not copied these bytes yet
            self._pending.remove(entry)
        return start
