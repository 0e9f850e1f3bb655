"""Shared fixtures: tiny random-weight models in the real on-disk formats, real test sequences."""

from __future__ import annotations

import os
import subprocess
import sys
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

# The result files of a predict run, by the options that write them (a test compares what its run writes).
RESULT_TABLES = ("prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv")
RESULT_FILES = (*RESULT_TABLES, "viral.fa")  # --write-hits
RESULT_FILES_WITH_REGIONS = (*RESULT_FILES, "regions.tsv", "regions.fa", "virus_summary.tsv")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """OUTDIR/esm2, OUTDIR/dnabert-s, OUTDIR/classifier.pth, OUTDIR/classifier.safetensors."""
    from virnucpro.devtools.random_models import write_random_models

    outdir = tmp_path_factory.mktemp("tiny-models")
    write_random_models(outdir, size="tiny", seed=0)
    return outdir


@pytest.fixture(scope="session")
def tiny_esm2(tiny_models) -> Path:
    """The tiny random ESM-2 directory; shared by the session, so tests copy it before changing anything."""
    return tiny_models / "esm2"


@pytest.fixture(scope="session")
def tiny_dnabert(tiny_models) -> Path:
    """The tiny random DNABERT-S directory; shared by the session, so tests copy it before changing anything."""
    return tiny_models / "dnabert-s"


@pytest.fixture(scope="module")
def reference(request, tmp_path_factory, model_args) -> tuple[list[str], Path]:
    """The inputs and the files of one uninterrupted CPU run of the module's predict command
    `_args(inputs, out, model_args)`: what an interrupted or failed run must match."""
    return uninterrupted_run(tmp_path_factory, request.module._args, model_args)


def uninterrupted_run(tmp_path_factory, args_of, model_args: list[str]) -> tuple[list[str], Path]:
    """(inputs, output directory) of `main(args_of(inputs, out, model_args))` on reads_and_phix."""
    from virnucpro.cli.main import main

    tmp = tmp_path_factory.mktemp("reference")
    inputs = reads_and_phix(tmp)
    assert main(args_of(inputs, tmp / "out", model_args)) == 0
    return inputs, tmp / "out"


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


# The child prints its own peak RSS: VmHWM, not ru_maxrss, which survives fork and exec, so a child of
# a big pytest process would report the parent's peak (and a growth measured with it could never show).
_PEAK_RSS = ("import sys; from virnucpro.cli.main import main; rc=main(sys.argv[1:]); "
             "print([int(l.split()[1]) // 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); "
             "sys.exit(rc)")


def predict_peak_rss_mib(*args) -> int:
    """Peak resident memory (MiB) of a `virnucpro predict *args` process that must succeed (Linux)."""
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, "predict", *map(str, args)], capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def peak_rss_kib() -> int:
    """This process's peak resident memory (VmHWM, KiB) since it started or since `reset_peak_rss_kib`."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def reset_peak_rss_kib() -> int:
    """Restart the peak count at the resident memory now (Linux >= 4.0) and return it: the peak after
    minus this is what the code in between added. ru_maxrss cannot do this: a test run that once
    peaked higher hides any later growth below that peak."""
    Path("/proc/self/clear_refs").write_text("5")
    return peak_rss_kib()
