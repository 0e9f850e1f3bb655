"""`virnucpro download`: fill a models directory that later runs use without any network access.

Encoders are listed through huggingface_hub (HF_ENDPOINT, HF_HUB_OFFLINE and tokens apply) at one
pinned commit, and their files fetched from the hub's resolve URLs into DIR/<subdir>/ rather than
the shared HF cache, so DIR is one self-contained directory to copy to an air-gapped cluster.
Every hub file is checked against the hub's own hashes (LFS sha256, git blob sha1) before it
enters DIR/manifest.json. The published classifiers come over plain HTTP from the original
project's repository and are converted once to safetensors so that later loads unpickle nothing.
Every transfer goes through `fetch_url`: a `.partial` file resumed with Range requests, after a
dropped connection and in the next command.
`plan_download` asks the servers first (what is missing, how big) so the user is told before any
byte is written, and a machine without network fails before DIR exists; `predict`/`embed` use the
same two steps on first use (pipeline/fetch.py).
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
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
from virnucpro.outputs.rundir_lock import RunDirLock

CLASSIFIER_URL_ENV = "VIRNUCPRO_CLASSIFIER_URL"
DEFAULT_CLASSIFIER_URL = "https://raw.githubusercontent.com/Li-Jing-1997/VirNucPro/main"
_HTTP_ATTEMPTS = 5
_HTTP_TIMEOUT_S = 60
_COPY_BLOCK_BYTES = 1 << 20
_LFS_POINTER_PREFIX = b"version https://git-lfs"
DOWNLOAD_STATE_DIR = ".download"  # holds the lock of the download running into a models directory


OFFLINE_ROUTE = (
    "on a machine with network access run `virnucpro download --dir DIR`, copy DIR here"
    f" and set {MODELS_ENV}=DIR"
)


class DownloadError(VirnucproError):
    """A model could not be fetched (network, server, or offline mode without the files)."""


class NoNetworkError(DownloadError):
    """The hub or the classifier server could not be reached at all: name the offline route."""

    def __init__(self, what: str, reason: str):
        super().__init__(
            f"cannot reach the network to fetch {what} ({reason}); check the connection, HF_ENDPOINT and"
            f" proxy settings, or without network: {OFFLINE_ROUTE}"
        )


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


@dataclass
class DownloadPlan:
    """What a download will fetch, asked of the servers before any byte is written, so the user
    is told what, how much and where first, and an unreachable network fails before DIR exists."""

    target: Path
    encoders: dict[str, tuple[str, dict]]  # kind -> (pinned commit, {file name: hub entry})
    classifiers: dict[int, int | None]  # model type -> size in bytes (None: the server did not say)

    @property
    def total_bytes(self) -> int:
        hub = sum(entry.size for _, remote in self.encoders.values() for entry in remote.values())
        return hub + sum(size or 0 for size in self.classifiers.values())

    def describe(self) -> str:
        """One line: what will be fetched, how big, and where it goes."""
        names = [ENCODERS[kind].label for kind in self.encoders]
        names += [f"the {model_type}-bp classifier" for model_type in self.classifiers]
        if not names:
            return f"all models present and verified in {self.target}"
        return f"fetching {and_list(names)} ({format_bytes(self.total_bytes)}) into {self.target}"


def and_list(names: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def format_bytes(size: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def plan_download(
    target: Path, model_types: tuple[int, ...], encoders: tuple[str, ...] = tuple(ENCODERS)
) -> DownloadPlan:
    """Ask the hub and the classifier server what is missing from `target`; writes nothing there."""
    manifest = Manifest.load_or_empty(target)
    stamps = hash_stamps()
    planned = {}
    for kind in encoders:
        spec = ENCODERS[kind]
        if not (spec.is_complete(target / spec.subdir) and _verified(manifest, spec.subdir, stamps)):
            _refuse_offline(f"{spec.label} is not complete in {target}")
            planned[kind] = _hub_listing(spec)
    classifiers = {}
    for model_type in model_types:
        pth, _ = classifier_files(model_type)
        if not _verified(manifest, pth, stamps):
            _refuse_offline(f"{target / pth} is missing or damaged")
            classifiers[model_type] = _remote_size(_classifier_url(pth))
    return DownloadPlan(target, planned, classifiers)


def download_models(
    target: Path,
    model_types: tuple[int, ...],
    *,
    progress: ProgressFactory | None = None,
    plan: DownloadPlan | None = None,
    announce: Callable[[str], None] | None = None,
) -> list[Fetched]:
    """Make `target` hold the encoders (all, or the plan's) and the given classifiers, each verified
    and in the manifest. One download per directory at a time (a second one is told who holds it and
    waits, then finds the models present); directories it made are removed when it fails before
    filling them, while partial files keep theirs for the next run to resume."""
    plan = plan or plan_download(target, model_types)
    if not plan.encoders and not plan.classifiers:
        return _download(target, model_types, plan, progress)
    on_busy = None if announce is None else lambda holder: announce(f"waiting for another download into {target}"
                                                                    f" ({holder})")
    with RunDirLock(target, "download", state_dir=target / DOWNLOAD_STATE_DIR, on_busy=on_busy):
        return _download(target, model_types, plan, progress)


def _download(target: Path, model_types: tuple[int, ...], plan: DownloadPlan, progress) -> list[Fetched]:
    target.mkdir(parents=True, exist_ok=True)
    manifest = Manifest.load_or_empty(target)
    stamps = hash_stamps()
    fetched: list[Fetched] = []
    for kind, spec in ENCODERS.items():
        if spec.is_complete(target / spec.subdir) and _verified(manifest, spec.subdir, stamps):
            fetched += _present(manifest, spec.subdir)  # also when a download we waited for brought it
        elif kind in plan.encoders:
            fetched += _ensure_encoder(spec, manifest, stamps, plan.encoders[kind], progress)
        manifest.save()  # after each model, so an interrupted run keeps what it finished
    for model_type in model_types:
        fetched += _ensure_classifier(model_type, manifest, stamps, progress)
        manifest.save()
    return fetched


def _refuse_offline(what: str) -> None:
    if _is_offline():
        raise DownloadError(f"{what} and HF_HUB_OFFLINE is set, so nothing is downloaded; {OFFLINE_ROUTE}")


def _classifier_url(pth: str) -> str:
    base_url = os.environ.get(CLASSIFIER_URL_ENV) or DEFAULT_CLASSIFIER_URL
    return f"{base_url.rstrip('/')}/{Path(pth).name}"


def _remote_size(url: str) -> int | None:
    """The Content-Length of `url` from a HEAD request (None when the server does not say)."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": f"virnucpro/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
    except urllib.error.HTTPError as error:
        raise DownloadError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
    except (OSError, HTTPException) as error:
        raise NoNetworkError(url, _reason(error)) from None
    return int(length) if length is not None and length.isdigit() else None


def _reason(error: BaseException) -> str:
    """The first line of what went wrong (urllib wraps the socket error in `reason`)."""
    reason = getattr(error, "reason", None) or error
    return str(reason).splitlines()[0] if str(reason) else type(error).__name__


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


def _hub_listing(spec: EncoderSpec) -> tuple[str, dict]:
    """The commit to pin and the hub entries (sizes, hashes) of the files we want from it."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    with _hub_errors(spec):
        api = HfApi(library_name="virnucpro", library_version=__version__)
        commit = api.model_info(spec.repo_id).sha
        listing = {
            entry.path: entry
            for entry in api.list_repo_tree(spec.repo_id, revision=commit)
            if isinstance(entry, RepoFile)
        }
    return commit, {name: listing[name] for name in _wanted_files(spec, listing)}


@contextmanager
def _hub_errors(spec: EncoderSpec):
    """Hub failures as one line; a connection that never opened names the offline route."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    # HfHubHTTPError derives from its HTTP client's base error, which connection failures share.
    client_error = HfHubHTTPError.__mro__[1]
    try:
        yield
    except HfHubHTTPError as error:
        raise DownloadError(
            f"could not fetch {spec.repo_id}: {_reason(error)}; check HF_ENDPOINT / HF_TOKEN"
        ) from None
    except (client_error, LocalEntryNotFoundError) as error:
        raise NoNetworkError(f"{spec.repo_id} from {_hub_endpoint()}", _reason(error)) from None


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _ensure_encoder(
    spec: EncoderSpec, manifest: Manifest, stamps: HashStamps, listing: tuple[str, dict], progress
) -> list[Fetched]:
    local = manifest.root / spec.subdir
    commit, remote = listing
    _fetch_encoder(spec, local, stamps, listing, progress)
    manifest.forget(spec.subdir)
    for name in remote:
        manifest.record(f"{spec.subdir}/{name}", stamps.sha256(local / name))
    manifest.sources[spec.subdir] = {"repo_id": spec.repo_id, "revision": commit}
    return [Fetched(f"{spec.subdir}/{name}", entry.size, "downloaded") for name, entry in remote.items()]


def _fetch_encoder(spec: EncoderSpec, local: Path, stamps: HashStamps, listing: tuple[str, dict], progress) -> None:
    """Download the wanted files at the plan's pinned commit with `fetch_url`, whose `.partial`
    files resume across commands (huggingface_hub 2.x deletes its partial files on failure, so an
    interrupted 11 GB ESM-2 download would start again from zero); a file that arrives with other
    bytes than the hub lists is deleted and fetched once more, then refused."""
    from huggingface_hub import hf_hub_url

    commit, remote = listing
    for _ in range(2):
        for name, entry in remote.items():
            if not _matches_hub(local / name, entry, stamps):
                (local / name).unlink(missing_ok=True)
                fetch_url(hf_hub_url(spec.repo_id, name, revision=commit), local / name, progress)
        corrupt = [name for name, entry in remote.items() if not _matches_hub(local / name, entry, stamps)]
        for name in corrupt:
            (local / name).unlink(missing_ok=True)
        if not corrupt:
            return
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
    if not path.is_file() or path.stat().st_size != entry.size:
        return False  # also a file not (completely) fetched yet
    if entry.lfs is not None:
        return stamps.sha256(path) == entry.lfs.sha256
    blob = hashlib.sha1(b"blob %d\0" % entry.size)
    blob.update(path.read_bytes())
    return blob.hexdigest() == entry.blob_id


def _ensure_classifier(model_type: int, manifest: Manifest, stamps: HashStamps, progress) -> list[Fetched]:
    pth, safetensors = classifier_files(model_type)
    results = []
    if _verified(manifest, pth, stamps):
        results += _present(manifest, pth)
    else:
        _refuse_offline(f"{manifest.root / pth} is missing or damaged")
        url = _classifier_url(pth)
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
    """`models.classifier.convert_classifier`, imported only when a conversion is due (it needs torch)."""
    from virnucpro.models.classifier import convert_classifier as convert

    convert(pth, safetensors, chunk_size)


def fetch_url(url: str, dest: Path, progress: ProgressFactory | None = None) -> None:
    """Download `url` to `dest` via `dest.partial`, resuming with Range requests after drops."""
    partial = dest.with_name(dest.name + ".partial")
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
        kept = ""
        if partial.exists():
            kept = f"; the {partial.stat().st_size:,d} bytes fetched are kept and the next run resumes"
        raise NoNetworkError(url, f"{_reason(last_error)} after {_HTTP_ATTEMPTS} attempts{kept}")
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
        label = f"{partial.parent.name}/{partial.name.removesuffix('.partial')}"  # two config.json: two bars
        advance = progress(label, total) if progress else None
        if advance is not None and offset:
            advance(offset)
        partial.parent.mkdir(parents=True, exist_ok=True)  # only once there are bytes to keep
        with open(partial, "ab" if resumed else "wb") as out:
            while block := response.read(_COPY_BLOCK_BYTES):
                out.write(block)
                if advance is not None:
                    advance(len(block))
    received = partial.stat().st_size
    if total is not None and received != total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")
