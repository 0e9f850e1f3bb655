"""All random-weight checkpoints in one directory, in the layouts the loaders read."""

from __future__ import annotations

from pathlib import Path


def write_random_models(outdir: Path, size: str = "tiny", seed: int = 0) -> None:
    """Write esm2/ (HF EsmModel dir), dnabert-s/ (published layout), classifier.pth/.safetensors."""
    from virnucpro.devtools.random_classifier import write_random_classifier
    from virnucpro.devtools.random_dnabert import write_random_dnabert
    from virnucpro.devtools.random_esm2 import write_random_esm2

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    esm_dim = write_random_esm2(outdir / "esm2", size=size, seed=seed)
    dnabert_dim = write_random_dnabert(outdir / "dnabert-s", size=size, seed=seed + 1)
    write_random_classifier(outdir, input_dim=dnabert_dim + esm_dim, seed=seed + 2)
