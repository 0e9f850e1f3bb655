"""`virnucpro download`: fetch DNABERT-S, ESM-2 3B and the published classifiers into a models directory."""

from __future__ import annotations

from pathlib import Path

import click

_MODEL_TYPES = {"300": (300,), "500": (500,), "all": (300, 500)}


@click.command("download")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Models directory to fill (default: $VIRNUCPRO_MODELS, else ~/.cache/virnucpro/models).",
)
@click.option(
    "--model-type",
    type=click.Choice(sorted(_MODEL_TYPES)),
    default="all",
    show_default=True,
    help="Which published classifiers to fetch (300-bp and/or 500-bp chunk models).",
)
def download(directory: Path | None, model_type: str) -> None:
    """Download the models once; copy the directory to offline machines and set VIRNUCPRO_MODELS."""
    from virnucpro.pipeline.download import download_models, download_target, plan_download
    from virnucpro.pipeline.fetch import rich_progress

    target = download_target(directory)
    plan = plan_download(target, _MODEL_TYPES[model_type])
    click.echo(plan.describe(), err=True)
    with rich_progress() as progress:
        fetched = download_models(target, _MODEL_TYPES[model_type], progress=progress, plan=plan,
                                  announce=lambda line: click.echo(line, err=True))
    for item in fetched:
        click.echo(f"{item.action:>10}  {item.size:>14,d}  {item.relative}")
    click.echo(f"ready: use it offline with --models-dir {target} or VIRNUCPRO_MODELS={target}", err=True)
