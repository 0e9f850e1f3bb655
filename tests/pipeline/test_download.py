"""`virnucpro download` against a fake hub on 127.0.0.1: fetch, resume, corruption, offline mode."""

from __future__ import annotations

import os
import shutil

import pytest
from fake_hub import DNABERT, ESM2, FakeHub, isolated_env, stock_published, use_endpoint  # noqa: F401 (fixture)

from virnucpro.cli.main import main
from virnucpro.models.manifest import Manifest, ModelIntegrityError
from virnucpro.models.registry import resolve_model
from virnucpro.pipeline import download
from virnucpro.pipeline.download import DownloadError, NoNetworkError, download_models, fetch_url

_real_convert = download.convert_classifier

pytestmark = pytest.mark.usefixtures("isolated_env")


def _fake_convert(pth, safetensors, chunk_size):
    shutil.copyfile(pth, safetensors)


@pytest.fixture
def hub(isolated_env, monkeypatch):  # noqa: F811 (isolated first: hub then sets the endpoint)
    with FakeHub() as server:
        stock_published(server)
        use_endpoint(monkeypatch, server.url)
        monkeypatch.setenv("VIRNUCPRO_CLASSIFIER_URL", server.url + "/raw")
        monkeypatch.setattr(download, "convert_classifier", _fake_convert)
        yield server


def test_download_fills_models_dir_with_manifest(hub, tmp_path):
    target = tmp_path / "models"
    fetched = download_models(target, (300, 500))

    names = {item.relative for item in fetched}
    assert "esm2_t36_3B_UR50D/model.safetensors" in names  # safetensors preferred over .bin
    assert "esm2_t36_3B_UR50D/pytorch_model.bin" not in names
    assert not (target / "esm2_t36_3B_UR50D" / "tf_model.h5").exists()
    assert not (target / "dnabert-s" / "bert_layers.py").exists()
    assert (target / "classifiers" / "500_model.pth").read_bytes() == hub.raw["500_model.pth"]
    manifest = Manifest.load(target)
    assert set(manifest.files) == names
    assert manifest.sources["dnabert-s"] == {"repo_id": DNABERT, "revision": hub.commit(DNABERT)}
    assert resolve_model("dnabert", None, 300, models_dir=target) == target / "dnabert-s"
    assert resolve_model("classifier", None, 500, models_dir=target) == target / "classifiers/500_model.safetensors"

    hub.requests.clear()
    again = download_models(target, (300, 500))
    assert {item.action for item in again} == {"present"}
    assert hub.requests == []  # a complete, verified directory needs no network at all


def test_hub_transfer_resumes_after_dropped_connection(hub, tmp_path):
    path = f"/{DNABERT}/resolve/{hub.commit(DNABERT)}/pytorch_model.bin"
    hub.drop_once.add(path)
    download_models(tmp_path / "models", (300,))
    assert hub.gets(path) == [None, "bytes=20000-"]  # half of the 40,000 bytes, then the rest
    assert (tmp_path / "models/dnabert-s/pytorch_model.bin").read_bytes() == hub.repos[DNABERT]["pytorch_model.bin"]


def test_classifier_transfer_resumes_after_dropped_connection(hub, tmp_path):
    hub.drop_once.add("/raw/300_model.pth")
    dest = tmp_path / "300_model.pth"
    fetch_url(hub.url + "/raw/300_model.pth", dest)
    assert hub.gets("/raw/300_model.pth") == [None, "bytes=15000-"]
    assert dest.read_bytes() == hub.raw["300_model.pth"]
    assert not (tmp_path / "300_model.pth.partial").exists()


def test_classifier_resumes_partial_file_from_an_earlier_run(hub, tmp_path):
    data = hub.raw["500_model.pth"]
    (tmp_path / "500_model.pth.partial").write_bytes(data[:1000])
    fetch_url(hub.url + "/raw/500_model.pth", tmp_path / "500_model.pth")
    assert hub.gets("/raw/500_model.pth") == ["bytes=1000-"]
    assert (tmp_path / "500_model.pth").read_bytes() == data


def test_unreachable_hub_is_one_line_error_naming_the_offline_route(hub, tmp_path, monkeypatch):
    use_endpoint(monkeypatch, "http://127.0.0.1:9")
    expected = r"cannot reach the network to fetch zhihan1996/DNABERT-S .*HF_ENDPOINT"
    with pytest.raises(NoNetworkError, match=expected) as caught:
        download_models(tmp_path / "models" / "nested", (300,))
    message = str(caught.value)
    assert "\n" not in message
    assert "virnucpro download --dir DIR" in message and "VIRNUCPRO_MODELS=DIR" in message
    assert not (tmp_path / "models").exists()  # nothing left behind, not even an empty directory


def test_unreachable_classifier_server_leaves_nothing_behind(hub, tmp_path, monkeypatch):
    from virnucpro.cli.main import main

    monkeypatch.setenv("VIRNUCPRO_CLASSIFIER_URL", "http://127.0.0.1:9/raw")
    monkeypatch.setattr(download, "_HTTP_ATTEMPTS", 1)
    assert main(["download", "--dir", str(tmp_path / "models"), "--model-type", "300"]) == 1
    assert not (tmp_path / "models").exists()


def test_download_says_what_how_big_and_where_before_fetching(hub, tmp_path, capsys):
    target = tmp_path / "models"
    assert main(["download", "--dir", str(target), "--model-type", "300"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    size = 40_000 + 50_000 + 30_000 + sum(len(hub.repos[DNABERT][n]) for n in (
        "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")) + sum(
        len(hub.repos[ESM2][n]) for n in ("config.json", "vocab.txt"))
    assert first == (f"fetching DNABERT-S, ESM-2 3B and the 300-bp classifier ({size / 1000:.1f} kB) into {target}")
    assert main(["download", "--dir", str(target), "--model-type", "300"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == f"all models present and verified in {target}"


def test_missing_remote_file_is_one_line_error(hub, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_url(hub.url + "/raw/nothing.pth", tmp_path / "nothing.pth")


def test_lfs_pointer_instead_of_file_is_refused(hub, tmp_path):
    hub.raw["300_model.pth"] = b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n"
    with pytest.raises(DownloadError, match="git-lfs pointer"):
        fetch_url(hub.url + "/raw/300_model.pth", tmp_path / "300_model.pth")


def test_corrupt_hub_transfer_is_detected_and_fetched_again(hub, tmp_path):
    path = f"/{ESM2}/resolve/{hub.commit(ESM2)}/model.safetensors"
    hub.corrupt_once.add(path)
    download_models(tmp_path / "models", (300,))
    assert len(hub.gets(path)) == 2
    local = tmp_path / "models/esm2_t36_3B_UR50D/model.safetensors"
    assert local.read_bytes() == hub.repos[ESM2]["model.safetensors"]


def test_corrupt_local_file_is_detected_then_repaired(hub, tmp_path):
    target = tmp_path / "models"
    download_models(target, (300,))
    weights = target / "dnabert-s" / "pytorch_model.bin"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF
    weights.write_bytes(bytes(data))  # same size: only the sha256 can tell
    os.utime(weights, ns=(1, 1))  # a new mtime forces hashing again

    with pytest.raises(ModelIntegrityError, match="corrupt"):
        resolve_model("dnabert", None, 300, models_dir=target)
    download_models(target, (300,))
    assert resolve_model("dnabert", None, 300, models_dir=target) == target / "dnabert-s"


def test_truncated_local_file_fails_the_cheap_size_check(hub, tmp_path):
    target = tmp_path / "models"
    download_models(target, (300,))
    weights = target / "esm2_t36_3B_UR50D" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelIntegrityError, match="has 100 bytes, the manifest says 50000"):
        resolve_model("esm2", None, 300, models_dir=target, verify=False)


def test_offline_with_complete_models_dir_needs_no_network(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    target = tmp_path / "models"
    download_models(target, (300, 500))
    hub.requests.clear()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert {item.action for item in download_models(target, (300, 500))} == {"present"}
    assert hub.requests == []


def test_offline_without_files_says_what_to_do(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE is set"):
        download_models(tmp_path / "models", (300,))
    assert hub.requests == []


def test_cli_download_converts_real_classifier_and_resolves_through_env(hub, tmp_path, monkeypatch, capsys):
    from virnucpro.devtools.random_classifier import write_random_classifier
    from virnucpro.models.classifier import load_classifier

    write_random_classifier(tmp_path, input_dim=3328, seed=1)
    hub.raw["500_model.pth"] = (tmp_path / "classifier.pth").read_bytes()
    monkeypatch.setattr(download, "convert_classifier", _real_convert)
    target = tmp_path / "copied-models"
    assert main(["download", "--dir", str(target), "--model-type", "500"]) == 0
    out = capsys.readouterr().out
    assert "converted" in out and "classifiers/500_model.safetensors" in out
    assert "classifiers/300_model.pth" not in out

    monkeypatch.setenv("VIRNUCPRO_MODELS", str(target))
    assert resolve_model("esm2", None, 500) == target / "esm2_t36_3B_UR50D"
    _, info = load_classifier(resolve_model("classifier", None, 500))
    assert info.file_format == "safetensors" and info.chunk_size == 500


def test_cli_download_default_dir_comes_from_env(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("VIRNUCPRO_MODELS", str(tmp_path / "from-env"))
    assert main(["download", "--model-type", "300"]) == 0
    assert (tmp_path / "from-env" / "manifest.json").is_file()


def test_real_classifier_conversion(tmp_path):
    from virnucpro.devtools.random_classifier import write_random_classifier
    from virnucpro.models.classifier import load_classifier

    write_random_classifier(tmp_path, input_dim=3328, seed=0)
    download.convert_classifier(tmp_path / "classifier.pth", tmp_path / "classifier.safetensors", 300)
    reference, _ = load_classifier(tmp_path / "classifier.pth")
    converted, info = load_classifier(tmp_path / "classifier.safetensors")
    assert info.chunk_size == 300 and info.source_name == "classifier.pth"
    for key, tensor in reference.state_dict().items():
        assert converted.state_dict()[key].equal(tensor)


def test_a_second_download_into_the_same_dir_waits_then_finds_the_models_present(hub, tmp_path):
    import threading
    import time

    from virnucpro.outputs.rundir_lock import RunDirLock

    ready = tmp_path / "ready"
    download_models(ready, (300,))  # what the first download will have brought
    target, said, result = tmp_path / "models", [], {}
    first = RunDirLock(target, "download", state_dir=target / download.DOWNLOAD_STATE_DIR)
    first.acquire()
    hub.requests.clear()
    second = threading.Thread(
        target=lambda: result.update(fetched=download_models(target, (300,), announce=said.append))
    )
    second.start()
    deadline = time.monotonic() + 20
    while not said and time.monotonic() < deadline:
        time.sleep(0.05)
    assert said and said[0].startswith(f"waiting for another download into {target} (download, PID {os.getpid()}")
    assert second.is_alive()
    shutil.copytree(ready, target, dirs_exist_ok=True)  # the first download finishes ...
    first.release()
    second.join(timeout=20)
    assert {item.action for item in result["fetched"]} == {"present"}  # ... and the second fetches nothing
    transfers = [path for method, path, _ in hub.requests if method == "GET" and not path.startswith("/api/")]
    assert transfers == []
    assert not (target / download.DOWNLOAD_STATE_DIR).exists()


def test_a_download_failing_before_its_first_file_leaves_no_directory(hub, tmp_path, monkeypatch):
    plan = download.plan_download(tmp_path / "a" / "models", (300,))
    hub.repos.pop(DNABERT)  # gone between the listing and the transfer
    with pytest.raises(DownloadError, match="zhihan1996/DNABERT-S"):
        download_models(tmp_path / "a" / "models", (300,), plan=plan)
    assert not (tmp_path / "a").exists()
