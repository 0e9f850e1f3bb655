"""Building a model on the meta device (shapes only; the loaders then assign the checkpoint's
weights) without running its parameter initialisers.

Why: `nn.Embedding` initialises with `normal_`, which on a meta tensor goes through a Python
reference decorated to disable dynamo, and that decorator imports `torch._dynamo` - 3.9 s of a
start-up on an H200 (issue #20), paid by every run, also on the CPU where nothing is compiled.
`torch.arange` on the meta device takes the same path, so the few numbers of a buffer (rotary
frequencies, position ids) are made on the CPU instead; the loaders assign every buffer from the
checkpoint or their own computation, as before. A meta tensor holds no values, so skipping its
initialisers changes nothing; the mode is
thread-local (DNABERT-S builds on a thread while ESM-2 builds here) and leaves any tensor that
is not on the meta device to the real initialiser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch.nn import init
from torch.overrides import TorchFunctionMode

Model = TypeVar("Model", bound=torch.nn.Module)

_INITIALISERS = frozenset({
    init.normal_, init.uniform_, init.trunc_normal_, init.constant_, init.ones_, init.zeros_,
    init.kaiming_uniform_, init.kaiming_normal_, init.xavier_uniform_, init.xavier_normal_,
})  # fmt: skip


class _SkipMetaInit(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _INITIALISERS:  # torch.nn.init passes the tensor by keyword
            tensor = kwargs.get("tensor", args[0] if args else None)
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        if func is torch.arange and kwargs.get("device") is None:  # a buffer's few numbers, as real ones
            return func(*args, **kwargs, device="cpu")
        return func(*args, **kwargs)


def build_on_meta(build: Callable[[], Model]) -> Model:
    """`build()` with every tensor it creates on the meta device and no initialiser run."""
    with torch.device("meta"), _SkipMetaInit():
        return build()
