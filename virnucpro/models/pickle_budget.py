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

# Far above real checkpoints: a state dict pickle takes ~31 operations per tensor (measured), so
# ESM-2 15B (~770 tensors) needs ~25k; real nesting depth is below 10.
MAX_OPCODES = 2_000_000
MAX_EXPANDED = 4_000_000
MAX_DEPTH = 100

_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_CONTAINERS = {"EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"}  # filled later, so tracked as nodes
_MARK = object()
_LEAF = None  # a scalar, string or global: size 1, depth 0, never filled


class PickleBudgetError(pickle.UnpicklingError):
    """The pickle would expand beyond the bounds of a real checkpoint."""


def _shape(op) -> tuple[int, bool, int]:
    """(plain items popped, whether a mark-delimited slice is popped too, items pushed)."""
    before = op.stack_before[1:] if op.name in _MUTATORS else op.stack_before
    has_slice = pickletools.stackslice in before
    if has_slice:  # what lies above the mark is the slice; nothing plain is popped below it
        before = before[: before.index(pickletools.markobject)]
    return len(before), has_slice, len(op.stack_after)


_SHAPES = {op.name: _shape(op) for op in pickletools.opcodes}


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


def _node(size: int, depth: int) -> list[int]:
    """An abstract object: [size of its fully expanded tree, nesting depth], refused beyond bounds."""
    if size > MAX_EXPANDED:
        raise PickleBudgetError(f"objects expand to more than {MAX_EXPANDED:,} items (shared sub-objects)")
    if depth > MAX_DEPTH:
        raise PickleBudgetError(f"objects nested more than {MAX_DEPTH} deep")
    return [size, depth]


def _pop(stack: list, plain: int, has_slice: bool) -> tuple[int, int]:
    """Pop an opcode's operands; their total expanded size and greatest depth."""
    size = depth = 0
    for index in range(plain + (1 << 62 if has_slice else 0)):
        if not stack:
            raise pickle.UnpicklingError("pickle stack underflow")
        item = stack.pop()
        if item is _MARK:
            if index < plain or not has_slice:
                raise pickle.UnpicklingError("pickle stack underflow")
            break
        if item is _LEAF:
            size += 1
        else:
            size, depth = size + item[0], max(depth, item[1])
    return size, depth


def _step(name: str, arg, stack: list, memo: dict) -> None:
    if name in _PUTS or name == "MEMOIZE":
        if not stack or stack[-1] is _MARK:
            raise pickle.UnpicklingError("memo store of an empty stack")
        memo[arg if name in _PUTS else len(memo)] = stack[-1]
    elif name in _GETS:
        if arg not in memo:
            raise pickle.UnpicklingError("memo reference to nothing stored")
        stack.append(memo[arg])
    elif name == "MARK":
        stack.append(_MARK)
    elif name in _CONTAINERS:
        stack.append([1, 0])
    elif name == "DUP":
        raise pickle.UnpicklingError("DUP opcode (never written by pickle)")
    else:
        plain, has_slice, pushed = _SHAPES[name]
        consumes = plain or has_slice
        size, depth = _pop(stack, plain, has_slice) if consumes else (0, 0)
        if name in _MUTATORS:
            if not stack or stack[-1] is _MARK or stack[-1] is _LEAF:
                raise pickle.UnpicklingError(f"{name} without an object to fill")
            target = stack[-1]
            target[:] = _node(target[0] + size, max(target[1], depth + 1))
        elif pushed:
            stack.append(_node(1 + size, 1 + depth) if consumes else _LEAF)
