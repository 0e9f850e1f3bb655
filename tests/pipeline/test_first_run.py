"""A new user's first run: `predict` on a fresh cache fetches the published models (here tiny
random ones served by the loopback fake hub), verifies them and runs, in one command; offline
it never opens a connection; every failure leaves nothing behind."""

from __future__ import annotations

import sys

import pytest
from conftest import reads_and_phix
from fake_hub import DNABERT, ESM2, FakeHub, isolated_env, use_endpoint  # noqa: F401 (fixture)

from virnucpro.cli.main import main
from virnucpro.models.manifest import Manifest, sha256_file
from virnucpro.pipeline import download

pytestmark = pytest.mark.usefixtures("isolated_env")

_connections: list[tuple] | None = None  # while a list, socket connects/lookups are recorded in it


def _record_connections(event: str, args: tuple) -> None:
    if _connections is not None and event in ("socket.connect", "socket.getaddrinfo"):
        _connections.append((event, args))


sys.addaudithook(_record_connections)  # audit hooks cannot be removed: this one only records on demand


@pytest.fixture
def no_connection_allowed():
    """Every socket connect or name lookup made inside the test, through any library."""
    global _connections
    _connections = []
    try:
        yield _connections
    finally:
        _connections = None


@pytest.fixture
def hub(isolated_env, tiny_models, monkeypatch):  # noqa: F811 (isolated first: hub then sets the endpoint)
    """The fake hub serving the tiny models in the published layouts, and the default cache empty."""
    with FakeHub() as server:
        server.repos[DNABERT] = {p.name: p.read_bytes() for p in (tiny_models / "dnabert-s").iterdir()}
        server.repos[ESM2] = {p.name: p.read_bytes() for p in (tiny_models / "esm2").iterdir()}
        server.raw["300_model.pth"] = (tiny_models / "classifier.pth").read_bytes()
        use_endpoint(monkeypatch, server.url)
        monkeypatch.setenv("VIRNUCPRO_CLASSIFIER_URL", server.url + "/raw")
        yield server


@pytest.fixture
def models_dir(isolated_env):  # noqa: F811
    return isolated_env / "xdg-cache" / "virnucpro" / "models"


def _predict(tmp_path, outdir, *extra):
    return main(["predict", *reads_and_phix(tmp_path, reads=20), "-o", str(outdir), "--device", "cpu", *extra])


def _esm_weights_path(hub) -> str:
    return f"/{ESM2}/resolve/{hub.commit(ESM2)}/model.safetensors"


def test_predict_on_a_fresh_cache_downloads_verifies_and_runs(hub, models_dir, tmp_path, capsys):
    assert not models_dir.exists()
    assert _predict(tmp_path, tmp_path / "results") == 0
    err = capsys.readouterr().err
    announced = [line for line in err.splitlines() if "first run: fetching" in line]
    assert len(announced) == 1, err
    assert "DNABERT-S, ESM-2 3B and the 300-bp classifier (" in announced[0]
    assert f"MB) into {models_dir}; later runs use them without network" in announced[0]
    assert (tmp_path / "results" / "sequences.tsv").is_file()
    manifest = Manifest.load(models_dir)
    weights = models_dir / "esm2_t36_3B_UR50D" / "model.safetensors"
    assert manifest.files["esm2_t36_3B_UR50D/model.safetensors"].sha256 == sha256_file(weights)
    assert weights.read_bytes() == hub.repos[ESM2]["model.safetensors"]
    assert "classifiers/300_model.safetensors" in manifest.files  # converted: later loads unpickle nothing
    assert "classifiers/500_model.pth" not in manifest.files  # only what this run needs

    hub.requests.clear()
    assert _predict(tmp_path, tmp_path / "again") == 0
    assert hub.requests == []  # the second run finds everything locally
    assert "first run" not in capsys.readouterr().err


def test_interrupted_download_resumes_in_the_next_command(hub, models_dir, tmp_path, monkeypatch, capsys):
    weights = _esm_weights_path(hub)
    hub.drop_once.update({weights, "/raw/300_model.pth"})  # each transfer drops once, half way
    monkeypatch.setattr(download, "_HTTP_ATTEMPTS", 1)  # and the command gives up at once
    esm_partial = models_dir / "esm2_t36_3B_UR50D" / "model.safetensors.partial"
    pth_partial = models_dir / "classifiers" / "300_model.pth.partial"

    assert _predict(tmp_path, tmp_path / "results") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("virnucpro: error: cannot reach the network to fetch http") and weights in error
    assert "bytes fetched are kept and the next run resumes" in error
    assert not (tmp_path / "results").exists()  # a predict that stopped before its first write leaves nothing
    esm_half = esm_partial.stat().st_size
    assert 0 < esm_half < len(hub.repos[ESM2]["model.safetensors"])

    assert _predict(tmp_path, tmp_path / "results") == 1  # resumes ESM-2, then the classifier drops
    assert hub.gets(weights) == [None, f"bytes={esm_half}-"]
    assert not esm_partial.exists()
    pth_half = pth_partial.stat().st_size
    assert 0 < pth_half < len(hub.raw["300_model.pth"])

    assert _predict(tmp_path, tmp_path / "results") == 0
    assert hub.gets("/raw/300_model.pth") == [None, f"bytes={pth_half}-"]
    assert hub.gets(weights) == [None, f"bytes={esm_half}-"]  # not fetched again
    assert not pth_partial.exists()
    esm_weights = models_dir / "esm2_t36_3B_UR50D" / "model.safetensors"
    assert esm_weights.read_bytes() == hub.repos[ESM2]["model.safetensors"]
    assert (tmp_path / "results" / "sequences.tsv").is_file()


def test_corrupted_download_is_refused_and_never_enters_the_models_dir(hub, models_dir, tmp_path, capsys):
    hub.corrupt_always.add(_esm_weights_path(hub))
    assert _predict(tmp_path, tmp_path / "results") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == "virnucpro: error: ESM-2 3B: model.safetensors differ from the hub's checksums twice; try again"
    assert not (models_dir / "esm2_t36_3B_UR50D" / "model.safetensors").exists()
    manifest = Manifest.load(models_dir)
    assert not manifest.under("esm2_t36_3B_UR50D")  # what was verified (DNABERT-S) is kept for the next try
    assert manifest.under("dnabert-s")
    assert not (tmp_path / "results").exists()


def test_corrupted_local_file_is_refused_before_any_write(hub, models_dir, tmp_path, capsys):
    assert _predict(tmp_path, tmp_path / "results") == 0
    weights = models_dir / "dnabert-s" / "pytorch_model.bin"
    data = bytearray(weights.read_bytes())
    data[1000] ^= 0xFF
    weights.write_bytes(bytes(data))  # same size: only the sha256 against the manifest can tell
    capsys.readouterr()
    assert _predict(tmp_path, tmp_path / "nested" / "second") == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{weights} is corrupt (sha256 differs from the manifest)" in error
    assert not (tmp_path / "nested").exists()


def test_offline_never_opens_a_connection_and_says_how_to_bring_models(
    hub, models_dir, tmp_path, capsys, monkeypatch, no_connection_allowed
):
    from huggingface_hub import constants

    assert _predict(tmp_path, tmp_path / "results", "--offline") == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.startswith("virnucpro: error: DNABERT-S, ESM-2 3B and the 300-bp classifier not found in")
    assert "virnucpro download --dir DIR" in error and "VIRNUCPRO_MODELS=DIR" in error
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # HF_HUB_OFFLINE=1 is the same promise
    assert _predict(tmp_path, tmp_path / "results") == 1
    assert "offline mode" in capsys.readouterr().err
    assert no_connection_allowed == [] and hub.requests == []
    assert not (tmp_path / "results").exists() and not models_dir.exists()


def test_offline_with_models_present_runs_without_network(hub, tmp_path, capsys, no_connection_allowed):
    assert _predict(tmp_path, tmp_path / "online") == 0
    assert no_connection_allowed  # the first run did connect (the recorder works) ...
    no_connection_allowed.clear()  # ... the offline one must not
    hub.requests.clear()
    assert _predict(tmp_path, tmp_path / "offline", "--offline") == 0
    assert no_connection_allowed == [] and hub.requests == []


def test_no_network_is_one_line_naming_the_offline_route(hub, models_dir, tmp_path, monkeypatch, capsys):
    use_endpoint(monkeypatch, "http://127.0.0.1:9")
    assert _predict(tmp_path, tmp_path / "results") == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.startswith("virnucpro: error: cannot reach the network to fetch zhihan1996/DNABERT-S")
    assert "virnucpro download --dir DIR" in error and "VIRNUCPRO_MODELS=DIR" in error
    assert not (tmp_path / "results").exists() and not models_dir.exists()


@pytest.mark.parametrize("wrong", [["--threads", "100000"], ["--precision", "bf16"]])
def test_wrong_options_are_refused_before_anything_is_downloaded(hub, models_dir, tmp_path, capsys, wrong):
    assert _predict(tmp_path, tmp_path / "results", *wrong) == 1
    assert capsys.readouterr().err.startswith(f"virnucpro: error: {wrong[0]}")
    assert hub.requests == [] and not models_dir.exists() and not (tmp_path / "results").exists()


def test_embed_fetches_too(hub, models_dir, tmp_path):
    out = tmp_path / "emb" / "frames.parquet"
    assert main(["embed", *reads_and_phix(tmp_path, reads=5), "-o", str(out), "--device", "cpu", "-q"]) == 0
    assert out.is_file() and (models_dir / "manifest.json").is_file()


def test_user_models_are_never_downloaded(hub, tiny_models, models_dir, tmp_path):
    args = ["--esm", str(tiny_models / "esm2"), "--dnabert", str(tiny_models / "dnabert-s"), "-q"]
    assert _predict(tmp_path, tmp_path / "results", *args) == 0
    assert set(Manifest.load(models_dir).files) == {"classifiers/300_model.pth", "classifiers/300_model.safetensors"}
    assert [path for _, path, _ in hub.requests if path.startswith("/api/")] == []


def test_a_predict_stopped_before_its_first_write_leaves_nothing(tmp_path, tiny_models, capsys):
    missing = tmp_path / "does-not-exist.pth"
    args = ["--esm", str(tiny_models / "esm2"), "--dnabert", str(tiny_models / "dnabert-s"),
            "--classifier", str(missing)]
    assert _predict(tmp_path, tmp_path / "a" / "results", *args) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # neither results/ nor results/.virnucpro/ nor a/


def test_version_names_torch_cuda_and_where_models_are_looked_for(tmp_path, monkeypatch, capsys):
    import torch

    from virnucpro import __version__
    from virnucpro.models.registry import default_models_dir, hf_cache_dir

    monkeypatch.setenv("VIRNUCPRO_MODELS", str(tmp_path))
    assert main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"virnucpro {__version__}"
    cuda = "CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build"
    assert lines[1].startswith("python ") and f"torch {torch.__version__} ({cuda}" in lines[1]
    assert lines[2] == (f"models looked for in: {tmp_path} (VIRNUCPRO_MODELS), then {default_models_dir()},"
                        f" then {hf_cache_dir()} (Hugging Face cache)")
