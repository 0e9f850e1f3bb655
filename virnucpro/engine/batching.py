"""Token-budget batching: sort items by length and cut them into batches close to a token budget.

Packed batches spend no compute on padding, but sorting still matters: attention cost grows with
length, so a batch of similar lengths wastes nothing on the longest item's tail. The caller passes
everything to sort together (a block's distinct inputs of one encoder); every batch keeps each
item's input index so results can be put back in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")

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
) -> Iterator[Batch[Item]]:
    """Yield batches of <= max_tokens tokens, shortest items first (an item longer than the budget
    goes alone)."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    items = list(items)
    lengths = [length(item) for item in items]
    picked: list[int] = []
    tokens = 0
    for i in sorted(range(len(items)), key=lengths.__getitem__):
        if picked and tokens + lengths[i] > max_tokens:
            yield Batch(picked, [items[j] for j in picked], tokens)
            picked, tokens = [], 0
        picked.append(i)
        tokens += lengths[i]
    if picked:
        yield Batch(picked, [items[j] for j in picked], tokens)


def auto_token_budget(free_bytes: int, bytes_per_token: int, headroom: float = 0.5) -> int:
    """Largest budget whose activations fit in `headroom` of free device memory, power of two."""
    fit = int(free_bytes * headroom) // max(bytes_per_token, 1)
    budget = _MIN_AUTO_TOKENS
    while budget * 2 <= min(fit, _MAX_AUTO_TOKENS):
        budget *= 2
    return budget
