"""Bounding the work a pickle can cause, checked on its opcodes before anything is unpickled.

A pickle is a program: its memo lets one object be referenced many times, so a few kB can
describe a DAG whose expansion (hashing a nested tuple key, comparing, walking, printing) takes
exponential time and memory, and deep nesting overflows the C stack of those same operations.
The allow-list stops code from running, not this. Here the opcodes are replayed on an abstract
stack that only tracks, per object, its expanded size and nesting depth; a pickle beyond what a
real checkpoint needs (a few thousand tensors, shallow containers) is refused before loading.

Containers filled after being referenced (list/dict/set/BUILD mutations) are not re-counted in
their earlier parents; those objects are unhashable, and the one walker over them
(`safe_pickle.module_state_dict`) has its own visit budget.
"""

from __future__ import annotations

import pickle
import pickletools
from typing import BinaryIO

# Far above real checkpoints: ESM-2 15B's state dict pickle has ~40k opcodes and depth < 10.
MAX_OPCODES = 2_000_000
MAX_EXPANDED = 4_000_000
MAX_DEPTH = 100

_OPCODES = {op.name: op for op in pickletools.opcodes}
_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_MARK = object()


class PickleBudgetError(pickle.UnpicklingError):
    """The pickle would expand beyond the bounds of a real checkpoint."""


class _Node:
    """An abstract object: the size of its fully expanded tree and its nesting depth."""

    __slots__ = ("size", "depth")

    def __init__(self, size: int, depth: int) -> None:
        if size > MAX_EXPANDED:
            raise PickleBudgetError(f"objects expand to more than {MAX_EXPANDED:,} items (shared sub-objects)")
        if depth > MAX_DEPTH:
            raise PickleBudgetError(f"objects nested more than {MAX_DEPTH} deep")
        self.size = size
        self.depth = depth


def check_pickle_budget(stream: BinaryIO) -> None:
    """Replay the pickle at the stream's position (up to STOP); raise PickleBudgetError if too big.

    Leaves the stream after STOP; callers seek back before unpickling.
    """
    stack: list = []
    memo: dict = {}
    for count, (opcode, arg, _pos) in enumerate(pickletools.genops(stream)):
        if count >= MAX_OPCODES:
            raise PickleBudgetError(f"more than {MAX_OPCODES:,} pickle operations")
        _step(opcode.name, arg, stack, memo)


def _pop_to_mark(stack: list) -> list:
    items = []
    while stack:
        item = stack.pop()
        if item is _MARK:
            return items
        items.append(item)
    raise pickle.UnpicklingError("pickle without the mark it refers to")


def _pop(stack: list, descriptors) -> list:
    """Pop what an opcode consumes, per pickletools' stack description (a slice runs to the mark)."""
    popped: list = []
    for descriptor in reversed(descriptors):
        if descriptor is pickletools.stackslice:
            return popped + _pop_to_mark(stack)
        if not stack or stack[-1] is _MARK:
            raise pickle.UnpicklingError("pickle stack underflow")
        popped.append(stack.pop())
    return popped


def _combined(parts: list) -> _Node:
    nodes = [p for p in parts if isinstance(p, _Node)]
    return _Node(1 + sum(n.size for n in nodes), 1 + max((n.depth for n in nodes), default=0))


def _step(name: str, arg, stack: list, memo: dict) -> None:
    if name in _PUTS or name == "MEMOIZE":
        if not stack or stack[-1] is _MARK:
            raise pickle.UnpicklingError("memo store of an empty stack")
        memo[arg if name in _PUTS else len(memo)] = stack[-1]
    elif name in _GETS:
        if arg not in memo:
            raise pickle.UnpicklingError("memo reference to nothing stored")
        stack.append(memo[arg])
    elif name == "DUP":
        stack.append(stack[-1] if stack else _Node(1, 0))
    elif name == "MARK":
        stack.append(_MARK)
    elif name in _MUTATORS:
        parts = _pop(stack, _OPCODES[name].stack_before[1:])
        if not stack or not isinstance(stack[-1], _Node):
            raise pickle.UnpicklingError(f"{name} without an object to fill")
        target, added = stack[-1], _combined(parts)
        bigger = _Node(target.size + added.size - 1, max(target.depth, added.depth))
        target.size, target.depth = bigger.size, bigger.depth
    else:
        opcode = _OPCODES[name]
        parts = _pop(stack, opcode.stack_before)
        stack.extend(_combined(parts) for _ in opcode.stack_after)
