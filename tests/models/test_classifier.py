"""The MLP's numbers, our safetensors format, the random fixtures and `convert-classifier`."""

from __future__ import annotations

import pickletools
import zipfile

import pytest
import torch

from virnucpro.cli.main import main
from virnucpro.devtools.random_classifier import (
    random_classifier,
    save_original_pth,
    write_random_classifier,
)
from virnucpro.errors import ModelLoadError
from virnucpro.fsutil.hashing import sha256_file
from virnucpro.models.classifier import (
    ClassifierInfo,
    MLPClassifier,
    load_classifier,
    model_from_state_dict,
    save_classifier_safetensors,
)

INPUT_DIM = 40


@pytest.fixture
def model() -> MLPClassifier:
    return random_classifier(INPUT_DIM, seed=11)


def _features(rows: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, INPUT_DIM, generator=torch.Generator().manual_seed(seed))


def test_state_dict_keys_match_the_published_files(model):
    assert list(model.state_dict()) == [
        "hidden_layer.weight", "hidden_layer.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
        "bn1.running_var", "bn1.num_batches_tracked", "output_layer.weight", "output_layer.bias",
    ]
    assert model.hidden == 512 and model.input_dim == INPUT_DIM and model.bn1.eps == 1e-5


def test_probabilities_equal_a_direct_computation(model):
    x = _features()
    hidden = x @ model.hidden_layer.weight.T + model.hidden_layer.bias
    bn = model.bn1
    hidden = (hidden - bn.running_mean) / torch.sqrt(bn.running_var + 1e-5) * bn.weight + bn.bias
    logits = torch.relu(hidden) @ model.output_layer.weight.T + model.output_layer.bias
    expected = torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True)
    probs = model.probabilities(x)
    assert probs.shape == (16, 2) and probs.dtype == torch.float32
    torch.testing.assert_close(probs, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(16))


def test_probabilities_are_eval_mode_softmax_even_in_train_mode(model):
    x = _features()
    with torch.no_grad():
        expected = torch.softmax(model.eval()(x), dim=1)  # the original's inference
    model.train()
    assert torch.equal(model.probabilities(x), expected)
    assert torch.equal(model.probabilities(x.to(torch.bfloat16)), model.probabilities(x.to(torch.bfloat16).float()))


def test_safetensors_round_trip_keeps_weights_and_metadata(tmp_path, model):
    path = tmp_path / "model.safetensors"
    info = ClassifierInfo(input_dim=INPUT_DIM, hidden=512, dnabert_dim=8, esm_dim=32, chunk_size=300,
                          source_name="x.pth", source_sha256="ab" * 32)
    save_classifier_safetensors(model, path, info)
    loaded, loaded_info = load_classifier(path)
    assert not loaded.training
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor)
    assert loaded_info.file_format == "safetensors" and loaded_info.created_by.startswith("virnucpro ")
    assert (loaded_info.dnabert_dim, loaded_info.esm_dim, loaded_info.chunk_size) == (8, 32, 300)
    assert (loaded_info.source_name, loaded_info.source_sha256) == ("x.pth", "ab" * 32)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_foreign_safetensors_file_is_refused(tmp_path, model):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    with pytest.raises(ModelLoadError, match="not a virnucpro classifier"):
        load_classifier(path)


def test_wrong_keys_are_reported_together(model):
    state = dict(model.state_dict())
    del state["bn1.running_var"]
    state["extra.weight"] = torch.zeros(1)
    state["output_layer.bias"] = torch.zeros(3)
    with pytest.raises(ModelLoadError) as error:
        model_from_state_dict(state, "f.pth")
    message = str(error.value)
    assert "missing: bn1.running_var" in message and "unexpected: extra.weight" in message
    assert "wrong shape: output_layer.bias" in message


@pytest.mark.parametrize("legacy", [False, True])
def test_original_format_writer_pickles_main_mlpclassifier(tmp_path, model, legacy):
    path = tmp_path / "model.pth"
    save_original_pth(model, path, legacy=legacy)
    if legacy:
        assert not zipfile.is_zipfile(path)
    else:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
        names = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
        assert "__main__ MLPClassifier" in names and "torch.nn.modules.batchnorm BatchNorm1d" in names
    import __main__

    assert not hasattr(__main__, "MLPClassifier")  # the temporary registration is undone
    loaded, info = load_classifier(path)
    assert info.file_format == "pth" and info.source_sha256 == sha256_file(path)
    x = _features()
    assert torch.equal(loaded.probabilities(x), model.probabilities(x))


def test_write_random_classifier_writes_both_formats_with_equal_weights(tmp_path):
    write_random_classifier(tmp_path, input_dim=INPUT_DIM, seed=5)
    pth, _ = load_classifier(tmp_path / "classifier.pth")
    ours, info = load_classifier(tmp_path / "classifier.safetensors")
    x = _features()
    assert torch.equal(pth.probabilities(x), ours.probabilities(x))
    assert info.input_dim == INPUT_DIM
    again = tmp_path / "again"
    write_random_classifier(again, input_dim=INPUT_DIM, seed=5)
    repeated, _ = load_classifier(again / "classifier.safetensors")  # same seed, same weights
    assert torch.equal(repeated.probabilities(x), ours.probabilities(x))


def test_published_input_size_records_encoder_dims(tmp_path):
    path = tmp_path / "500_model.pth"
    save_original_pth(random_classifier(3328, seed=1), path)
    _, info = load_classifier(path)
    assert (info.input_dim, info.dnabert_dim, info.esm_dim) == (3328, 768, 2560)


def test_convert_classifier_command(tmp_path, model, capsys):
    source = tmp_path / "300_model.pth"
    save_original_pth(model, source, legacy=True)
    target = tmp_path / "300_model.safetensors"
    assert main(["convert-classifier", str(source), "-o", str(target), "--chunk-size", "300"]) == 0
    converted, info = load_classifier(target)
    assert info.chunk_size == 300 and info.source_name == "300_model.pth"
    assert info.source_sha256 == sha256_file(source)
    x = _features()
    assert torch.equal(converted.probabilities(x), model.probabilities(x))
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize("content", [None, b"garbage"])
def test_convert_classifier_errors_are_one_line(tmp_path, capsys, content):
    source = tmp_path / "in.pth"
    if content is not None:
        source.write_bytes(content)
    target = tmp_path / "out.safetensors"
    assert main(["convert-classifier", str(source), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("virnucpro: error:") and err.count("\n") == 1
    assert not target.exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_probabilities_on_cuda_match_the_cpu(model):
    x = _features(256)
    on_gpu = random_classifier(INPUT_DIM, seed=11).cuda().probabilities(x.to(torch.bfloat16).cuda())
    assert on_gpu.dtype == torch.float32 and on_gpu.device.type == "cuda"
    expected = model.probabilities(x.to(torch.bfloat16))
    torch.testing.assert_close(on_gpu.cpu(), expected, rtol=0, atol=1e-5)


def test_convert_classifier_output_is_reproducible(tmp_path, model):
    """The same .pth gives byte-identical safetensors every time (the metadata keys used to come out
    in a random order)."""
    source = tmp_path / "300_model.pth"
    save_original_pth(model, source, legacy=True)
    outputs = [tmp_path / f"converted{k}.safetensors" for k in range(6)]
    for output in outputs:
        assert main(["convert-classifier", str(source), "-o", str(output), "--chunk-size", "300"]) == 0
    assert len({output.read_bytes() for output in outputs}) == 1
    converted, info = load_classifier(outputs[0])
    assert info.chunk_size == 300 and info.source_name == "300_model.pth"
    x = _features()
    assert torch.equal(converted.probabilities(x), model.probabilities(x))
