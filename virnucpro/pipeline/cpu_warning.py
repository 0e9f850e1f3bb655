"""One warning when `--device auto` found no GPU and a full-size ESM-2 is about to run on the CPU.

Without it a 3B-parameter run on a laptop looks like a hang that lasts days. The estimate is a
FLOP count, not a measurement: ESM-2 costs 2 x parameters FLOPs per token, the kept frames give
about one protein token per input base (six frames of a third of a token per base, about half of
them stop-free), and a CPU thread sustains about 25 GFLOP/s of fp32 matrix products.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

FULL_SIZE_PARAMETERS = 500_000_000  # ESM-2 650M and 3B; the 8M-150M models and test models run fine on a CPU
CPU_FLOPS_PER_THREAD = 25e9
PROTEIN_TOKENS_PER_BASE = 1.0
_COMPRESSION_RATIO = 4.0  # gzip/bz2/xz/zstd on sequence text
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
_FASTQ = (".fq", ".fastq")


def warn_if_slow_on_cpu(requested_device: str, device: torch.device, parameters: int,
                        inputs: list[str], threads: int, logger: logging.Logger) -> bool:
    """Warn (and return True) when the CPU was chosen for lack of a GPU and ESM-2 (`parameters`
    weights) is full size."""
    if requested_device != "auto" or device.type != "cpu":
        return False
    if parameters < FULL_SIZE_PARAMETERS:
        return False
    bases = estimated_bases(inputs)
    seconds = bases * PROTEIN_TOKENS_PER_BASE * 2 * parameters / (CPU_FLOPS_PER_THREAD * max(threads, 1))
    when = f"roughly {_duration(seconds)} for ~{bases:,.0f} bases" if bases else "a long time"
    logger.warning("no GPU found: running ESM-2 (%.1fB parameters) on %d CPU thread(s) will take %s; "
                   "use a GPU machine, or --device cpu to silence this", parameters / 1e9, threads, when)
    return True


def estimated_bases(inputs: list[str]) -> float:
    """Bases in the input files judged from their sizes (stdin counts as unknown, 0)."""
    total = 0.0
    for name in inputs:
        path = Path(name)
        if name == "-" or not path.is_file():
            continue
        size = float(path.stat().st_size)
        suffixes = [s.lower() for s in path.suffixes]
        if suffixes and suffixes[-1] in _COMPRESSED:
            size *= _COMPRESSION_RATIO
            suffixes.pop()
        total += size / 2 if suffixes and suffixes[-1] in _FASTQ else size  # FASTQ: half is qualities
    return total


def _duration(seconds: float) -> str:
    for unit, length in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= length:
            return f"{seconds / length:.1f} {unit}"
    return f"{seconds:.0f} s"
