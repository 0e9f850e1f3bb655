"""Shared fixtures: tiny random-weight models in the real on-disk formats, real test sequences."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from virnucpro.devtools.workloads import GENOME_DIR

# Tests never touch the network: a run that lacks a published model fails offline instead of fetching
# it (test_download.py / test_first_run.py point huggingface_hub at the loopback fake hub and switch
# this off). Set before huggingface_hub is imported, and inherited by the CLI subprocesses.
os.environ["HF_HUB_OFFLINE"] = "1"

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"  # real data the package does not ship: the Illumina reads
GENOMES = GENOME_DIR  # the seven real genomes: the package's own copy (the wheel ships it for the workloads)
READS = REAL / "ERR266411_1.first1000.fastq"
REAL_INPUTS = sorted([*GENOMES.iterdir(), READS])  # every real genome and read file


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """OUTDIR/esm2, OUTDIR/dnabert-s, OUTDIR/classifier.pth, OUTDIR/classifier.safetensors."""
    from virnucpro.devtools.random_models import write_random_models

    outdir = tmp_path_factory.mktemp("tiny-models")
    write_random_models(outdir, size="tiny", seed=0)
    return outdir


@pytest.fixture(scope="session")
def model_args(tiny_models) -> list[str]:
    """CLI arguments that point predict/embed at the tiny models, on the CPU."""
    return ["--esm", str(tiny_models / "esm2"), "--dnabert", str(tiny_models / "dnabert-s"),
            "--classifier", str(tiny_models / "classifier.pth"), "--device", "cpu", "-q"]


def tiny_model_paths(models: Path) -> dict[str, Path]:
    """The three model paths of a random-models directory, keyed as `load_encoders` wants them."""
    return {"dnabert": models / "dnabert-s", "esm2": models / "esm2", "classifier": models / "classifier.pth"}


def first_real_block(models: Path, batch_tokens: int):
    """The first work block of the real Illumina reads, batched for the models in `models`."""
    from virnucpro.io import read_records
    from virnucpro.pipeline.blocks import BlockSettings, iter_blocks
    from virnucpro.engine.encoders import tokenizer_for

    settings = BlockSettings(chunk_size=300, chunking="even", batch_tokens=batch_tokens)
    records = read_records([str(READS)])
    return next(iter_blocks(records, settings, tokenizer_for(models / "dnabert-s")))


def reads_and_phix(tmp_path: Path, reads: int = 100) -> list[str]:
    """The first `reads` real Illumina reads plus the phiX174 genome: a small mixed input."""
    lines = (READS).read_text().splitlines()[: 4 * reads]
    path = tmp_path / "reads.fastq"
    path.write_text("\n".join(lines) + "\n")
    return [str(path), str(GENOMES / "phiX174_NC_001422.fa")]
