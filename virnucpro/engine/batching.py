"""Token-budget batching: group items of similar length so each batch is close to a token budget.

Packed batches spend no compute on padding, but sorting still matters: attention cost grows with
length and the fixed-size compiled path pads every batch up to the budget. Items are read in
windows of upcoming items (bounded memory on streams), sorted by length inside a window, and cut
into batches of at most `max_tokens` tokens. Every batch keeps each item's input index so results
can be put back in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Generic, TypeVar

Item = TypeVar("Item")

DEFAULT_WINDOW = 65_536  # items sorted together; ~a few MB of proteins
_MIN_AUTO_TOKENS = 4_096
_MAX_AUTO_TOKENS = 262_144  # past this, batches stop getting faster and latency only grows


@dataclass(frozen=True)
class Batch(Generic[Item]):
    indices: list[int]  # input position of each item
    items: list[Item]
    num_tokens: int


def token_budget_batches(
    items: Iterable[Item],
    length: Callable[[Item], int],
    max_tokens: int,
    window: int = DEFAULT_WINDOW,
) -> Iterator[Batch[Item]]:
    """Yield batches of <= max_tokens tokens (an item longer than the budget goes alone)."""
    if max_tokens < 1 or window < 1:
        raise ValueError("max_tokens and window must be positive")
    iterator = iter(items)
    start = 0
    while chunk := list(islice(iterator, window)):
        lengths = [length(item) for item in chunk]
        order = sorted(range(len(chunk)), key=lengths.__getitem__)
        yield from _cut(order, chunk, lengths, start, max_tokens)
        start += len(chunk)


def _cut(order, chunk, lengths, start: int, max_tokens: int) -> Iterator[Batch]:
    picked: list[int] = []
    tokens = 0
    for i in order:
        if picked and tokens + lengths[i] > max_tokens:
            yield Batch([start + j for j in picked], [chunk[j] for j in picked], tokens)
            picked, tokens = [], 0
        picked.append(i)
        tokens += lengths[i]
    if picked:
        yield Batch([start + j for j in picked], [chunk[j] for j in picked], tokens)


def auto_token_budget(free_bytes: int, bytes_per_token: int, headroom: float = 0.5) -> int:
    """Largest budget whose activations fit in `headroom` of free device memory, power of two."""
    fit = int(free_bytes * headroom) // max(bytes_per_token, 1)
    budget = _MIN_AUTO_TOKENS
    while budget * 2 <= min(fit, _MAX_AUTO_TOKENS):
        budget *= 2
    return budget
