"""The package's shape (issue #17): imports only point down the layers, predict.py only orchestrates,
and the pipeline runs on any implementation of the engine interface without knowing which."""

from __future__ import annotations

import re
from pathlib import Path

import virnucpro
from virnucpro.cli.main import main
from virnucpro.engine import backend
from virnucpro.engine.local import LocalEngine
from virnucpro.engine.worker import BlockOutput

from conftest import REAL

PACKAGE = Path(virnucpro.__file__).parent
# lowest first; a module may import from its own layer or a lower one (docs/design.md, "Layers")
LAYERS = ["errors", "fsutil", "io", "outputs", "frames", "tokenize", "models", "devtools", "engine", "pipeline",
          "cli"]


def _upward_imports() -> list[tuple[str, str]]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        layer = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        if layer not in rank:
            continue
        for target in re.findall(r"^\s*(?:from|import) virnucpro\.(\w+)", path.read_text(), re.M):
            if target in rank and rank[target] > rank[layer]:
                found.append((relative.as_posix(), target))
    return found


def test_imports_only_point_down():
    assert _upward_imports() == []


def test_the_engine_does_not_import_the_pipeline():
    for path in (PACKAGE / "engine").glob("*.py"):
        assert "virnucpro.pipeline" not in path.read_text(), path.name


def test_predict_only_orchestrates():
    source = (PACKAGE / "pipeline" / "predict.py").read_text()
    assert len(source.splitlines()) <= 150
    assert "cluster" not in source and '"ray"' not in source  # the engine is chosen in engine/backend.py
    assert not re.search(r"\"[\w.-]+\.(tsv|txt|csv|json|fa|parquet|partial)\"", source)  # OutputPaths names files


class _CountingEngine(LocalEngine):
    """Another implementation of the interface: the local engine with every block counted."""

    def __init__(self, logger):
        super().__init__(logger)
        self.blocks = 0

    def load(self, *args, **kwargs):
        loaded = super().load(*args, **kwargs)
        engine = self

        class Counted:
            def __init__(self, worker):
                self.worker = worker

            def run_block(self, block, want_features=False) -> BlockOutput:
                engine.blocks += 1
                return self.worker.run_block(block, want_features)

        loaded.workers = [Counted(worker) for worker in loaded.workers]
        loaded.watched_devices = []
        return loaded


def test_the_pipeline_runs_on_any_engine_without_asking_which(tmp_path, model_args, monkeypatch):
    reads = [str(REAL / "ERR266411_1.first1000.fastq")]
    args = ["--block-records", "300", *model_args]
    assert main(["predict", *reads, "-o", str(tmp_path / "local"), *args]) == 0
    engines = []

    def counting_engine(kind, address, logger):
        engines.append(_CountingEngine(logger))
        yield engines[-1]

    monkeypatch.setattr(backend, "open_engine", backend.contextmanager(counting_engine))
    from virnucpro.pipeline import predict

    monkeypatch.setattr(predict, "open_engine", backend.open_engine)
    assert main(["predict", *reads, "-o", str(tmp_path / "counted"), *args]) == 0
    assert engines[0].blocks == 7  # 1000 reads in blocks of 300 after the ramp: 18, 37, 75, 150, 300, 300, 120
    for name in ("prediction_results.txt", "sequences.tsv", "chunks.tsv"):
        assert (tmp_path / "counted" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
