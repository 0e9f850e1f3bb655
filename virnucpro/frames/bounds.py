"""Where a record is cut into chunks of the model's expected length (300 or 500 bp)."""

from __future__ import annotations

CHUNKING_MODES = ("even", "legacy")


def chunk_bounds(length: int, chunk_size: int, mode: str = "even") -> list[tuple[int, int]]:
    """Half-open [start, end) chunk boundaries for a record of `length` bases.

    A record no longer than `chunk_size` is one chunk (no padding); an empty record has none
    (the original crashes on it). `even` cuts ceil(L/size) chunks of exactly `chunk_size`, the
    first at 0 and the last ending at L, with the overlap spread evenly (overlaps differ by at
    most one base). `legacy` reproduces the original's rule byte for byte, defect included.
    """
    return chunk_bounds_range(length, chunk_size, mode, 0, max(length, 0))  # never more chunks than bases


def chunk_count(length: int, chunk_size: int) -> int:
    """How many chunks a record of `length` bases has (in both modes)."""
    return -(-max(length, 0) // chunk_size)


def chunk_bounds_range(length: int, chunk_size: int, mode: str, first: int, stop: int) -> list[tuple[int, int]]:
    """`chunk_bounds(length, chunk_size, mode)[first:stop]`, computed without the other chunks,
    so a long record's boundaries can be taken a window at a time in bounded memory."""
    if chunk_size < 1:
        raise ValueError(f"chunk size must be >= 1, got {chunk_size}")
    if mode not in CHUNKING_MODES:
        raise ValueError(f"chunking mode must be one of {CHUNKING_MODES}, got {mode!r}")
    n = chunk_count(length, chunk_size)
    numbers = range(max(first, 0), min(stop, n))
    if n == 1:
        return [(0, length)] if numbers else []
    if mode == "legacy":
        return [_legacy_bound(i, n, length, chunk_size) for i in numbers]
    slack = length - chunk_size  # even: starts floor(i * (L - size) / (n - 1)), first 0, last L - size
    return [(i * slack // (n - 1), i * slack // (n - 1) + chunk_size) for i in numbers]


def _legacy_bound(i: int, n: int, length: int, chunk_size: int) -> tuple[int, int]:
    """The original rule (reference section 1): the overlap R is divided by n instead of n - 1.

    Chunk i starts at i * size minus the shifts before it, shifts being [low + 1] * need + [low] *
    (n - 1 - need); so for some lengths the shifts do not add up to R and the last chunk is short
    (L=1001, size 500 -> [0,500) [333,833) [666,1001)). Kept for byte-identical reproduction.
    """
    overlap = n * chunk_size - length
    low = overlap // n
    need = overlap - (n - 1) * low
    start = i * chunk_size - i * low - min(i, need)
    return start, min(start + chunk_size, length)
