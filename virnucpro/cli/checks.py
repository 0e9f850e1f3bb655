"""Option types and input checks that refuse what no run can use, before anything starts.

click's FloatRange lets NaN through (every comparison with NaN is false) and an IntRange without
a maximum accepts 10**30; both end deep in the run as a traceback or a crash, so every numeric
option gets a finite type and an upper bound here.
"""

from __future__ import annotations

import math
import re
import sys

import click

from virnucpro.errors import VirnucproError

STDIN = "-"
MAX_CHUNK_SIZE = 100_000  # published models: 300 and 500; longer chunks are allowed, absurd ones are not
MAX_BATCH_TOKENS = 1 << 20  # 16x the measured GPU sweet spot; beyond it a batch no longer fits any GPU
MAX_BLOCK_RECORDS = 1 << 24


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses NaN and infinities."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def chunk_size_type(minimum: int) -> click.IntRange:
    return click.IntRange(minimum, MAX_CHUNK_SIZE)


def check_inputs(inputs: tuple[str, ...] | list[str]) -> None:
    """Standard input may be named once, and only when it is open."""
    if list(inputs).count(STDIN) > 1:
        raise VirnucproError("'-' (standard input) is given more than once; stdin can be read only once")
    if STDIN in inputs and _stdin_closed():
        raise VirnucproError("'-' reads standard input, but stdin is closed; pipe the sequences in or give a file")


def _stdin_closed() -> bool:
    stream = sys.stdin
    return stream is None or getattr(stream, "closed", False)


class DeviceName(click.ParamType):
    """cpu, cuda or cuda:N; other torch device types (meta, mps, xla...) cannot run the models."""

    name = "device"

    def convert(self, value, param, ctx):
        if not re.fullmatch(r"cpu|cuda(:\d{1,4})?", str(value)):
            self.fail(f"{value!r}: use cpu, cuda or cuda:N", param, ctx)
        return str(value)


_RAY_ADDRESS = re.compile(r"auto|local|(ray://)?(\[[0-9a-fA-F:.]+\]|[\w.\-]+):\d{1,5}")


def check_ray_address(address: str | None) -> None:
    """Ray turns an address it cannot parse (`nonsense://x`) into a RuntimeError deep in ray.init."""
    if address is not None and not _RAY_ADDRESS.fullmatch(address.strip()):
        raise VirnucproError(f"--ray-address {address!r}: use auto, HOST:PORT or ray://HOST:PORT")
