"""Logging for the commands: timestamped lines on stderr (rich on a terminal) and an optional log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "virnucpro"
_FILE_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging(verbosity: int = 0, log_file: str | Path | None = None) -> logging.Logger:
    """verbosity: -2 errors only, -1 warnings, 0 normal, 1+ debug. Returns the package logger."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR)
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(_console_handler(level))
    if log_file is not None:
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter(_FILE_FORMAT))
        logger.addHandler(file_handler)
    return logger


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


_stderr_console = None


def stderr_console():
    """The one rich Console on stderr: log lines and the progress bar share it, so a log line
    printed while the bar is live goes above the bar instead of through it."""
    global _stderr_console
    from rich.console import Console

    if _stderr_console is None:  # it writes to whatever sys.stderr is at the time
        _stderr_console = Console(stderr=True)
    return _stderr_console


def _console_handler(level: int) -> logging.Handler:
    if stderr_is_terminal():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=stderr_console(), show_path=False, markup=False,
                                               log_time_format="[%X]")
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.setLevel(level)
    return handler
