"""Persistent compile caches: Inductor's and Triton's kernels kept under the virnucpro cache
directory (~/.cache/virnucpro/compile), so the warm-up of a later run finds its kernels instead of
compiling them again (Inductor's default, /tmp/torchinductor_<user>, does not survive a reboot or
a cleaned /tmp). A directory the user set (TORCHINDUCTOR_CACHE_DIR, TRITON_CACHE_DIR) is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from virnucpro.models.registry import cache_root

CACHE_VARIABLES = {"TORCHINDUCTOR_CACHE_DIR": "inductor", "TRITON_CACHE_DIR": "triton"}


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
