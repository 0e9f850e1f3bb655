"""A local stand-in for the Hugging Face Hub and for raw GitHub files, on 127.0.0.1.

It answers what huggingface_hub (2.x) asks for in `snapshot_download` and `HfApi`:
  GET  /api/models/{repo}[/revision/{rev}]   -> {"id", "sha", "siblings"}
  GET  /api/models/{repo}/tree/{rev}         -> [{"type": "file", "path", "size", "oid", "lfs"?}]
  HEAD /{repo}/resolve/{rev}/{file}          -> X-Repo-Commit, ETag, Content-Length
  GET  /{repo}/resolve/{rev}/{file}          -> the bytes, honouring `Range: bytes=N-`
  GET  /raw/{file}                           -> plain files (the published classifiers)
Faults for tests: `drop_once` paths send half the body and close the connection the first time;
`corrupt_once` paths send altered bytes the first time, `corrupt_always` every time.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

LFS_MIN_BYTES = 1024  # files this big are "LFS" files: the tree lists their sha256
DNABERT = "zhihan1996/DNABERT-S"
ESM2 = "facebook/esm2_t36_3B_UR50D"


class FakeHub:
    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.raw: dict[str, bytes] = {}
        self.drop_once: set[str] = set()
        self.corrupt_once: set[str] = set()
        self.corrupt_always: set[str] = set()
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def commit(self, repo_id: str) -> str:
        return hashlib.sha1(repo_id.encode()).hexdigest()

    def gets(self, suffix: str) -> list[str | None]:
        """Range headers of the GET requests whose path ends with `suffix`."""
        return [rng for method, path, rng in self.requests if method == "GET" and path.endswith(suffix)]

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _tree_entry(path: str, data: bytes) -> dict:
    entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
    if len(data) >= LFS_MIN_BYTES:
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


def _handler_for(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def _serve(self, send_body: bool) -> None:
            path = self.path.split("?")[0]
            hub.requests.append((self.command, path, self.headers.get("Range")))
            if path.startswith("/api/models/"):
                return self._api(path.removeprefix("/api/models/"))
            if path.startswith("/raw/"):
                data = hub.raw.get(path.removeprefix("/raw/"))
                return self._bytes(path, data, None, send_body)
            parts = path.lstrip("/").split("/")
            repo_id, filename = "/".join(parts[:2]), "/".join(parts[4:])
            data = hub.repos.get(repo_id, {}).get(filename) if parts[2:3] == ["resolve"] else None
            return self._bytes(path, data, repo_id, send_body)

        def _api(self, rest: str) -> None:
            parts = rest.split("/")
            repo_id = "/".join(parts[:2])
            files = hub.repos.get(repo_id)
            if files is None:
                return self._json({"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})
            if parts[2:3] == ["tree"]:
                return self._json([_tree_entry(name, data) for name, data in sorted(files.items())])
            siblings = [{"rfilename": name} for name in sorted(files)]
            return self._json({"id": repo_id, "sha": hub.commit(repo_id), "siblings": siblings, "private": False})

        def _json(self, obj, status: int = 200, extra: dict | None = None) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _bytes(self, path: str, data: bytes | None, repo_id: str | None, send_body: bool) -> None:
            if data is None:
                return self._json({"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"})
            start = 0
            range_header = self.headers.get("Range")
            if range_header and range_header.startswith("bytes="):
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    return self._json({"error": "range"}, 416)
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            if repo_id is not None:
                etag = _tree_entry("", data).get("lfs", {}).get("oid") or git_blob_sha1(data)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Repo-Commit", hub.commit(repo_id))
            self.end_headers()
            if not send_body:
                return
            body = data[start:]
            if path in hub.corrupt_once or path in hub.corrupt_always:
                hub.corrupt_once.discard(path)
                body = bytes(b ^ 0xFF for b in body)
            if path in hub.drop_once:
                hub.drop_once.discard(path)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


def blob(seed: int, size: int) -> bytes:
    return bytes((seed * 7 + i * 13) % 251 for i in range(size))


def stock_published(hub: FakeHub) -> None:
    """Dummy files in the published layouts (content does not matter for transfers)."""
    hub.repos[DNABERT] = {
        "config.json": b'{"hidden_size": 8}',
        "tokenizer.json": b"{}",
        "tokenizer_config.json": b"{}",
        "special_tokens_map.json": b"{}",
        "pytorch_model.bin": blob(1, 40_000),
        "bert_layers.py": b"# remote code we do not use",
        "README.md": b"readme",
    }
    hub.repos[ESM2] = {
        "config.json": b'{"hidden_size": 4}',
        "vocab.txt": b"<cls>\n<pad>\n",
        "pytorch_model.bin": blob(2, 60_000),
        "model.safetensors": blob(3, 50_000),
        "tf_model.h5": blob(4, 70_000),
    }
    hub.raw["300_model.pth"] = blob(5, 30_000)
    hub.raw["500_model.pth"] = blob(6, 31_000)


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """Private caches, no models dir from the environment, and a hub endpoint nobody listens on."""
    from huggingface_hub import constants

    for name in ("VIRNUCPRO_MODELS", "VIRNUCPRO_CLASSIFIER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "hf-home" / "agents.json"), raising=False)
    use_endpoint(monkeypatch, "http://127.0.0.1:9")  # discard port: nothing here reaches the internet
    return tmp_path


def use_endpoint(monkeypatch, url: str) -> None:
    """Point huggingface_hub at `url`, as HF_ENDPOINT does at import time."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
