"""`--resume` where nothing is left to run: the finished output checked WITHOUT loading the models.

A finished run or study resumed has nothing to stream, and loading the models costs seconds on a
CPU and ~15 s on a GPU. So the output is checked as far as it can be without them: a single run's
run.json must be of the same inputs and read layout; a study's study.json of the same sheet and
shard, and every finished sample's files must still have the sha256 recorded when it finished (as
a resume checks them). Then predict exits 0 with one line; anything wrong is a one-line refusal.
run.json and study.json are untrusted input.
"""

from __future__ import annotations

from pathlib import Path

import torch

from virnucpro.engine.devices import resolve_batch_tokens
from virnucpro.engine.encoders import model_paths
from virnucpro.errors import ResumeError
from virnucpro.fsutil.untrusted import Invalid, digests, load_json_object, of_type
from virnucpro.io.samplesheet import SAFE_NAME
from virnucpro.outputs.paths import OutputPaths
from virnucpro.pipeline.options import RunOptions
from virnucpro.pipeline.journal import input_identity
from virnucpro.pipeline.run_changes import describe_changes
from virnucpro.pipeline.run_changes import summary as summary_of
from virnucpro.pipeline.run_state import run_parameters
from virnucpro.pipeline.study_state import StudyState


def check_finished_run(options: RunOptions, dtype: torch.dtype, device: torch.device) -> str:
    """The line to print for a finished predict run resumed. It must be this command's run: the
    same inputs (size, modification time, first MiB), the same parameters and the same model paths
    (the model files' content is not hashed here: that is what loading them would cost); anything
    else is refused, naming what changed, as a resume would."""
    path = OutputPaths(Path(options.output)).run_json
    summary = _load(path, "run.json", {"command", "input_files", "parameters", "models"})
    try:
        if summary["command"] != "predict":
            raise Invalid("it is not a predict run's")
        recorded = of_type(summary["parameters"], dict, "parameters")
        models = of_type(summary["models"], dict, "models")
        inputs = of_type(summary["input_files"], list, "input_files")
        if not inputs:
            raise Invalid("it does not record its input files (an earlier version's, or a merge's)")
    except Invalid as error:
        raise _unreadable(path, "run.json", error) from None
    settings = options.block_settings(resolve_batch_tokens(options.batch_tokens, device))  # as the engine would
    now = run_parameters(options, settings, dtype, device)
    ran_with = {kind: {"path": entry.get("path")} for kind, entry in models.items() if isinstance(entry, dict)}
    asked = {kind: {"path": str(path.resolve())} for kind, path in model_paths(options.models).items()}
    changes = describe_changes(inputs, recorded | {"models": ran_with}, input_identity(options.inputs),
                               now | {"models": asked})
    if changes:
        raise ResumeError(f"cannot resume {options.output}: it holds a finished run and {summary_of(changes)};"
                          " use --force to redo it")
    return f"{options.output} holds a finished run: already complete, nothing to resume (models not loaded)"


def check_finished_study(state: StudyState) -> str:
    """The line to print for a finished study resumed, once every finished sample's files are verified."""
    path = state.paths.study_json
    summary = _load(path, "study.json", {"sheet_sha256", "shard", "samples"})
    if summary["sheet_sha256"] != state.sheet_sha256:
        raise ResumeError(f"cannot resume the study in {state.paths.outdir}: it ran from another sheet (its sha256"
                          " differs); give the sheet it ran with, or use --force to start over")
    if summary["shard"] != (list(state.shard) if state.shard else None):
        raise ResumeError(f"cannot resume the study in {state.paths.outdir}: --shard was {summary['shard']}, now"
                          f" {list(state.shard) if state.shard else None}; give the shard it ran, or use --force")
    try:
        finished = _finished_samples(summary["samples"], set(state.samples))
    except Invalid as error:
        raise _unreadable(path, "study.json", error) from None
    for name, files in finished.items():
        state.verify_done(name, files)
    return (f"the study in {state.paths.outdir} is already complete ({len(finished)} samples verified): nothing to"
            " resume (models not loaded)")


def _finished_samples(entries, names: set[str]) -> dict[str, dict[str, str]]:
    owned = {path.name for path in OutputPaths(Path("/")).owned_files()}
    finished = {}
    for entry in of_type(entries, list, "samples"):
        entry = of_type(entry, dict, "a sample")
        name, files = entry.get("name"), entry.get("files")
        if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or name not in names:
            raise Invalid("a sample name is not one of the sheet's")
        if entry.get("status") == "done":
            files = digests(files, f"{name}.files", set(of_type(files, dict, f"{name}.files")))
            if not set(files) <= owned:
                raise Invalid(f"{name}.files names a file virnucpro does not write")
            finished[name] = files
    return finished


def _load(path: Path, what: str, required: set[str]) -> dict:
    try:
        data = load_json_object(path)
        missing = required - set(data)
        if missing:
            raise Invalid(f"it has no {', '.join(sorted(missing))}")
        return data
    except Invalid as error:
        raise _unreadable(path, what, error) from None
    except OSError as error:
        raise ResumeError(f"cannot resume: {path} cannot be read ({error.strerror}); use --force to redo it") from None


def _unreadable(path: Path, what: str, error: Invalid) -> ResumeError:
    return ResumeError(f"cannot resume: {path} is not a {what} virnucpro wrote ({error}); use --force to redo it")
