"""`virnucpro doctor`: check software, GPUs, attention kernels, models and disk; exit 1 if not ready."""

from __future__ import annotations

import json
from pathlib import Path

import click

from virnucpro.errors import VirnucproError


class NotReady(VirnucproError):
    """Doctor found something that stops predictions from running."""


@click.command("doctor")
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Models directory to check first (default: $VIRNUCPRO_MODELS, then ~/.cache/virnucpro/models).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(models_dir: Path | None, as_json: bool) -> None:
    """Report what this machine has for virnucpro and what is missing, with advice."""
    from virnucpro.doctor import collect_report, format_report

    click.echo("doctor: checking (model sha256 is computed once per file, then remembered)", err=True)
    report = collect_report(models_dir)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))
    if not report["ok"]:
        errors = sum(problem["severity"] == "error" for problem in report["problems"])
        raise NotReady(f"not ready: {errors} problem(s) listed above need fixing")
