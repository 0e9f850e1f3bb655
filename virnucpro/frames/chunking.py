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
    if chunk_size < 1:
        raise ValueError(f"chunk size must be >= 1, got {chunk_size}")
    if mode not in CHUNKING_MODES:
        raise ValueError(f"chunking mode must be one of {CHUNKING_MODES}, got {mode!r}")
    if length <= 0:
        return []
    if length <= chunk_size:
        return [(0, length)]
    if mode == "legacy":
        return _legacy_bounds(length, chunk_size)
    return _even_bounds(length, chunk_size)


def _even_bounds(length: int, chunk_size: int) -> list[tuple[int, int]]:
    """Starts floor(i * (L - size) / (n - 1)): exact integer spacing, first 0, last L - size."""
    n = -(-length // chunk_size)
    slack = length - chunk_size
    return [(i * slack // (n - 1), i * slack // (n - 1) + chunk_size) for i in range(n)]


def _legacy_bounds(length: int, chunk_size: int) -> list[tuple[int, int]]:
    """The original rule (reference section 1): the overlap R is divided by n instead of n - 1.

    So for some lengths the shifts do not add up to R and the last chunk is short
    (L=1001, size 500 -> [0,500) [333,833) [666,1001)). Kept for byte-identical reproduction.
    """
    n = -(-length // chunk_size)
    overlap = n * chunk_size - length
    low = overlap // n
    need = overlap - (n - 1) * low
    shifts = [low + 1] * need + [low] * max(0, n - 1 - need) + [0]
    bounds = []
    shifted = 0
    for i in range(n):
        start = i * chunk_size - shifted
        bounds.append((start, min(start + chunk_size, length)))
        shifted += shifts[i]
    return bounds
