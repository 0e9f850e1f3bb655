"""Every numeric option of every subcommand, stdin edge cases and GPU requests: the user gets what
they asked for or a usage error / one `virnucpro: error:` line, never a traceback or a crash."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from virnucpro.cli.main import main
from virnucpro.pipeline.cpu_warning import estimated_bases, warn_if_slow_on_cpu
from virnucpro.engine.devices import SetupError, resolve_devices, set_threads

FASTA = ">r1\n" + "ATGGCTAAAGGTCTTGCTGCAGGTAAACGTACTGAAGGTCTTGCTAAAGGTCTTGCT" * 3 + "\n"
CPUS = os.cpu_count() or 1
NO_GPU = not torch.cuda.is_available()


def usage_error(capsys, argv, expected: str) -> None:
    """click refuses the option before anything runs: exit 2, the option named, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Error: Invalid value" in err and expected in err, err


def one_line_error(capsys, argv, expected: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("virnucpro: error: ") and expected in err, err


@pytest.fixture
def fasta(tmp_path) -> Path:
    path = tmp_path / "in.fa"
    path.write_text(FASTA)
    return path


# predict/embed share run_options; each value must be refused at parse time, before models load.
@pytest.mark.parametrize("command", ["predict", "embed"])
@pytest.mark.parametrize(("option", "value"), [
    ("--threshold", "nan"), ("--threshold", "inf"), ("--threshold", "-0.1"), ("--threshold", "1.5"),
    ("--batch-tokens", "0"), ("--batch-tokens", "99999999999999999999"), ("--block-records", "-1"),
    ("--block-records", "99999999999999999999"), ("--threads", "0"), ("--threads", "-4"),
    ("--workers", "0"), ("--chunk-size", "2"), ("--chunk-size", "10000000"), ("--chunk-size", "nan"),
])
def test_absurd_run_options_are_usage_errors(capsys, tmp_path, fasta, command, option, value):
    if command == "embed" and option == "--threshold":
        pytest.skip("embed has no --threshold")
    target = ["-o", str(tmp_path / "out")] if command == "predict" else ["-o", str(tmp_path / "e.parquet")]
    usage_error(capsys, [command, str(fasta), *target, option, value], option)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("argv", "option"), [
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--lr", "nan"], "--lr"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--lr", "inf"], "--lr"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--lr", "0"], "--lr"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--val-fraction", "nan"], "--val-fraction"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--seed", "-1"], "--seed"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--seed", "99999999999999999999999"], "--seed"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--epochs", "10000000000"], "--epochs"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--batch-size", "1"], "--batch-size"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--patience", "0"], "--patience"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--chunk-size", "0"], "--chunk-size"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--device", "meta"], "--device"),
    (["train", "--virus", "v.parquet", "-o", "c.safetensors", "--device", "cuda:99999999999999"], "--device"),
    (["benchmark", "--reads", "0"], "--reads"),
    (["benchmark", "--reads", "99999999999999999999"], "--reads"),
    (["benchmark", "--batch-tokens", "99999999999999999999"], "--batch-tokens"),
    (["frames", "x.fa", "-o", "out", "--chunk-size", "0"], "--chunk-size"),
    (["frames", "x.fa", "-o", "out", "--chunk-size", "99999999999999999999"], "--chunk-size"),
    (["convert-classifier", "x.pth", "-o", "y.safetensors", "--chunk-size", "-300"], "--chunk-size"),
    (["plot", "out", "--threshold", "nan"], "--threshold"),
    (["plot", "out", "--max-tracks", "100000"], "--max-tracks"),
])
def test_absurd_options_of_other_commands_are_usage_errors(capsys, argv, option):
    usage_error(capsys, argv, option)


def test_threshold_nan_leaves_no_journal_behind(capsys, tmp_path, fasta, model_args):
    """The issue's case: NaN was accepted, then run.json failed, leaving a journal."""
    usage_error(capsys, ["predict", str(fasta), "-o", str(tmp_path / "out"), "--threshold", "nan", *model_args],
                "--threshold")
    assert not (tmp_path / "out").exists()


def test_more_threads_than_cpus_is_refused_not_a_segfault(tmp_path, fasta, model_args):
    """`--threads 100000` crashed torch's thread pool (SIGSEGV); in a subprocess so a crash shows."""
    done = subprocess.run([sys.executable, "-m", "virnucpro", "predict", str(fasta), "-o", str(tmp_path / "out"),
                           "--threads", "100000", *model_args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.startswith("virnucpro: error: --threads 100000: this machine has")
    assert done.stderr.count("\n") == 1


def test_set_threads_accepts_every_cpu_and_refuses_more():
    before = torch.get_num_threads()
    try:
        assert set_threads(CPUS) == CPUS
        with pytest.raises(SetupError, match="--threads"):
            set_threads(CPUS + 1)
    finally:
        torch.set_num_threads(before)


def test_more_cpu_workers_than_cpus_is_refused(capsys, tmp_path, fasta, model_args):
    one_line_error(capsys, ["predict", str(fasta), "-o", str(tmp_path / "out"), *model_args,
                            "--workers", str(CPUS + 1)], f"--workers {CPUS + 1}: this machine has {CPUS} CPU(s)")


@pytest.mark.parametrize("gpus", ["x", "0,,1", "-1", "0", "0,0", "99999999999999999999", "1e3"])
def test_malformed_or_impossible_gpus_are_one_line(gpus):
    with pytest.raises(SetupError, match="--gpus"):
        resolve_devices("auto", gpus)


# --- point 7: what the user asked for, or an error --------------------------------------------

@pytest.mark.skipif(not NO_GPU, reason="checks the refusal on a machine without a GPU")
@pytest.mark.parametrize(("extra", "expected"), [
    (["--gpus", "2"], "--gpus 2: no CUDA GPU is visible"),
    (["--gpus", "all"], "--gpus all: no CUDA GPU is visible"),
    (["--device", "cuda"], "--device cuda: no CUDA GPU is visible"),
    (["--device", "cuda:3"], "--device cuda:3: no CUDA GPU is visible"),
])
def test_explicit_gpu_request_without_a_gpu_fails_instead_of_running_on_the_cpu(capsys, tmp_path, fasta,
                                                                                tiny_models, extra, expected):
    argv = ["predict", str(fasta), "-o", str(tmp_path / "out"), "--esm", str(tiny_models / "esm2"),
            "--dnabert", str(tiny_models / "dnabert-s"), "--classifier", str(tiny_models / "classifier.pth"), *extra]
    one_line_error(capsys, argv, expected)
    assert not (tmp_path / "out" / "prediction_results.txt").exists()


def test_gpus_with_device_cpu_is_contradictory():
    with pytest.raises(SetupError, match="--gpus 1 asks for GPUs but --device is cpu"):
        resolve_devices("cpu", "1")


@pytest.mark.gpu
@pytest.mark.skipif(NO_GPU, reason="needs a CUDA GPU")
def test_more_gpus_than_visible_is_refused():
    count = torch.cuda.device_count()
    with pytest.raises(SetupError, match=f"--gpus {count + 1}: {count + 1} GPUs requested but only {count}"):
        resolve_devices("auto", str(count + 1))
    with pytest.raises(SetupError, match=f"GPU {count} requested"):
        resolve_devices(f"cuda:{count}")


_BIG = 600_000_000  # an ESM-2 of 600M parameters

def test_full_size_esm2_on_the_cpu_by_default_warns_with_an_estimate(tmp_path, caplog):
    reads = tmp_path / "reads.fq"
    reads.write_text("@r\n" + "A" * 150 + "\n+\n" + "I" * 150 + "\n")
    logger = logging.getLogger("cliargs_test")
    with caplog.at_level(logging.WARNING, logger="cliargs_test"):
        assert warn_if_slow_on_cpu("auto", torch.device("cpu"), _BIG, [str(reads)] * 1000, 4, logger)
    assert "no GPU found" in caplog.text and "0.6B parameters" in caplog.text and "~153,500 bases" in caplog.text
    assert not warn_if_slow_on_cpu("cpu", torch.device("cpu"), _BIG, [str(reads)], 4, logger), "asked for"
    assert not warn_if_slow_on_cpu("auto", torch.device("cpu"), 8 * 8 + 8, [str(reads)], 4, logger)


def test_estimated_bases_counts_fastq_qualities_and_compression(tmp_path):
    (tmp_path / "a.fa").write_bytes(b"x" * 1000)
    (tmp_path / "b.fastq.gz").write_bytes(b"x" * 1000)
    assert estimated_bases([str(tmp_path / "a.fa"), str(tmp_path / "b.fastq.gz"), "-"]) == 1000 + 2000


@pytest.mark.skipif(not NO_GPU, reason="auto picks the GPU when there is one")
def test_tiny_models_on_the_cpu_by_default_do_not_warn(tmp_path, fasta, tiny_models):
    log = tmp_path / "run.log"
    assert main(["predict", str(fasta), "-o", str(tmp_path / "out"), "--esm", str(tiny_models / "esm2"),
                 "--dnabert", str(tiny_models / "dnabert-s"), "--classifier", str(tiny_models / "classifier.pth"),
                 "-q", "--log-file", str(log)]) == 0
    assert "no GPU found" not in log.read_text()


# --- standard input ----------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["predict", "frames"])
def test_stdin_named_twice_is_refused(capsys, tmp_path, command, model_args):
    extra = model_args if command == "predict" else []
    one_line_error(capsys, [command, "-", "-", "-o", str(tmp_path / "out"), *extra], "more than once")


@pytest.mark.parametrize("command", ["predict", "frames"])
def test_closed_stdin_is_refused(capsys, tmp_path, monkeypatch, command, model_args):
    monkeypatch.setattr(sys, "stdin", None)  # what Python sets when started with fd 0 closed (`0<&-`)
    extra = model_args if command == "predict" else []
    one_line_error(capsys, [command, "-", "-o", str(tmp_path / "out"), *extra], "stdin is closed")


def test_closed_stdin_in_a_real_process(tmp_path):
    done = subprocess.run(f'exec 0<&-; "{sys.executable}" -m virnucpro frames - -o "{tmp_path / "out"}"',
                          shell=True, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "stdin is closed" in done.stderr and "Traceback" not in done.stderr


def test_empty_stdin_is_an_empty_run(tmp_path, model_args):
    done = subprocess.run([sys.executable, "-m", "virnucpro", "predict", "-", "-o", str(tmp_path / "out"),
                           *model_args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "prediction_results.txt").exists()


@pytest.mark.parametrize("address", ["nonsense://x", "host", "ray://", "1.2.3.4:port"])
def test_malformed_ray_address_is_one_line(capsys, tmp_path, fasta, model_args, address):
    one_line_error(capsys, ["predict", str(fasta), "-o", str(tmp_path / "out"), *model_args, "--engine", "ray",
                            "--ray-address", address], "--ray-address")


def test_ray_address_from_the_environment_is_ignored_with_the_local_engine(tmp_path, fasta, model_args, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "nonsense://x")
    assert main(["predict", str(fasta), "-o", str(tmp_path / "out"), *model_args]) == 0


@pytest.mark.parametrize("address", ["auto", "10.0.0.1:6379", "ray://head.example.org:10001", "[::1]:6379"])
def test_well_formed_ray_addresses_pass_the_check(address):
    from virnucpro.cli.checks import check_ray_address

    check_ray_address(address)
