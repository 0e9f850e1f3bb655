"""The allow-list unpickler: genuine torch.save files load, anything that could run code is refused."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from virnucpro.errors import ModelLoadError
from virnucpro.models.classifier import load_classifier
from virnucpro.models.safe_pickle import (
    PickledModule,
    load_pickle_checkpoint,
    module_state_dict,
)

FORMATS = ["zip", "legacy"]


def _save(obj, path: Path, fmt: str) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))
    return path


class _Payload:
    """Pickles as a call of `func(*args)`: what an attacker would put into a checkpoint."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, _Payload]:
    create = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "builtins.eval": _Payload(eval, create),
        "builtins.exec": _Payload(exec, create),
        "subprocess.Popen": _Payload(subprocess.Popen, ["touch", str(marker)]),
        "subprocess.run": _Payload(subprocess.run, ["touch", str(marker)]),
    }


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen", "subprocess.run"])
def test_malicious_checkpoint_is_refused_and_nothing_runs(tmp_path, fmt, name):
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[name]
    # The payload sits after genuine tensors, as it would inside a tampered model file.
    path = _save({"weight": torch.ones(3), "evil": payload}, tmp_path / f"evil.{fmt}", fmt)
    with pytest.raises(ModelLoadError, match="refused") as refused:
        load_pickle_checkpoint(path)
    assert not marker.exists()
    message = str(refused.value)
    assert "\n" not in message and str(path) in message
    assert {"os.system": "posix.system"}.get(name, name).split(".")[-1] in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_malicious_payload_inside_a_whole_module_is_refused(tmp_path, fmt):
    marker = tmp_path / "pwned"
    model = torch.nn.Linear(3, 2)
    model.extra = _Payload(os.system, f"touch {marker}")  # attribute pickled in the module's __dict__
    path = _save(model, tmp_path / "evil_module.pth", fmt)
    with pytest.raises(ModelLoadError, match="posix.system"):
        load_classifier(path)
    assert not marker.exists()


def _zip_with_data_pkl(tmp_path: Path, data_pkl: bytes, genuine: Path | None = None) -> Path:
    """A genuine torch zip file whose data.pkl is replaced by hand-written pickle bytes."""
    genuine = genuine or _save({"w": torch.ones(2)}, tmp_path / "genuine.pth", "zip")
    crafted = tmp_path / "crafted.pth"
    with zipfile.ZipFile(genuine) as source, zipfile.ZipFile(crafted, "w") as target:
        for item in source.infolist():
            content = data_pkl if item.filename.endswith("/data.pkl") else source.read(item)
            target.writestr(item, content)
    return crafted


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_every_pickle_protocol_goes_through_the_allow_list(tmp_path, protocol):
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Payload(os.system, f"touch {marker}"), protocol=protocol)  # GLOBAL / STACK_GLOBAL
    with pytest.raises(ModelLoadError, match="refused"):
        load_pickle_checkpoint(_zip_with_data_pkl(tmp_path, data))
    assert not marker.exists()


def test_inst_opcode_in_a_raw_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "inst.pth"
    path.write_bytes(b"(S'touch " + str(marker).encode() + b"'\nios\nsystem\n.")  # protocol-0 INST
    with pytest.raises(ModelLoadError, match="refused"):
        load_pickle_checkpoint(path)
    assert not marker.exists()


def test_non_storage_persistent_ids_are_refused(tmp_path):
    class Persisting(pickle.Pickler):
        def persistent_id(self, obj):
            return ("module", "anything") if obj == "x" else None

    import io

    buffer = io.BytesIO()
    Persisting(buffer, protocol=2).dump(["x"])
    with pytest.raises(ModelLoadError, match="persistent id"):
        load_pickle_checkpoint(_zip_with_data_pkl(tmp_path, buffer.getvalue()))


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_tensors_and_containers_load(tmp_path, fmt):
    expected = OrderedDict(a=torch.arange(6.0).reshape(2, 3).t(), b=torch.tensor([1, 2], dtype=torch.int64))
    expected["view"] = expected["a"][1:]  # shares a storage with an offset
    path = _save({"state": expected, "names": {"x", "y"}, "n": 3}, tmp_path / "plain.pth", fmt)
    loaded = load_pickle_checkpoint(path)
    assert loaded["names"] == {"x", "y"} and loaded["n"] == 3
    for key, tensor in expected.items():
        assert torch.equal(loaded["state"][key], tensor) and loaded["state"][key].dtype == tensor.dtype
        assert loaded["state"][key].stride() == tensor.stride()


def test_tensor_reaching_past_its_storage_is_refused(tmp_path):
    genuine = _save(torch.ones(4), tmp_path / "t.pth", "zip")
    with zipfile.ZipFile(genuine) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    forged = data.replace(b"K\x04\x85", b"K\x09\x85", 1)  # size (4,) -> (9,)
    assert forged != data
    with pytest.raises(ModelLoadError, match="past the end"):
        load_pickle_checkpoint(_zip_with_data_pkl(tmp_path, forged, genuine))


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04 broken zip"])
def test_garbage_files_give_one_line_errors(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError) as error:
        load_pickle_checkpoint(path)
    assert "\n" not in str(error.value)


def test_truncated_legacy_file_is_an_error(tmp_path):
    path = _save(torch.nn.Linear(8, 4), tmp_path / "legacy.pth", "legacy")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelLoadError):
        load_pickle_checkpoint(path)


_ORIGINAL_SCRIPT = textwrap.dedent('''
    import sys
    import torch
    import torch.nn as nn
    from safetensors.torch import save_file

    class MLPClassifier(nn.Module):
        def __init__(self, input_dim, hidden_dim, num_class):
            super(MLPClassifier, self).__init__()
            self.hidden_layer = nn.Linear(input_dim, hidden_dim)
            self.bn1 = nn.BatchNorm1d(hidden_dim)
            self.relu = nn.ReLU()
            self.dropout = nn.Dropout(0.5)
            self.output_layer = nn.Linear(hidden_dim, num_class)

        def forward(self, x):
            x = self.relu(self.bn1(self.hidden_layer(x)))
            return self.output_layer(self.dropout(x))

    out = sys.argv[1]
    torch.manual_seed(7)
    model = MLPClassifier(24, 512, 2)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # real running statistics, num_batches_tracked = 3
            model(torch.randn(64, 24) * 2 + 0.5)
    model.eval()
    torch.save(model, out + "/zip.pth")
    torch.save(model, out + "/legacy.pth", _use_new_zipfile_serialization=False)
    x = torch.randn(10, 24)
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)
    save_file({**model.state_dict(), "x": x, "probs": probs}, out + "/reference.safetensors")
''')


@pytest.fixture(scope="module")
def original_files(tmp_path_factory):
    """Files written exactly as the original did: torch.save(model) from a script (__main__)."""
    out = tmp_path_factory.mktemp("original")
    script = out / "train_script.py"
    script.write_text(_ORIGINAL_SCRIPT)
    subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=120)
    from safetensors.torch import load_file

    return out, load_file(str(out / "reference.safetensors"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_genuine_original_pickle_loads_exactly(original_files, fmt):
    out, reference = original_files
    obj = load_pickle_checkpoint(out / f"{fmt}.pth", modules=["__main__.MLPClassifier"])
    assert isinstance(obj, PickledModule) and obj.pickled_name == "__main__.MLPClassifier"
    state = module_state_dict(obj)
    assert set(state) == {k for k in reference if k not in ("x", "probs")}
    for key, tensor in state.items():
        assert torch.equal(tensor, reference[key]), key
    model, info = load_classifier(out / f"{fmt}.pth")
    assert info.file_format == "pth" and info.input_dim == 24 and info.hidden == 512
    assert int(model.bn1.num_batches_tracked) == 3
    torch.testing.assert_close(model.probabilities(reference["x"]), reference["probs"], rtol=0, atol=1e-6)


def test_whole_module_class_must_be_allow_listed(original_files):
    out, _ = original_files
    with pytest.raises(ModelLoadError, match="__main__.MLPClassifier"):
        load_pickle_checkpoint(out / "zip.pth")


def test_build_opcode_cannot_alter_the_allow_listed_functions(tmp_path):
    # GLOBAL _rebuild_tensor_v2; state (None, {"_function": set}); BUILD -> would swap the function
    forged = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x09\x00\x00\x00_functionc__builtin__\nset\n"
              b"s\x86b.")
    with pytest.raises(ModelLoadError, match="not a readable"):
        load_pickle_checkpoint(_zip_with_data_pkl(tmp_path, forged))
    genuine = _save({"w": torch.arange(3.0)}, tmp_path / "after.pth", "zip")
    assert torch.equal(load_pickle_checkpoint(genuine)["w"], torch.arange(3.0))


def test_compressed_records_are_refused(tmp_path):
    genuine = _save({"w": torch.zeros(1000)}, tmp_path / "genuine.pth", "zip")
    deflated = tmp_path / "deflated.pth"
    with zipfile.ZipFile(genuine) as source, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, source.read(item))
    with pytest.raises(ModelLoadError, match="compressed record"):
        load_pickle_checkpoint(deflated)


def test_legacy_storage_larger_than_the_file_is_refused(tmp_path):
    path = _save(torch.ones(4), tmp_path / "legacy.pth", "legacy")
    data = path.read_bytes()
    forged = data.replace(b"cpuq\x04K\x04N", b"cpuq\x04J\x00\x00\x00\x40N", 1)  # numel 4 -> 2**30
    assert forged != data
    path.write_bytes(forged)
    with pytest.raises(ModelLoadError, match="more bytes than the whole file"):
        load_pickle_checkpoint(path)


def test_a_module_cycle_is_an_error_not_a_crash(tmp_path):
    model = torch.nn.Sequential()
    model.add_module("loop", model)
    path = _save(model, tmp_path / "cycle.pth", "zip")
    obj = load_pickle_checkpoint(path, modules=["torch.nn.modules.container.Sequential"])
    with pytest.raises(ModelLoadError, match="not a plain tree"):
        module_state_dict(obj)
