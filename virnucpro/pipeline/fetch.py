"""Fetch the published models on first use, so `virnucpro predict` runs straight after install.

A run needs DNABERT-S, ESM-2 3B and one classifier. Those the user did not name (or named by
their published hub id) and that are not found locally (models directory, default cache, HF
cache: models/registry.py) are downloaded through the same code as `virnucpro download`, into
the user's models directory or the default one, before the run writes anything. Offline
(`--offline` or HF_HUB_OFFLINE=1) nothing touches the network: a miss says how to bring models in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

from virnucpro.models.registry import (
    ENCODERS,
    ModelNotFoundError,
    default_models_dir,
    find_model,
    user_models_dir,
)
from virnucpro.pipeline.download import OFFLINE_ROUTE, ProgressFactory, and_list, download_models, plan_download

if TYPE_CHECKING:
    from virnucpro.engine.encoders import ModelChoice


def fetch_missing_models(choice: ModelChoice, offline: bool, live_progress: bool, logger: logging.Logger) -> None:
    """What a run calls after its input and options are checked and before it writes anything."""
    with rich_progress() if live_progress else nullcontext() as progress:
        ensure_models(choice, offline=offline, announce=logger.info, progress=progress)


def missing_published(choice: ModelChoice) -> list[str]:
    """The kinds ("dnabert", "esm2", "classifier") of published models this run needs and lacks."""
    named = {"dnabert": choice.dnabert, "esm2": choice.esm}
    if choice.with_classifier:  # `embed` needs only the encoders
        named["classifier"] = choice.classifier
    missing = []
    for kind, name in named.items():
        published = name is None or (kind in ENCODERS and name == ENCODERS[kind].repo_id)
        if not published:
            continue  # the user's own model: a miss is the loader's one-line error, never a download
        try:
            find_model(kind, name, choice.model_type, models_dir=choice.models_dir)
        except ModelNotFoundError:
            missing.append(kind)
    return missing


def ensure_models(
    choice: ModelChoice,
    *,
    offline: bool,
    announce: Callable[[str], None],
    progress: ProgressFactory | None = None,
) -> None:
    """Download the published models the run lacks (one line first: what, how big, where)."""
    missing = missing_published(choice)
    if not missing:
        return
    if offline or _hub_offline():
        raise ModelNotFoundError(_offline_message(choice, missing))
    target = user_models_dir(choice.models_dir) or default_models_dir()
    encoders = tuple(kind for kind in ENCODERS if kind in missing)
    model_types = (choice.model_type,) if "classifier" in missing else ()
    plan = plan_download(target, model_types, encoders)
    announce(f"first run: {plan.describe()}; later runs use them without network")
    download_models(target, model_types, progress=progress, plan=plan, announce=announce)


def _offline_message(choice: ModelChoice, missing: list[str]) -> str:
    labels = [ENCODERS[kind].label if kind in ENCODERS else f"the {choice.model_type}-bp classifier"
              for kind in missing]
    where = user_models_dir(choice.models_dir) or default_models_dir()
    return (f"{and_list(labels)} not found in {where} or the Hugging Face cache, and offline mode"
            f" (--offline or HF_HUB_OFFLINE) downloads nothing; {OFFLINE_ROUTE}")


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


@contextmanager
def rich_progress():
    """A progress factory drawing one rich bar per file on stderr; a retried file reuses its bar."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    tasks: dict[str, int] = {}
    with Progress(*columns, console=Console(stderr=True), transient=False) as bars:

        def start(name: str, total: int | None):
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=total)
            bars.reset(tasks[name], total=total)
            return lambda n_bytes: bars.advance(tasks[name], n_bytes)

        yield start
