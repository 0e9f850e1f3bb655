"""Reading a safetensors file onto a GPU through a bounded pinned staging area.

`safetensors.torch.load_file(device="cuda")` copies from pageable memory (the driver bounces every
byte through its own small pinned buffer, synchronously). Here the file is read in large chunks
(each by several threads' positional reads) into two reusable pinned host buffers (double buffering: the disk or page-cache read
of one chunk overlaps the asynchronous host-to-device copy of the other), and each tensor's bytes
land in its own device tensor in the file's dtype; casts happen later, on the GPU. Host memory is
bounded by the two buffers (never the whole 11 GB checkpoint). The bytes are the file's bytes, so
the tensors are bit-identical to `load_file`'s (tests/models/test_staged_safetensors.py).

The header is untrusted: its size, JSON, dtypes, shapes and byte ranges are checked before any
allocation; a bad file is a one-line ModelLoadError.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from virnucpro.errors import ModelLoadError

_log = logging.getLogger(__name__)
CHUNK_BYTES = 256 << 20  # each of the two staging buffers
READ_THREADS = 8  # positional reads in parallel: the H200 read probe went from 2.49 s to 1.07 s with 8 threads
_MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def read_safetensors_staged(file: Path, device: torch.device | str, chunk_bytes: int = CHUNK_BYTES,
                            pin: bool | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of safetensors `file` on `device`, in the file's dtype. `pin` (default: on for
    CUDA) stages through page-locked buffers with non-blocking copies; off (the CPU tests) runs the
    same chunking with plain buffers."""
    device = torch.device(device)
    pin = device.type == "cuda" if pin is None else pin
    with open(file, "rb") as handle, ThreadPoolExecutor(READ_THREADS, "virnucpro-read") as readers:
        data_start, entries = _read_header(handle, file)
        out = {name: torch.empty(end - begin, dtype=torch.uint8, device=device)
               for name, (_, _, begin, end) in entries.items()}
        reader = _ChunkReader(handle.fileno(), file, readers)
        _stream_bytes(reader, data_start, entries, out, device, chunk_bytes, pin)
    return {name: out[name].view(dtype).reshape(shape) for name, (dtype, shape, _, _) in entries.items()}


def _read_header(handle, file: Path) -> tuple[int, dict[str, tuple[torch.dtype, list[int], int, int]]]:
    """(where the data starts, name -> (dtype, shape, begin, end)) with every range inside the file."""
    size = Path(file).stat().st_size
    raw = handle.read(8)
    if len(raw) != 8:
        raise ModelLoadError(f"unreadable safetensors file {file}: shorter than its header length")
    (header_len,) = struct.unpack("<Q", raw)
    if header_len > min(_MAX_HEADER_BYTES, size - 8):
        raise ModelLoadError(f"unreadable safetensors file {file}: header length {header_len} is out of bounds")
    try:
        header = json.loads(handle.read(header_len))
    except (ValueError, UnicodeDecodeError):
        raise ModelLoadError(f"unreadable safetensors file {file}: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"unreadable safetensors file {file}: its header is not a JSON object")
    data_start, data_len = 8 + header_len, size - 8 - header_len
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        entries[name] = _entry(name, info, data_len, file)
    return data_start, dict(sorted(entries.items(), key=lambda item: item[1][2]))


def _entry(name: str, info, data_len: int, file: Path) -> tuple[torch.dtype, list[int], int, int]:
    def bad(what: str) -> ModelLoadError:
        return ModelLoadError(f"unreadable safetensors file {file}: tensor {name!r} {what}")

    if not isinstance(info, dict):
        raise bad("has no description")
    dtype = _DTYPES.get(info.get("dtype")) if isinstance(info.get("dtype"), str) else None
    if dtype is None:
        raise bad(f"has an unsupported dtype {info.get('dtype')!r}")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise bad("has no valid shape")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise bad("has no valid data_offsets")
    begin, end = offsets
    if not 0 <= begin <= end <= data_len:
        raise bad(f"points outside the file ({begin}..{end} of {data_len} bytes)")
    if end - begin != math.prod(shape) * dtype.itemsize:
        raise bad(f"holds {end - begin} bytes, its shape {shape} needs {math.prod(shape) * dtype.itemsize}")
    return dtype, shape, begin, end


class _ChunkReader:
    """Fills a buffer from a file offset with several positional reads in parallel (os.preadv
    releases the GIL), so a page-cache read is not one thread's memory copy."""

    def __init__(self, fd: int, file: Path, pool: ThreadPoolExecutor):
        self.fd, self.file, self.pool = fd, file, pool

    def read(self, buffer: torch.Tensor, offset: int) -> None:
        view = memoryview(buffer.numpy())
        step = -(-len(view) // READ_THREADS)
        parts = [(view[i:i + step], offset + i) for i in range(0, len(view), step)]
        for future in [self.pool.submit(self._fill, part, where) for part, where in parts]:
            future.result()

    def _fill(self, view: memoryview, offset: int) -> None:
        while len(view):
            got = os.preadv(self.fd, [view], offset)
            if got <= 0:
                raise ModelLoadError(f"unreadable safetensors file {self.file}: it ended early (was it changed?)")
            view, offset = view[got:], offset + got


def _stream_bytes(reader: _ChunkReader, data_start: int, entries: dict, out: dict[str, torch.Tensor],
                  device: torch.device, chunk_bytes: int, pin: bool) -> None:
    """The data section, read chunk by chunk into alternating staging buffers, each chunk's bytes
    copied into the tensors it overlaps; a buffer is refilled only after its copies are done."""
    spans = [(begin, end, out[name]) for name, (_, _, begin, end) in entries.items() if end > begin]
    if not spans:
        return
    first, last = spans[0][0], max(end for _, end, _ in spans)
    size = max(1, min(chunk_bytes, last - first))
    buffers, pin = _staging_buffers(size, pin)
    done = [None, None]  # the CUDA event after each buffer's last copy
    position, turn, index = first, 0, 0
    while position < last:
        length = min(size, last - position)
        if done[turn] is not None:
            done[turn].synchronize()
        staging = buffers[turn][:length]
        reader.read(staging, data_start + position)
        while index < len(spans) and spans[index][1] <= position:
            index += 1
        for begin, end, target in _overlapping(spans, index, position, position + length):
            lo, hi = max(begin, position), min(end, position + length)
            target[lo - begin:hi - begin].copy_(staging[lo - position:hi - position], non_blocking=pin)
        if pin:
            done[turn] = torch.cuda.current_stream(device).record_event()
        position += length
        turn = 1 - turn
    for event in done:
        if event is not None:
            event.synchronize()  # the buffers are freed (and may be reused) only after their copies


def _staging_buffers(size: int, pin: bool) -> tuple[list[torch.Tensor], bool]:
    """Two staging buffers, page-locked when asked and possible. Pinning can be refused (a locked-
    memory limit): then plain buffers and synchronous copies, the same bytes, only slower."""
    if pin:
        try:
            return [torch.empty(size, dtype=torch.uint8, pin_memory=True) for _ in range(2)], True
        except RuntimeError as error:
            _log.warning("pinned staging buffers refused (%s); loading through pageable memory",
                         str(error).splitlines()[0] if str(error) else type(error).__name__)
    return [torch.empty(size, dtype=torch.uint8) for _ in range(2)], False


def _overlapping(spans: list, index: int, lo: int, hi: int):
    """The spans from `index` on that share bytes with [lo, hi) (spans are sorted by start)."""
    for begin, end, target in spans[index:]:
        if begin >= hi:
            return
        if end > lo:
            yield begin, end, target
