"""The `virnucpro` command group and its error policy.

Subcommands live in their own modules and are imported lazily, so `virnucpro --help` and light
commands never pay for importing torch. User errors print one line and exit 1, usage errors exit 2,
Ctrl-C exits 130 and SIGTERM 143 (both unwind like an error, so a run keeps its resume journal;
cli/interrupts.py); a traceback is shown only with `--debug`. The process ends without the
interpreter's finalization once its outputs are closed (cli/process_exit.py).
"""

from __future__ import annotations

import importlib
import sys

import click

from virnucpro.cli.interrupts import Interrupted, SignalGuard
from virnucpro.cli.process_exit import finish_process
from virnucpro.cli.version_info import show_version
from virnucpro.errors import VirnucproError

# name -> "module:attribute"; every entry is a click.Command in its own module.
SUBCOMMANDS: dict[str, str] = {
    "frames": "virnucpro.cli.frames_cmd:frames",
    "predict": "virnucpro.cli.predict_cmd:predict",
    "embed": "virnucpro.cli.embed_cmd:embed",
    "merge": "virnucpro.cli.merge_cmd:merge",
    "benchmark": "virnucpro.cli.benchmark_cmd:benchmark",
    "convert-classifier": "virnucpro.cli.convert_cmd:convert_classifier",
    "train": "virnucpro.cli.train_cmd:train",
    "plot": "virnucpro.cli.plot_cmd:plot",
    "download": "virnucpro.cli.download_cmd:download",
    "doctor": "virnucpro.cli.doctor_cmd:doctor",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


_debug = False
_RESUMABLE = ("predict", "embed")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True, callback=show_version,
              help="Show the version, torch/CUDA versions and where models are looked for, then exit.")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """Find viral sequences in reads and contigs (DNABERT-S + ESM-2 features, VirNucPro classifier)."""
    global _debug
    _debug = debug


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn exceptions into exit codes. `argv` None: this is the process (the
    `virnucpro` script, `python -m virnucpro`); a list: in-process (tests), which gets its own
    signal handlers back at the end."""
    global _debug
    args = argv if argv is not None else sys.argv[1:]
    _debug = "--debug" in args
    guard = SignalGuard(_interrupted_line(args))
    guard.install()
    interrupted = False
    try:
        try:
            code = _run(argv)
        finally:
            guard.settle()
    except (Interrupted, KeyboardInterrupt, click.exceptions.Abort):  # Abort: click's KeyboardInterrupt
        if _debug:
            raise
        interrupted = True
    if interrupted or guard.exit_code is not None:  # a signal decides, even if code on the way swallowed it
        code = guard.report()
    if argv is None:  # the process: end without finalizing the interpreter (cli/process_exit.py)
        finish_process(code)
    else:
        guard.restore()
    return code


def _run(argv: list[str] | None) -> int:
    try:
        returned = cli.main(args=argv, prog_name="virnucpro", standalone_mode=False)
    except click.exceptions.Exit as stop:
        return stop.exit_code
    except click.ClickException as usage:
        usage.show()
        return usage.exit_code
    except VirnucproError as error:
        if _debug:
            raise
        click.echo(f"virnucpro: error: {error}", err=True)
        return error.exit_code
    except OSError as error:
        if _debug:
            raise
        where = f": {error.filename}" if getattr(error, "filename", None) else ""
        click.echo(f"virnucpro: error: {error.strerror or error}{where}", err=True)
        return 1
    return returned if isinstance(returned, int) else 0  # without standalone mode, ctx.exit(n) returns n


def _interrupted_line(args: list[str]) -> str:
    """The one line an interrupted command prints: how to continue, where that is possible."""
    command = next((a for a in args if not a.startswith("-")), None)
    hint = "; rerun the same command with --resume to continue" if command in _RESUMABLE else ""
    return f"virnucpro: interrupted{hint}"


if __name__ == "__main__":
    sys.exit(main())
