"""`virnucpro --version`: the versions a bug report needs and where models are looked for."""

from __future__ import annotations

import os
import platform

import click

from virnucpro import __version__


def version_lines() -> list[str]:
    """virnucpro, Python, torch and its CUDA, and the model search order (nothing is read or hashed)."""
    import torch

    from virnucpro.models.registry import MODELS_ENV, default_models_dir, hf_cache_dir

    if torch.version.cuda is None:
        cuda = "CPU-only build"
    else:
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        cuda = f"CUDA {torch.version.cuda} build, {gpus} GPU(s) visible"
    places = []
    chosen = os.environ.get(MODELS_ENV)
    if chosen:
        missing = "" if os.path.isdir(os.path.expanduser(chosen)) else ", does not exist"
        places.append(f"{os.path.expanduser(chosen)} ({MODELS_ENV}{missing})")
    places += [str(default_models_dir()), f"{hf_cache_dir()} (Hugging Face cache)"]
    return [
        f"virnucpro {__version__}",
        f"python {platform.python_version()}, torch {torch.__version__} ({cuda})",
        f"models looked for in: {', then '.join(places)}",
    ]


def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo("\n".join(version_lines()))
    ctx.exit()
