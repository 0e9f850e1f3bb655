"""Options shared by `predict`, `embed` and `benchmark`, declared once and turned into RunOptions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from virnucpro.errors import VirnucproError
from virnucpro.cli.checks import (
    MAX_BATCH_TOKENS,
    MAX_BLOCK_RECORDS,
    check_inputs,
    check_ray_address,
    chunk_size_type,
)
from virnucpro.frames.bounds import CHUNKING_MODES


class OptionConflictError(VirnucproError):
    """Options that cannot go together: a usage error (exit 2), printed as one line."""

    exit_code = 2


_OPTIONS = [
    click.option("--model-type", type=click.Choice(["300", "500"]), default="300", show_default=True,
                 help="Published classifier to use; also the default chunk size."),
    click.option("--classifier", metavar="PATH", help="Classifier file (.pth as published, or our .safetensors)."),
    click.option("--esm", metavar="NAME_OR_PATH", help="ESM-2 model: HF directory, fair-esm .pt or hub name."),
    click.option("--dnabert", metavar="NAME_OR_PATH", help="DNABERT-S model directory or hub name."),
    click.option("--models-dir", metavar="DIR", envvar="VIRNUCPRO_MODELS",
                 help="Directory made by `virnucpro download` (env VIRNUCPRO_MODELS)."),
    click.option("--offline", is_flag=True,
                 help="Never touch the network: use only models found locally (as HF_HUB_OFFLINE=1 does)."),
    click.option("--chunk-size", type=chunk_size_type(3), help="Chunk length [default: the model type]."),
    click.option("--chunking", type=click.Choice(CHUNKING_MODES), default="even", show_default=True,
                 help="even: equal chunks, overlaps spread evenly; legacy: the original's rule, defect included."),
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
    click.option("--batch-tokens", type=click.IntRange(64, MAX_BATCH_TOKENS),
                 help="Tokens per encoder batch [default: from GPU memory, 4096 on CPU]."),
    click.option("--precision", type=click.Choice(["bf16", "fp16", "fp32"]),
                 help="Encoder precision [default: bf16 on GPU, fp32 on CPU]."),
    click.option("--threads", type=click.IntRange(min=1), help="CPU threads, at most the machine's CPUs [default: all available]."),
    click.option("--gpus", metavar="all|N|0,2", help="GPUs to use, one worker each [default: all visible]."),
    click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Workers with --device cpu."),
    click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                 help="local: this host's GPUs/CPUs; ray: one Ray actor per GPU of a Ray cluster."),
    click.option("--ray-address", metavar="ADDR", envvar="RAY_ADDRESS",
                 help="Ray cluster to join (auto, HOST:PORT, ray://HOST:PORT) [default: start a local Ray]."),
    click.option("--shard", metavar="K/N", help="Process only shard K of N (job arrays); join with `merge`."),
    click.option("--resume", is_flag=True, help="Continue an interrupted run in the same output."),
    click.option("--force", is_flag=True, help="Discard earlier results or an unfinished run and start over."),
    click.option("-v", "--verbose", count=True, help="More log output."),
    click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bar."),
    click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), help="Also log to this file."),
    click.option("--block-records", type=click.IntRange(1, MAX_BLOCK_RECORDS), default=16_384, hidden=True,
                 help="Records per block (unit of checkpointing); for tests."),
]


def run_options(command: Callable) -> Callable:
    """Decorate a click command with the shared pipeline options."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def build_run_options(inputs, output: Path, params: dict, **extra):
    """RunOptions from the parsed shared options (heavy imports happen here, not at --help)."""
    from virnucpro.console import stderr_is_terminal
    from virnucpro.engine.encoders import ModelChoice
    from virnucpro.pipeline.options import RunOptions
    from virnucpro.pipeline.shards import parse_shard

    if params["resume"] and params["force"]:
        raise OptionConflictError("--resume continues the run in the output, --force discards it: use one of them")
    if extra.get("paired") or extra.get("interleaved"):  # first: `--paired - -` is a usage error
        from virnucpro.io.pairs import check_pairing

        check_pairing(list(inputs), extra.get("paired", False), extra.get("interleaved", False))
    check_inputs(inputs)
    if params["engine"] == "ray":  # RAY_ADDRESS may be set for other tools when the engine is local
        check_ray_address(params["ray_address"])
    models = ModelChoice(esm=params["esm"], dnabert=params["dnabert"], classifier=params["classifier"],
                         model_type=int(params["model_type"]), models_dir=params["models_dir"],
                         with_classifier=not extra.get("embed_only", False))
    return RunOptions(
        inputs=list(inputs), output=output, models=models, chunk_size=params["chunk_size"],
        chunking=params["chunking"], device=params["device"], batch_tokens=params["batch_tokens"],
        precision=params["precision"], threads=params["threads"], resume=params["resume"],
        force=params["force"], block_records=params["block_records"], gpus=params["gpus"],
        workers=params["workers"], shard=parse_shard(params["shard"]) if params["shard"] else None,
        engine=params["engine"], ray_address=params["ray_address"], offline=params["offline"],
        live_progress=stderr_is_terminal() and not params["quiet"], **extra,
    )


def start_logging(params: dict):
    from virnucpro.console import setup_logging

    return setup_logging(-1 if params["quiet"] else params["verbose"], params["log_file"])
