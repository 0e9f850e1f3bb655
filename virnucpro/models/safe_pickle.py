"""Read pickled PyTorch checkpoints without running code from them.

Unpickling can call any importable function, so `torch.load(weights_only=False)` runs whatever a
checkpoint asks for, and `weights_only=True` cannot read a whole pickled `nn.Module` (nor the
legacy format's per-class persistent ids). Here both of `torch.save`'s containers (the zip format
of torch >= 1.6 and the older "legacy" stream) are read directly, and every global the pickle
names is looked up in one explicit allow-list of inert stand-ins: tensor rebuild functions that
only slice loaded storages, storage-type markers, and `PickledModule` classes that just keep their
attribute dict. Anything else (os.system, builtins.eval, subprocess.Popen, ...) raises
ModelLoadError when the pickle names it, before anything could be called. Work is bounded too:
the pickle's shape is checked first (pickle_budget), storages and tensor views are bounded by the
file's size, and the module walk visits each module once.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import reprlib
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from virnucpro.errors import ModelLoadError
from virnucpro.models.pickle_budget import PickleBudgetError, check_pickle_budget

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_MAX_MODULE_DEPTH = 64
_MAX_MODULES = 10_000  # the classifier has 5; a walk beyond this is a hostile module graph
# Tensors may share storage (tied weights), but together they may not view much more than the file holds.
_TENSOR_BYTES_SLACK = 16 << 20
MAX_PICKLE_BYTES = 64 << 20  # data.pkl of ESM-2 3B (~600 tensors) is ~100 kB; tensors live outside it
_TORCH_NN_MODULES = (
    "torch.nn.modules.linear.Linear",
    "torch.nn.modules.batchnorm.BatchNorm1d",
    "torch.nn.modules.activation.ReLU",
    "torch.nn.modules.dropout.Dropout",
)
_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
# Failures of a corrupt (not malicious) file surface as one of these from the pickle machinery.
_CORRUPT_FILE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
    KeyError, RuntimeError, OverflowError, zipfile.BadZipFile,
)


class PickledModule:
    """Stand-in for a pickled `nn.Module`: keeps the attribute dict, runs nothing of the original."""

    pickled_name = "?"

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.pickled_name}: module state is not a dict")
        self.state = state


@dataclass(frozen=True, slots=True)
class _StorageType:
    """Marker for a `torch.<X>Storage` global; only ever used to look up the element dtype."""

    dtype: torch.dtype


class _LoadBudget:
    """Bytes of storages and of tensor views one file may create, set by the file's own size.

    Checked before anything is allocated or materialised, so a 2 kB file cannot declare
    terabytes (a huge storage, or a zero-stride view that a later `.float()` would expand).
    """

    def __init__(self, file_size: int) -> None:
        self.file_size = file_size
        self.storage_bytes = 0
        self.tensor_bytes = 0

    def charge_storage(self, nbytes: int) -> None:
        self.storage_bytes += nbytes
        if self.storage_bytes > self.file_size:
            raise PickleBudgetError("its storages add up to more bytes than the whole file")

    def charge_tensor(self, nbytes: int) -> None:
        self.tensor_bytes += nbytes
        if self.tensor_bytes > 2 * self.file_size + _TENSOR_BYTES_SLACK:
            raise PickleBudgetError("its tensors view far more data than the file holds")


@dataclass(frozen=True, slots=True)
class _LoadedStorage:
    """One storage read from the file, as a flat tensor; the only thing a tensor may view."""

    flat: torch.Tensor
    budget: _LoadBudget


class _Call:
    """An allow-listed function behind an object with no writable attributes.

    Pickle's BUILD opcode can set attributes on any object it has; wrapping keeps a file from
    altering the shared rebuild functions for later loads.
    """

    __slots__ = ("_function",)

    def __init__(self, function) -> None:
        object.__setattr__(self, "_function", function)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("read-only")

    def __call__(self, *args: Any) -> Any:
        return self._function(*args)


def _module_standin(qualified_name: str) -> type[PickledModule]:
    short_name = qualified_name.rsplit(".", 1)[-1]
    return type(short_name, (PickledModule,), {"pickled_name": qualified_name})


def _strided_view(storage: Any, offset: int, size: tuple, stride: tuple) -> torch.Tensor:
    """A tensor over one loaded storage, bounds-checked so a bad file cannot read past it."""
    if not isinstance(storage, _LoadedStorage):
        raise pickle.UnpicklingError("a tensor refers to something that is not a storage")
    flat = storage.flat
    geometry = (offset, *size, *stride)
    if not all(type(v) is int and v >= 0 for v in geometry) or len(size) != len(stride) or len(size) > 16:
        raise pickle.UnpicklingError(f"malformed tensor geometry size={reprlib.repr(size)} stride={reprlib.repr(stride)}")
    numel = math.prod(size)
    extent = 0 if numel == 0 else 1 + sum((n - 1) * s for n, s in zip(size, stride))
    if offset + extent > flat.numel():
        raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
    if numel > flat.numel():  # only overlapping (e.g. zero) strides can do this
        raise PickleBudgetError(f"a tensor of shape {size} has more elements than its storage")
    storage.budget.charge_tensor(numel * flat.element_size())
    return flat[offset:].as_strided(size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _strided_view(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    if backward_hooks:
        raise pickle.UnpicklingError("tensor with backward hooks")
    return _strided_view(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    if not isinstance(data, torch.Tensor) or backward_hooks:
        raise pickle.UnpicklingError("malformed parameter")
    return data


def _allowed_globals(modules: Iterable[str], extra: Mapping[str, Any]) -> dict[str, Any]:
    allowed: dict[str, Any] = {
        "collections.OrderedDict": OrderedDict,
        "builtins.set": set,
        "__builtin__.set": set,  # protocol-2 pickles spell builtins the Python 2 way
        "torch._utils._rebuild_tensor": _Call(_rebuild_tensor),
        "torch._utils._rebuild_tensor_v2": _Call(_rebuild_tensor_v2),
        "torch._utils._rebuild_parameter": _Call(_rebuild_parameter),
        "torch._utils._rebuild_parameter_with_state": _Call(_rebuild_parameter),
    }
    allowed.update({f"torch.{name}": _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()})
    allowed.update({name: _module_standin(name) for name in (*_TORCH_NN_MODULES, *modules)})
    allowed.update(extra)
    return allowed


class _RefusedGlobal(ModelLoadError):
    """The pickle named a global outside the allow-list."""


class _AllowListUnpickler(pickle.Unpickler):
    """`find_class` answers from the allow-list only; storages come from `storage_loader`."""

    def __init__(self, stream: BinaryIO, allowed: Mapping[str, Any], storage_loader) -> None:
        super().__init__(stream)
        self._stream = stream
        self._allowed = allowed
        self._storage_loader = storage_loader

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[f"{module}.{name}"]
        except KeyError:
            raise _RefusedGlobal(
                f"refused untrusted model file: it references {reprlib.repr(f'{module}.{name}')}, which a "
                "plain model file never needs (loading it could run code); use a file from a trusted source"
            ) from None

    def load(self) -> Any:
        """Unpickle after checking the pickle's size and shape (pickle_budget) from here to STOP."""
        stream = self._stream
        start = stream.tell()
        check_pickle_budget(stream)
        stream.seek(start)
        return super().load()

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unsupported persistent id of type {type(pid).__name__}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "storage" and len(pid) >= 5 and isinstance(pid[1], _StorageType):
            return self._storage_loader(pid)
        if kind == "module" and isinstance(pid[1], type) and issubclass(pid[1], PickledModule):
            return pid[1]  # legacy format: the class plus its source text, which is ignored
        raise pickle.UnpicklingError(f"unsupported persistent id of kind {reprlib.repr(kind)}")


def load_pickle_checkpoint(
    path: str | Path, modules: Iterable[str] = (), extra_globals: Mapping[str, Any] | None = None
) -> Any:
    """Unpickle a `torch.save` file (zip or legacy format) with the allow-list; tensors on CPU.

    `modules` names extra pickled `nn.Module` classes to accept as `PickledModule` stand-ins
    (e.g. "__main__.MLPClassifier"); `extra_globals` maps further "module.name" globals to
    objects the caller vouches for.
    """
    path = Path(path)
    allowed = _allowed_globals(modules, extra_globals or {})
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path, allowed)
        with open(path, "rb") as stream:
            return _load_legacy(stream, allowed)
    except _RefusedGlobal as refused:
        raise ModelLoadError(f"{path}: {refused}") from None
    except PickleBudgetError as error:
        raise ModelLoadError(f"{path}: refused untrusted model file: {error}") from None
    except ModelLoadError:
        raise
    except _CORRUPT_FILE_ERRORS as error:
        raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint ({error})") from None


def _load_zip(path: Path, allowed: Mapping[str, Any]) -> Any:
    """torch's zip format: PREFIX/data.pkl plus one raw little-endian record per storage."""
    budget = _LoadBudget(path.stat().st_size)
    with zipfile.ZipFile(path) as archive, open(path, "rb") as raw_file:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise ModelLoadError(f"{path}: not a PyTorch checkpoint (no single data.pkl inside)")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
            raise ModelLoadError(f"{path}: big-endian checkpoints are not supported")
        loaded: dict[str, _LoadedStorage] = {}

        def load_storage(pid: tuple) -> _LoadedStorage:
            _, storage_type, key, _location, numel = pid[:5]
            if not isinstance(key, str):
                raise pickle.UnpicklingError("storage key is not a string")
            if key not in loaded:
                name = f"{prefix}data/{key}"
                nbytes = _checked_count(numel) * _element_size(storage_type.dtype)
                _check_record(archive, name, nbytes)
                budget.charge_storage(nbytes)
                flat = _flat_storage(_read_stored(raw_file, archive.getinfo(name)), storage_type.dtype, numel)
                loaded[key] = _LoadedStorage(flat, budget)
            return loaded[key]

        _check_record(archive, pickles[0], None)
        if archive.getinfo(pickles[0]).file_size > MAX_PICKLE_BYTES:
            raise PickleBudgetError(f"its object pickle is over {MAX_PICKLE_BYTES >> 20} MiB (real ones are kB)")
        stream = io.BytesIO(archive.read(pickles[0]))
        return _AllowListUnpickler(stream, allowed, load_storage).load()


def _read_stored(raw_file: BinaryIO, info: zipfile.ZipInfo) -> bytearray:
    """An uncompressed record's bytes, read straight from the file into one buffer.

    Ten times faster than `ZipFile.read` for multi-GB checkpoints (no CRC, no intermediate copy),
    as torch's own loader does; the manifest's sha256 is what guards integrity.
    """
    raw_file.seek(info.header_offset)
    header = raw_file.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise pickle.UnpicklingError(f"record {info.filename[:80]} has no local header")
    name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    raw_file.seek(info.header_offset + 30 + name_length + extra_length)
    data = bytearray(info.file_size)
    if raw_file.readinto(data) != info.file_size:
        raise pickle.UnpicklingError(f"record {info.filename[:80]} is truncated")
    return data


def _check_record(archive: zipfile.ZipFile, name: str, expected_size: int | None) -> None:
    """torch stores records uncompressed; refusing anything else also rules out zip bombs."""
    info = archive.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise pickle.UnpicklingError(f"compressed record {name} (torch never writes one)")
    if expected_size is not None and info.file_size != expected_size:
        raise pickle.UnpicklingError("storage record size does not match its reference")


def _load_legacy(stream: BinaryIO, allowed: Mapping[str, Any]) -> Any:
    """torch's pre-1.6 stream: magic, protocol, sys_info, the object, storage keys, raw storages."""
    def no_storages(pid: tuple) -> Any:
        raise pickle.UnpicklingError("storage reference in a header pickle")

    def header() -> Any:
        return _AllowListUnpickler(stream, allowed, no_storages).load()

    if header() != _LEGACY_MAGIC:
        raise ModelLoadError(f"{stream.name}: not a PyTorch checkpoint (unknown file format)")
    if header() != _LEGACY_PROTOCOL:
        raise ModelLoadError(f"{stream.name}: unsupported legacy checkpoint protocol")
    sys_info = header()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ModelLoadError(f"{stream.name}: big-endian checkpoints are not supported")
    storages: dict[str, _LoadedStorage] = {}
    budget = _LoadBudget(os.fstat(stream.fileno()).st_size)

    def allocate_storage(pid: tuple) -> _LoadedStorage:
        _, storage_type, key, _location, numel, view = pid[:6]
        if view is not None:
            raise pickle.UnpicklingError("storage views (torch < 1.0 files) are not supported")
        if not isinstance(key, str):
            raise pickle.UnpicklingError("storage key is not a string")
        if key not in storages:
            budget.charge_storage(_checked_count(numel) * _element_size(storage_type.dtype))
            storages[key] = _LoadedStorage(torch.empty(numel, dtype=storage_type.dtype), budget)
        return storages[key]

    obj = _AllowListUnpickler(stream, allowed, allocate_storage).load()
    keys = header()
    if not isinstance(keys, list) or not all(isinstance(key, str) and key in storages for key in keys):
        raise pickle.UnpicklingError("storage key list does not match the storages referenced")
    for key in keys:
        _fill_legacy_storage(stream, storages[key].flat)
    return obj


def _fill_legacy_storage(stream: BinaryIO, flat: torch.Tensor) -> None:
    """Each storage: int64 element count (little-endian), then the raw elements."""
    numel = int.from_bytes(stream.read(8), "little")
    if numel != flat.numel():
        raise pickle.UnpicklingError("storage size does not match its reference")
    raw = bytearray(stream.read(numel * flat.element_size()))
    flat.view(torch.uint8).copy_(_flat_storage(raw, flat.dtype, numel).view(torch.uint8))


def _checked_count(numel: Any) -> int:
    if type(numel) is not int or numel < 0:
        raise pickle.UnpicklingError(f"malformed storage size {reprlib.repr(numel)}")
    return numel


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


def _flat_storage(raw: bytearray, dtype: torch.dtype, numel: Any) -> torch.Tensor:
    """A 1-D tensor over `raw` holding exactly `numel` elements of `dtype`."""
    if len(raw) != _checked_count(numel) * _element_size(dtype):
        raise pickle.UnpicklingError("storage record size does not match its reference")
    if not raw:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(raw, dtype=dtype)


def module_state_dict(module: PickledModule) -> dict[str, torch.Tensor]:
    """The `state_dict()` the pickled module would have: parameters and persistent buffers.

    Each module is visited once: a module reached twice (shared or cyclic, which a hostile file
    uses to make the walk exponential) is refused, and so is a graph of absurdly many modules.
    """
    tensors: dict[str, torch.Tensor] = {}
    _collect_state(module, "", tensors, set())
    return tensors


def _collect_state(module: Any, prefix: str, out: dict[str, torch.Tensor], seen: set[int]) -> None:
    where = reprlib.repr(prefix.rstrip(".") or "top level")
    if not isinstance(module, PickledModule) or not isinstance(getattr(module, "state", None), dict):
        raise ModelLoadError(f"pickled object at {where} is not a module")
    if id(module) in seen or len(seen) >= _MAX_MODULES or prefix.count(".") > _MAX_MODULE_DEPTH:
        raise ModelLoadError(f"module graph is not a plain tree (shared, cyclic or too large) at {where}")
    seen.add(id(module))
    state = module.state
    skipped = _mapping_or_empty(state, "_non_persistent_buffers_set", (set, list, tuple))
    for group in ("_parameters", "_buffers"):
        for name, tensor in _mapping_or_empty(state, group, (dict,)).items():
            if tensor is None or name in skipped:
                continue
            if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
                raise ModelLoadError(f"{reprlib.repr(name)} in module {where} is not a named tensor")
            out[f"{prefix}{name}"] = tensor
    for name, child in _mapping_or_empty(state, "_modules", (dict,)).items():
        if not isinstance(name, str):
            raise ModelLoadError(f"a child of module {where} has a name that is not a string")
        if child is not None:
            _collect_state(child, f"{prefix}{name}.", out, seen)


def _mapping_or_empty(state: dict, key: str, types: tuple[type, ...]) -> Any:
    value = state.get(key)
    if value is None:
        return {}
    if not isinstance(value, types):
        raise ModelLoadError(f"module field {key} is a {type(value).__name__}")
    return value


def tensor_state_dict(obj: Any, source: str | Path) -> dict[str, torch.Tensor]:
    """`obj` as a plain {str: Tensor} state dict, or a one-line error saying what it is instead."""
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{source}: holds a {type(obj).__name__}, not a state dict of tensors")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ModelLoadError(f"{source}: entry {reprlib.repr(key)} is not a named tensor")
    return dict(obj)
