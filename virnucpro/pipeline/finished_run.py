"""`--resume` where nothing is left to run: the finished output checked WITHOUT loading the models.

A finished run or study resumed has nothing to stream, and loading the models costs seconds on a
CPU and ~15 s on a GPU. So the output is checked as far as it can be without them: a single run's
run.json must be of the same inputs and read layout; a study's study.json of the same sheet and
shard, and every finished sample's files must still have the sha256 recorded when it finished (as
a resume checks them). Then predict exits 0 with one line; anything wrong is a one-line refusal.
run.json and study.json are untrusted input.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from virnucpro.errors import ResumeError
from virnucpro.fsutil.untrusted import Invalid, digests, load_json_object, of_type
from virnucpro.io.samplesheet import SAFE_NAME
from virnucpro.outputs.paths import OutputPaths
from virnucpro.pipeline.options import RunOptions
from virnucpro.pipeline.run_changes import read_layout
from virnucpro.pipeline.study_state import StudyState


def check_finished_run(options: RunOptions) -> str:
    """The line to print for a finished predict run resumed; refuses one of other inputs."""
    path = OutputPaths(Path(options.output)).run_json
    summary = _load(path, "run.json", {"command", "inputs", "parameters"})
    try:
        if summary["command"] != "predict":
            raise Invalid("it is not a predict run's")
        ran = [PurePath(of_type(name, str, "an input")).name for name in of_type(summary["inputs"], list, "inputs")]
        pairs = of_type(summary["parameters"], dict, "parameters").get("pairs")
    except Invalid as error:
        raise _unreadable(path, "run.json", error) from None
    given = [PurePath(name).name for name in options.inputs]
    if ran != given:
        raise ResumeError(f"cannot resume: {options.output} holds a finished run of {', '.join(ran)}, not of"
                          f" {', '.join(given)}; use --force to redo it with these inputs")
    if pairs != options.pairs:
        raise ResumeError(f"cannot resume: {options.output} holds a finished run; it was {read_layout(pairs)} and"
                          f" this one is {read_layout(options.pairs)}; use --force to redo it")
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
