"""GPU: a device worker runs a whole block without ever making the host wait for the GPU.

A host-device synchronisation inside `run_block` (a `.item()`, a copy from pageable memory, a
validation read-back) drains the GPU's queue and leaves it idle while the next kernels are
launched; with DNABERT-S's short kernels that shows as GPU-busy loss. CUDA's sync debug mode turns
any such call into an error. Skipped without CUDA.
"""

from __future__ import annotations

import pytest
import torch
from conftest import first_real_block, tiny_model_paths

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_run_block_never_synchronises(tiny_models):
    from virnucpro.engine.encoders import load_encoders, warm_up
    from virnucpro.engine.worker import DeviceWorker

    encoders, _ = load_encoders(tiny_model_paths(tiny_models), torch.device("cuda", 0), torch.bfloat16)
    block = first_real_block(tiny_models, 4096)
    worker = DeviceWorker(encoders)
    warm_up(worker.encoders, 4096)
    worker.run_block(block).wait()  # first run: lazy initialisation may synchronise once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        output = worker.run_block(block)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    output.wait()
    assert output.probabilities.shape[0] == len(block.unique_nucleotide)
