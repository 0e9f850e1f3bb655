"""Building the encoders on the meta device runs no initialiser (nn.Embedding's `normal_` on a meta
tensor imported torch._dynamo, 3.9 s of every start on an H200), and the loaded models are the
models of the plain meta build bit for bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from virnucpro.models import dnabert_loader, esm2_loader
from virnucpro.models.dnabert_loader import load_dnabert
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.models.meta_build import build_on_meta

ROOT = Path(__file__).resolve().parents[2]


def _plain_meta(build):
    with torch.device("meta"):
        return build()


def _same(left: torch.nn.Module, right: torch.nn.Module) -> None:
    a, b = left.state_dict(), right.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].device == b[key].device and torch.equal(a[key], b[key]), key


def test_the_models_are_those_of_the_plain_meta_build(tiny_esm2, tiny_dnabert, monkeypatch):
    esm, dnabert = load_esm2(tiny_esm2), load_dnabert(tiny_dnabert)
    monkeypatch.setattr(esm2_loader, "build_on_meta", _plain_meta)
    monkeypatch.setattr(dnabert_loader, "build_on_meta", _plain_meta)
    _same(esm, load_esm2(tiny_esm2))
    _same(dnabert, load_dnabert(tiny_dnabert))
    assert [n for n, b in esm.named_buffers() if b.is_meta] == [] and [n for n, b in dnabert.named_buffers() if b.is_meta] == []


def test_loading_the_encoders_does_not_import_dynamo(tiny_esm2, tiny_dnabert):
    code = ("import sys; from virnucpro.models.esm2_loader import load_esm2;"
            " from virnucpro.models.dnabert_loader import load_dnabert;"
            f" load_esm2({str(tiny_esm2)!r}); load_dnabert({str(tiny_dnabert)!r});"
            " print('torch._dynamo' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_only_meta_tensors_skip_their_initialiser():
    def build():
        meta = torch.nn.Linear(8, 8)
        real = torch.nn.Linear(8, 8, device="cpu")
        return meta, real

    meta, real = build_on_meta(build)
    assert meta.weight.is_meta and not real.weight.is_meta
    assert real.weight.abs().sum() > 0  # initialised as usual
