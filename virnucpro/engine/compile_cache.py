"""Persistent compile caches: Inductor's and Triton's kernels kept under the virnucpro cache
directory (~/.cache/virnucpro/compile), so the warm-up of a later run finds its kernels instead of
compiling them again (Inductor's default, /tmp/torchinductor_<user>, does not survive a reboot or
a cleaned /tmp). A directory the user set (TORCHINDUCTOR_CACHE_DIR, TRITON_CACHE_DIR) is kept.

Once a warm-up has filled the caches for a setting (versions, GPUs, dtype, cache directories),
later runs with that setting compile in-process (TORCHINDUCTOR_COMPILE_THREADS=1, unless the user
chose a value): every kernel is a cache hit then, and Inductor's pool of compile workers - a
process per core, each importing torch while the warm-up runs - is pure start-up cost. Where the
kernels are compiled does not change the generated code, so no number changes.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from pathlib import Path

from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.models.registry import cache_root

CACHE_VARIABLES = {"TORCHINDUCTOR_CACHE_DIR": "inductor", "TRITON_CACHE_DIR": "triton"}
COMPILE_THREADS_VARIABLE = "TORCHINDUCTOR_COMPILE_THREADS"
_WARM_FILE = "warm-settings.json"
_MAX_WARM_SETTINGS = 64
_MAX_WARM_BYTES = 1 << 20  # 64 settings of ~1 KB; anything larger is not ours
_log = logging.getLogger(__name__)


def compile_cache_root() -> Path:
    return cache_root() / "compile"


def use_persistent_compile_caches() -> dict[str, str]:
    """Point each compile cache the user left unset at its directory under the virnucpro cache
    (before anything compiles); return where each cache is now."""
    for variable, name in CACHE_VARIABLES.items():
        if not os.environ.get(variable):
            os.environ[variable] = str(compile_cache_root() / name)
    return compile_cache_dirs()


def compile_cache_dirs() -> dict[str, str]:
    """Where each compile cache is: the user's setting, else the virnucpro default."""
    return {variable: os.environ.get(variable) or str(compile_cache_root() / name)
            for variable, name in CACHE_VARIABLES.items()}


def directory_bytes(path: str | Path) -> int:
    """Bytes of the files under `path` (0 when it does not exist yet); links are not followed."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def compile_setting(device_names: list[str], dtype, model_paths: dict[str, Path]) -> str:
    """What the compiled kernels depend on: versions, GPUs, dtype, the models, the cache dirs."""
    import torch

    from virnucpro import __version__

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return json.dumps({"virnucpro": __version__, "torch": torch.__version__, "triton": triton_version,
                       "devices": device_names, "dtype": str(dtype), "caches": compile_cache_dirs(),
                       "models": {kind: str(Path(path).resolve()) for kind, path in sorted(model_paths.items())}},
                      sort_keys=True)


def compile_in_process_if_warm(setting: str) -> bool:
    """Compile in-process (no worker pool) when an earlier warm-up filled the caches for
    `setting` and the user did not choose the compile threads; True when that was done. Call it
    before anything compiles."""
    if os.environ.get(COMPILE_THREADS_VARIABLE) or setting not in _warm_settings():
        return False
    os.environ[COMPILE_THREADS_VARIABLE] = "1"
    config = sys.modules.get("torch._inductor.config")  # read at its import: set it too if it ran already
    if config is not None:
        config.compile_threads = 1
    return True


def remember_warm(setting: str) -> None:
    """Record that a warm-up completed for `setting` (an unwritable cache only costs the pool)."""
    settings = _warm_settings()
    if setting in settings:
        return
    try:
        compile_cache_root().mkdir(parents=True, exist_ok=True)
        write_json_atomic(compile_cache_root() / _WARM_FILE, (settings + [setting])[-_MAX_WARM_SETTINGS:])
    except OSError:
        pass


def _warm_settings() -> list[str]:
    """The settings recorded as warm. The file is a cache and untrusted: a link, a FIFO or device,
    an oversized, damaged or foreign file counts as none (a debug line), never stops a run."""
    path = compile_cache_root() / _WARM_FILE
    try:
        data = json.loads(_read_small_regular(path))
    except FileNotFoundError:
        return []
    except (OSError, ValueError, RecursionError) as error:
        _log.debug("ignoring compile cache record %s: %s", path, str(error)[:200])
        return []
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        _log.debug("ignoring compile cache record %s: not a list of settings", path)
        return []
    return data


def _read_small_regular(path: Path) -> bytes:
    """The bytes of `path` if it is a regular file (not a link) of at most _MAX_WARM_BYTES; opened
    without following a link or blocking on a FIFO, so no file put there can hang or flood a run."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path} is not a regular file")
        data = handle.read(_MAX_WARM_BYTES + 1)
    if len(data) > _MAX_WARM_BYTES:
        raise OSError(f"{path} is over {_MAX_WARM_BYTES} bytes")
    return data
