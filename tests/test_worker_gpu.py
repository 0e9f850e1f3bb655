"""GPU: a device worker runs a whole block without ever making the host wait for the GPU.

A host-device synchronisation inside `run_block` (a `.item()`, a copy from pageable memory, a
validation read-back) drains the GPU's queue and leaves it idle while the next kernels are
launched; with DNABERT-S's short kernels that shows as GPU-busy loss. CUDA's sync debug mode turns
any such call into an error. Skipped without CUDA.
"""

from __future__ import annotations

import pytest
import torch
from conftest import REAL

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_run_block_never_synchronises(tiny_models):
    from virnucpro.engine.worker import DeviceWorker, warm_up
    from virnucpro.io import read_records
    from virnucpro.pipeline.blocks import BlockSettings, iter_blocks
    from virnucpro.pipeline.setup import load_encoders, tokenizer_for

    paths = {"dnabert": tiny_models / "dnabert-s", "esm2": tiny_models / "esm2",
             "classifier": tiny_models / "classifier.pth"}  # fmt: skip
    encoders, _ = load_encoders(paths, torch.device("cuda", 0), torch.bfloat16)
    settings = BlockSettings(chunk_size=300, chunking="even", esm_batch_tokens=4096, dnabert_batch_tokens=4096)
    records = read_records([str(REAL / "ERR266411_1.first1000.fastq")])
    block = next(iter_blocks(records, settings, tokenizer_for(tiny_models / "dnabert-s")))
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
