"""`virnucpro download`: fill a models directory that later runs use without any network access.

Encoders come through huggingface_hub (HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE, tokens and its
retry-with-Range all apply) into DIR/<subdir>/ rather than the shared HF cache, so DIR is one
self-contained directory to copy to an air-gapped cluster. Every file is checked against the
hub's own hashes (LFS sha256, git blob sha1) before it enters DIR/manifest.json. The published
classifiers come over plain HTTP from the original project's repository, resumable from a
`.partial` file, and are converted once to safetensors so that later loads unpickle nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.client import HTTPException
from pathlib import Path

from virnucpro import __version__
from virnucpro.errors import VirnucproError
from virnucpro.models.manifest import HashStamps, Manifest, ModelIntegrityError
from virnucpro.models.registry import (
    ENCODERS,
    MODELS_ENV,
    EncoderSpec,
    classifier_files,
    default_models_dir,
    hash_stamps,
)

CLASSIFIER_URL_ENV = "VIRNUCPRO_CLASSIFIER_URL"
DEFAULT_CLASSIFIER_URL = "https://raw.githubusercontent.com/Li-Jing-1997/VirNucPro/main"
_HTTP_ATTEMPTS = 5
_HTTP_TIMEOUT_S = 60
_COPY_BLOCK_BYTES = 1 << 20
_LFS_POINTER_PREFIX = b"version https://git-lfs"


class DownloadError(VirnucproError):
    """A model could not be fetched (network, server, or offline mode without the files)."""


@dataclass(frozen=True)
class Fetched:
    """One line of the summary: a file in the models directory and what was done to it."""

    relative: str
    size: int
    action: str  # "downloaded" | "present" | "converted"


# A progress callback: (description, total bytes or None) -> an `advance(n_bytes)` function.
ProgressFactory = Callable[[str, "int | None"], Callable[[int], None]]


def download_target(directory: str | Path | None) -> Path:
    """--dir, else VIRNUCPRO_MODELS, else the default models directory (created if needed)."""
    chosen = directory if directory is not None else os.environ.get(MODELS_ENV) or default_models_dir()
    return Path(chosen).expanduser()


def download_models(
    target: Path,
    model_types: tuple[int, ...],
    *,
    progress: ProgressFactory | None = None,
) -> list[Fetched]:
    """Make `target` hold both encoders and the given classifiers, each verified and in the manifest."""
    target.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.load_or_empty(target)
    stamps = hash_stamps()
    base_url = os.environ.get(CLASSIFIER_URL_ENV) or DEFAULT_CLASSIFIER_URL
    fetched: list[Fetched] = []
    for spec in ENCODERS.values():
        fetched += _ensure_encoder(spec, manifest, stamps)
        manifest.save()  # after each model, so an interrupted run keeps what it finished
    for model_type in model_types:
        fetched += _ensure_classifier(model_type, manifest, stamps, base_url.rstrip("/"), progress)
        manifest.save()
    return fetched


def _is_offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def _verified(manifest: Manifest, relative: str, stamps: HashStamps) -> bool:
    if not manifest.under(relative):
        return False
    try:
        manifest.verify(relative, stamps)
    except ModelIntegrityError:
        return False
    return True


def _present(manifest: Manifest, relative: str) -> list[Fetched]:
    return [Fetched(name, record.size, "present") for name, record in sorted(manifest.under(relative).items())]


def _ensure_encoder(spec: EncoderSpec, manifest: Manifest, stamps: HashStamps) -> list[Fetched]:
    if spec.is_complete(manifest.root / spec.subdir) and _verified(manifest, spec.subdir, stamps):
        return _present(manifest, spec.subdir)
    if _is_offline():
        raise DownloadError(
            f"{spec.label} is not complete in {manifest.root} and HF_HUB_OFFLINE is set;"
            " download on a machine with network access and copy the directory here"
        )
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    # HfHubHTTPError derives from its HTTP client's base error, which connection failures share.
    client_error = HfHubHTTPError.__mro__[1]
    local = manifest.root / spec.subdir
    try:
        commit, remote = _fetch_encoder(spec, local, stamps)
    except (client_error, LocalEntryNotFoundError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DownloadError(
            f"could not fetch {spec.repo_id}: {reason}; check the network and HF_ENDPOINT / HF_TOKEN"
        ) from None
    manifest.forget(spec.subdir)
    for name in remote:
        manifest.record(f"{spec.subdir}/{name}", stamps.sha256(local / name))
    manifest.sources[spec.subdir] = {"repo_id": spec.repo_id, "revision": commit}
    return [Fetched(f"{spec.subdir}/{name}", entry.size, "downloaded") for name, entry in remote.items()]


def _fetch_encoder(spec: EncoderSpec, local: Path, stamps: HashStamps) -> tuple[str, dict]:
    """Download the wanted files at one pinned commit; returns it and the files' hub entries."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(library_name="virnucpro", library_version=__version__)
    commit = api.model_info(spec.repo_id).sha
    listing = {
        entry.path: entry for entry in api.list_repo_tree(spec.repo_id, revision=commit) if isinstance(entry, RepoFile)
    }
    remote = {name: listing[name] for name in _wanted_files(spec, listing)}
    for _ in range(2):
        # A local_dir download trusts files it fetched before, so drop any that changed since.
        for name, entry in remote.items():
            if (local / name).is_file() and (local / name).stat().st_size != entry.size:
                (local / name).unlink()
        snapshot_download(spec.repo_id, revision=commit, local_dir=local, allow_patterns=list(remote))
        corrupt = [name for name, entry in remote.items() if not _matches_hub(local / name, entry, stamps)]
        for name in corrupt:
            (local / name).unlink()
        if not corrupt:
            return commit, remote
    raise DownloadError(f"{spec.label}: {', '.join(corrupt)} differ from the hub's checksums twice; try again")


def _wanted_files(spec: EncoderSpec, remote: dict) -> list[str]:
    """The support files the repository has, plus its most preferred weights file."""
    weights = [name for name in spec.weight_files if name in remote]
    if "config.json" not in remote or not weights:
        raise DownloadError(
            f"{spec.repo_id} lacks config.json or weights ({' or '.join(spec.weight_files)}); check HF_ENDPOINT"
        )
    return [name for name in spec.support_files if name in remote] + weights[:1]


def _matches_hub(path: Path, entry, stamps: HashStamps) -> bool:
    """LFS files carry a sha256 on the hub; small files are checked by their git blob sha1."""
    if path.stat().st_size != entry.size:
        return False
    if entry.lfs is not None:
        return stamps.sha256(path) == entry.lfs.sha256
    blob = hashlib.sha1(b"blob %d\0" % entry.size)
    blob.update(path.read_bytes())
    return blob.hexdigest() == entry.blob_id


def _ensure_classifier(
    model_type: int, manifest: Manifest, stamps: HashStamps, base_url: str, progress
) -> list[Fetched]:
    pth, safetensors = classifier_files(model_type)
    results = []
    if _verified(manifest, pth, stamps):
        results += _present(manifest, pth)
    elif _is_offline():
        raise DownloadError(
            f"{manifest.root / pth} is missing or damaged and HF_HUB_OFFLINE is set;"
            " download on a machine with network access and copy the directory here"
        )
    else:
        url = f"{base_url}/{Path(pth).name}"
        fetch_url(url, manifest.root / pth, progress)
        manifest.forget(safetensors)  # made from the old file, if any
        manifest.record(pth, stamps.sha256(manifest.root / pth))
        manifest.sources[pth] = {"url": url}
        results.append(Fetched(pth, (manifest.root / pth).stat().st_size, "downloaded"))
    if _verified(manifest, safetensors, stamps):
        return results + _present(manifest, safetensors)
    convert_classifier(manifest.root / pth, manifest.root / safetensors, model_type)
    manifest.record(safetensors, stamps.sha256(manifest.root / safetensors))
    manifest.sources[safetensors] = {"converted_from": pth}
    return results + [Fetched(safetensors, (manifest.root / safetensors).stat().st_size, "converted")]


def convert_classifier(pth: Path, safetensors: Path, chunk_size: int | None = None) -> None:
    """Load the pickled checkpoint once through the allow-list loader and store it as safetensors."""
    from virnucpro.models.classifier import load_classifier, save_classifier_safetensors

    model, info = load_classifier(pth)
    save_classifier_safetensors(model, safetensors, replace(info, chunk_size=chunk_size or info.chunk_size))


def fetch_url(url: str, dest: Path, progress: ProgressFactory | None = None) -> None:
    """Download `url` to `dest` via `dest.partial`, resuming with Range requests after drops."""
    partial = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for attempt in range(_HTTP_ATTEMPTS):
        try:
            _fetch_once(url, partial, progress)
            break
        except urllib.error.HTTPError as error:
            if error.code != 416:  # 416: our partial file is bigger than the remote one
                raise DownloadError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
            partial.unlink()
            last_error = error
        except (OSError, HTTPException) as error:
            last_error = error
            time.sleep(min(0.2 * 2**attempt, 5.0))
    else:
        raise DownloadError(f"could not download {url} after {_HTTP_ATTEMPTS} attempts: {last_error}")
    with open(partial, "rb") as handle:
        if handle.read(len(_LFS_POINTER_PREFIX)) == _LFS_POINTER_PREFIX:
            partial.unlink()
            raise DownloadError(f"{url} is a git-lfs pointer, not the file; set {CLASSIFIER_URL_ENV} to a direct URL")
    os.replace(partial, dest)


def _fetch_once(url: str, partial: Path, progress: ProgressFactory | None) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": f"virnucpro/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_HTTP_TIMEOUT_S) as response:
        resumed = response.status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")
        if not resumed:
            offset = 0  # the server sent the whole file
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        advance = progress(partial.name.removesuffix(".partial"), total) if progress else None
        if advance is not None and offset:
            advance(offset)
        with open(partial, "ab" if resumed else "wb") as out:
            while block := response.read(_COPY_BLOCK_BYTES):
                out.write(block)
                if advance is not None:
                    advance(len(block))
    received = partial.stat().st_size
    if total is not None and received != total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")
