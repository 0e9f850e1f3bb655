"""`virnucpro convert-classifier`: a published pickled `.pth` -> our safetensors format."""

from __future__ import annotations

from pathlib import Path

import click

from virnucpro.cli.checks import chunk_size_type


@click.command("convert-classifier")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .safetensors file to write (written beside, then renamed).")
@click.option("--chunk-size", type=chunk_size_type(1), default=None,
              help="Chunk length the classifier was trained for (300 or 500 for the published ones); "
                   "recorded in the metadata.")
def convert_classifier(source: Path, output: Path, chunk_size: int | None) -> None:
    """Convert SOURCE (a VirNucPro .pth, read without running code from it) to safetensors.

    The weights are copied unchanged; the metadata records the dimensions, the chunk size and
    the source file's name and SHA-256.
    """
    from virnucpro.errors import VirnucproError
    from virnucpro.models.classifier import convert_classifier as convert

    if not output.parent.is_dir():
        raise VirnucproError(f"{output.parent}: output directory does not exist")
    info = convert(source, output, chunk_size)
    click.echo(f"wrote {output} (input_dim {info.input_dim}, hidden {info.hidden}, "
               f"chunk size {info.chunk_size or 'not recorded'}, from {info.source_name} sha256 "
               f"{(info.source_sha256 or '?')[:12]})", err=True)
