"""`python -m virnucpro.devtools random-models OUTDIR --size tiny|full [--seed N]`."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def devtools() -> None:
    """Developer tools (random-weight models for tests and benchmarks)."""


@devtools.command("random-models")
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", type=click.Choice(["tiny", "full"]), default="tiny", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def random_models(outdir: Path, size: str, seed: int) -> None:
    """Write OUTDIR/esm2/, OUTDIR/dnabert-s/, OUTDIR/classifier.pth and OUTDIR/classifier.safetensors."""
    from virnucpro.devtools.random_models import write_random_models

    write_random_models(outdir, size=size, seed=seed)
    click.echo(f"wrote random {size} models to {outdir}")


if __name__ == "__main__":
    sys.exit(devtools())
