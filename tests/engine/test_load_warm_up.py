"""What the ESM-2 warm-up compiles (issue #20: 6.2 s of warm-up with warm caches): the compiled
functions are shared by every layer, so the graphs compiled do not grow with the layer count,
and the compiled path gives the numbers it gave before its warm-up was split into timed batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from virnucpro.models.esm2_loader import load_esm2
from virnucpro.tokenize.packing import pack


def _batches():
    for tokens in (48, 49, 100):  # the warm-up's shapes (engine/encoders.py warm_up)
        yield pack([np.concatenate(([0], np.full(tokens - 2, 5 + tokens % 7), [2]))] * 7)


@pytest.mark.slow
def test_the_compiled_functions_are_traced_once_for_all_layers(tiny_esm2):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    before = counters["stats"]["unique_graphs"]
    model = load_esm2(tiny_esm2, "cpu", torch.float32, fast=True)
    compiled = [model.embed(batch) for batch in _batches()]
    graphs = counters["stats"]["unique_graphs"] - before
    # rotary_qkv and post_attention (on a GPU in bf16 one more: the last layer's fp32 output)
    assert model.cfg.num_layers >= 2 and graphs == 2
    eager = load_esm2(tiny_esm2, "cpu", torch.float32, fast=False)
    for batch, result in zip(_batches(), compiled):
        torch.testing.assert_close(result, eager.embed(batch), rtol=1e-5, atol=1e-5)
