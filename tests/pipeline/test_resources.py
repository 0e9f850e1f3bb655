"""Resource limits: a full disk, an out-of-memory device and a long input never lose or corrupt results."""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path

import pytest
import torch
from conftest import RESULT_TABLES, predict_peak_rss_mib

import virnucpro.outputs.writer as writer_module
import virnucpro.pipeline.journal as journal_module
from virnucpro.cli.main import main
from virnucpro.models.dnabert import DnabertS
from virnucpro.models.esm2 import ESM2



def _args(inputs: list[str], out: Path, model_args: list[str]) -> list[str]:
    return ["predict", *inputs, "-o", str(out), "--block-records", "30", *model_args]


def _assert_same_results(out: Path, reference_out: Path) -> None:
    for name in RESULT_TABLES:
        assert (out / name).read_bytes() == (reference_out / name).read_bytes(), name


def _disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FillingDisk:
    """A partial result file on a disk with `space["left"]` bytes free (shared by all files)."""

    def __init__(self, handle, space: dict):
        self._handle = handle
        self._space = space

    def write(self, data: bytes) -> int:
        if len(data) > self._space["left"]:
            raise _disk_full()
        self._space["left"] -= len(data)
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)


def test_full_disk_while_writing_results_then_resume(tmp_path, model_args, reference, monkeypatch, capsys):
    inputs, reference_out = reference
    total = sum((reference_out / name).stat().st_size for name in RESULT_TABLES)
    space = {"left": total // 2}
    open_partial = writer_module._open_partial
    monkeypatch.setattr(writer_module, "_open_partial", lambda *a: _FillingDisk(open_partial(*a), space))
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(_args(inputs, out, model_args)) == 1
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.strip()] == ["virnucpro: error: No space left on device"]
    journal = json.loads((out / ".virnucpro" / "journal.json").read_text())
    assert journal["blocks_done"] >= 1 and not (out / "sequences.tsv").exists()
    monkeypatch.undo()  # space is back
    assert main(_args(inputs, out, model_args) + ["--resume"]) == 0
    _assert_same_results(out, reference_out)


def test_full_disk_while_saving_the_journal_then_resume(tmp_path, model_args, reference, monkeypatch, capsys):
    inputs, reference_out = reference
    saves = []
    write_json = journal_module.write_json_atomic

    def fail_on_third(path, obj):
        saves.append(path)
        if len(saves) == 3:
            raise _disk_full()
        write_json(path, obj)

    monkeypatch.setattr(journal_module, "write_json_atomic", fail_on_third)
    out = tmp_path / "out"
    assert main(_args(inputs, out, model_args)) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert json.loads((out / ".virnucpro" / "journal.json").read_text())["blocks_done"] == 2
    assert [p.name for p in (out / ".virnucpro").iterdir()] == ["journal.json"]  # no temp file left
    monkeypatch.undo()
    assert main(_args(inputs, out, model_args) + ["--resume"]) == 0
    _assert_same_results(out, reference_out)


def _oom_above(model_class: type, max_sequences: int, monkeypatch, calls: list[int]) -> None:
    """Make `model_class.embed` raise a CUDA out-of-memory error for batches above `max_sequences`."""
    embed = model_class.embed

    def embed_or_oom(self, packed):
        sequences = packed.cu_seqlens.numel() - 1
        calls.append(sequences)
        if sequences > max_sequences:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return embed(self, packed)

    monkeypatch.setattr(model_class, "embed", embed_or_oom)


def test_out_of_memory_splits_batches_and_keeps_results(tmp_path, model_args, reference, monkeypatch):
    inputs, reference_out = reference
    esm_calls: list[int] = []
    dnabert_calls: list[int] = []
    _oom_above(ESM2, 3, monkeypatch, esm_calls)
    _oom_above(DnabertS, 5, monkeypatch, dnabert_calls)
    out = tmp_path / "out"
    assert main(_args(inputs, out, model_args)) == 0
    assert max(esm_calls) > 3 and max(dnabert_calls) > 5  # the injected errors did happen
    assert json.loads((out / "run.json").read_text())["counts"]["oom_splits"] > 0
    _assert_same_up_to_float32_rounding(out, reference_out)


def _assert_same_up_to_float32_rounding(out: Path, reference_out: Path) -> None:
    """Smaller batches change the fp32 summation order on the CPU, so scores may move in the last
    float32 bit (seen: 7e-8); every row, ID, count and call must be the same."""
    for name in RESULT_TABLES:
        rows = [line.split("\t") for line in (out / name).read_text().splitlines()]
        expected = [line.split("\t") for line in (reference_out / name).read_text().splitlines()]
        assert len(rows) == len(expected), name
        for row, expected_row in zip(rows, expected):
            for value, expected_value in zip(row, expected_row, strict=True):
                if value != expected_value:
                    assert float(value) == pytest.approx(float(expected_value), abs=1e-6), (name, row)


def test_out_of_memory_on_one_sequence_is_a_one_line_error(tmp_path, model_args, reference, monkeypatch, capsys):
    inputs, _ = reference
    _oom_above(ESM2, 0, monkeypatch, [])
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(_args(inputs, out, model_args)) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "out of GPU memory on a single sequence" in lines[0]
    assert not (out / "sequences.tsv").exists()


def _pooled_reads(path: Path, count: int, pool_size: int = 64) -> None:
    """`count` 150-bp reads with distinct IDs drawn from a pool of distinct sequences: every stage runs
    per record, while in-block deduplication keeps the (slow, CPU) model work small."""
    rng = random.Random(3)
    pool = ["".join(rng.choices("ACGT", k=150)) for _ in range(pool_size)]
    quality = "I" * 150
    with open(path, "w") as handle:
        handle.writelines(f"@read{i}\n{pool[i % pool_size]}\n+\n{quality}\n" for i in range(count))


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_input_size(tmp_path, model_args):
    """10x the reads (5 vs 49 blocks), same peak RSS within a small margin: nothing accumulates per
    record except the duplicate-ID check's 8 bytes. 2M reads by hand: see tests/data/bad/README.md."""
    peaks = {}
    for count in (10_000, 100_000):
        reads = tmp_path / f"reads{count}.fastq"
        _pooled_reads(reads, count)
        peaks[count] = predict_peak_rss_mib(reads, "-o", tmp_path / f"out{count}", "--block-records", "2048", *model_args)
        assert len((tmp_path / f"out{count}" / "sequences.tsv").read_text().splitlines()) == count + 1
    print(f"peak RSS MiB by reads: {peaks}")
    assert peaks[100_000] < 1.1 * peaks[10_000]  # a ratio: the baseline depends on the torch build
    assert peaks[100_000] - peaks[10_000] < 64
