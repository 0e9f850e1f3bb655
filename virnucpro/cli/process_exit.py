"""How the `virnucpro` process ends: without the interpreter's finalization, once every output is
written and closed.

After a finished run, finalizing the interpreter took 6-7 s on a GPU (issue #20): tearing down
thousands of modules, torch's atexit work (Inductor's compile-worker pool, the CUDA context and
its memory) - work whose only effect is on a process that is about to disappear. By the time
`main` returns, every output file was closed by its `with` block (renamed into place, journals
saved), our threads are joined (engine/threads.py), and Ray is shut down; what is left to make
durable is the logs and the standard streams, flushed here. A failed flush of stdout (a full disk
under `> file`) still fails the exit code, as the interpreter's own finalization would (120).
"""

from __future__ import annotations

import logging
import sys

from virnucpro.cli.interrupts import end_process

FLUSH_FAILED_EXIT_CODE = 120  # what CPython exits with when flushing stdout fails at finalization


def finish_process(exit_code: int) -> None:
    """Flush and close the logs and the standard streams, then end the process with `exit_code`
    (or 120 if stdout could not be flushed after a success)."""
    logging.shutdown()  # flushes and closes every handler (--log-file)
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as error:
        if exit_code == 0:
            exit_code = FLUSH_FAILED_EXIT_CODE
            _tell(f"virnucpro: error: writing the output failed: {error}")
    end_process(exit_code)


def _tell(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
