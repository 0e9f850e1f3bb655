"""`virnucpro train`: fit the classifier on labelled embeddings from `virnucpro embed`."""

from __future__ import annotations

from pathlib import Path

import click

from virnucpro.cli.checks import MAX_BATCH_TOKENS, DeviceName, FiniteFloatRange, chunk_size_type

_PARQUET = click.Path(dir_okay=False, path_type=Path)


@click.command("train")
@click.argument("inputs", nargs=-1, type=_PARQUET, metavar="[EMBEDDINGS.parquet...]")
@click.option("--labels", "label_tsv", type=_PARQUET,
              help="TSV of id<TAB>label (virus/others or 1/0) for the positional files; an id may "
                   "be a frame, chunk or sequence id.")
@click.option("--virus", "virus_files", multiple=True, type=_PARQUET,
              help="Embeddings whose frames are all viral (repeatable).")
@click.option("--others", "others_files", multiple=True, type=_PARQUET,
              help="Embeddings whose frames are all non-viral (repeatable).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Classifier to write (.safetensors).")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Metrics JSON to write [default: OUTPUT with suffix .metrics.json].")
@click.option("--epochs", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="Upper bound; early stopping usually ends sooner.")
@click.option("--lr", type=FiniteFloatRange(0, 1, min_open=True), default=2e-4, show_default=True)
@click.option("--batch-size", type=click.IntRange(2, MAX_BATCH_TOKENS), default=32, show_default=True)
@click.option("--patience", type=click.IntRange(1, 100_000), default=5, show_default=True,
              help="Stop after this many epochs without a lower validation loss.")
@click.option("--val-fraction", type=FiniteFloatRange(0, 1, min_open=True, max_open=True), default=0.1,
              show_default=True, help="Share of the labelled frames held out for early stopping and metrics.")
@click.option("--split-by", type=click.Choice(["frame", "sequence"]), default="frame", show_default=True,
              help="frame: random frames (the original); sequence: all frames of a sequence on one side.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--chunk-size", type=chunk_size_type(1), default=None,
              help="Chunk length the embeddings were made with; recorded in the model's metadata.")
@click.option("--device", type=DeviceName(), default="cpu", show_default=True, help="torch device, e.g. cpu or cuda:0.")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors (no per-epoch lines).")
def train(inputs, label_tsv, virus_files, others_files, output, metrics_path, epochs, lr, batch_size,
          patience, val_fraction, split_by, seed, chunk_size, device, verbose, quiet) -> None:
    """Train a classifier on embeddings (parquet from `virnucpro embed`) with the original recipe.

    Labels come from --labels for the positional files, or per file with --virus/--others.
    Prints accuracy, precision, recall, F1 and AUROC on the held-out split.
    """
    from virnucpro.console import setup_logging
    from virnucpro.pipeline.train import TrainConfig, read_label_table, train_classifier

    if inputs and label_tsv is None:
        raise click.UsageError("positional embedding files need --labels (or use --virus/--others)")
    if not (inputs or virus_files or others_files):
        raise click.UsageError("give embedding files: positional with --labels, or --virus/--others")
    setup_logging(-1 if quiet else verbose)
    sources = [(path, None) for path in inputs]
    sources += [(path, 1) for path in virus_files] + [(path, 0) for path in others_files]
    table = read_label_table(label_tsv) if label_tsv is not None else None
    config = TrainConfig(epochs=epochs, learning_rate=lr, batch_size=batch_size, patience=patience,
                         val_fraction=val_fraction, split_by=split_by, seed=seed, device=device)
    result = train_classifier(sources, table, output, config, chunk_size=chunk_size, metrics_path=metrics_path)
    click.echo(_format_metrics(result.metrics, result.best_epoch), err=True)
    click.echo(f"wrote {output}", err=True)


def _format_metrics(metrics: dict, best_epoch: int) -> str:
    shown = [f"{name} {metrics[name]:.4f}" if metrics[name] is not None else f"{name} n/a"
             for name in ("accuracy", "precision", "recall", "f1", "auroc")]
    return f"validation ({metrics['n']} frames, best epoch {best_epoch}): " + ", ".join(shown)
