"""The progress bar in a real terminal (a pseudo-terminal): it shows the loading step, moves batch by
batch inside a block, starts a resumed run at the resumed position, and log lines go above it whole."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from conftest import READS

import virnucpro.pipeline.output_run as output_run_module
from virnucpro.cli.main import main

_ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")
_BAR_STATE = re.compile(r"(\d+\.\d)% ([\d,]+) reads")


def _in_terminal(args: list[str]) -> str:
    """The CLI's terminal output (ANSI codes removed), run in a 250-column pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    env = dict(os.environ, COLUMNS="250", TERM="xterm")
    process = subprocess.Popen([sys.executable, "-m", "virnucpro", *args], stdin=slave, stdout=slave, stderr=slave,
                               env=env)
    os.close(slave)
    output = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            output += data
    finally:
        process.wait(timeout=120)
        os.close(master)
    assert process.returncode == 0, output.decode(errors="replace")[-2000:]
    return _ANSI.sub("", output.decode(errors="replace"))


def _bar_states(text: str) -> list[tuple[float, int]]:
    return [(float(percent), int(reads.replace(",", ""))) for percent, reads in _BAR_STATE.findall(text)]


@pytest.fixture(scope="module")
def reads(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("in") / "reads.fastq"
    path.write_text(READS.read_text())  # 1,000 reads
    return path


def _args(reads: Path, out: Path, models: Path, *extra: str) -> list[str]:
    return ["predict", str(reads), "-o", str(out), "--esm", str(models / "esm2"),
            "--dnabert", str(models / "dnabert-s"), "--classifier", str(models / "classifier.pth"),
            "--device", "cpu", "--batch-tokens", "64", "--threads", "1", *extra]


def _log_lines_are_whole(text: str, models: Path) -> None:
    """Every log line is on a line of its own: nothing of the bar inside it, nothing cut off."""
    lines = [line for segment in text.split("\r\n") for line in segment.split("\r")]
    logged = [line for line in lines if "INFO" in line or "WARNING" in line]
    assert logged
    for line in logged:
        assert "━" not in line and " reads, " not in line, line
    assert any(line.rstrip().endswith(f"model esm2: {models / 'esm2'}") for line in logged)
    assert any(re.search(r"models loaded in [\d.]+ s on cpu \(float32\); ESM-2 attention: .+; DNABERT-S attention: .+",
                         line) for line in logged)


def test_the_bar_shows_loading_then_moves_within_the_first_block(reads, tiny_models, tmp_path):
    text = _in_terminal(_args(reads, tmp_path / "out", tiny_models))  # 1,000 reads: the first block holds all
    assert re.search(r"loading models \([\d.]+ s\)", text)
    inside_the_block = {percent for percent, written in _bar_states(text) if written == 0 and 0 < percent < 100}
    assert len(inside_the_block) >= 10, _bar_states(text)  # redrawn at every batch on the CPU
    assert _bar_states(text)[-1] == (100.0, 1000)
    _log_lines_are_whole(text, tiny_models)


class _Crash(Exception):
    pass


def test_a_resumed_run_starts_at_its_checkpoint(reads, tiny_models, tmp_path, monkeypatch):
    out = tmp_path / "out"
    original, calls = output_run_module.checkpoint, []

    def crashing_checkpoint(*args, **kwargs):
        original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 5:  # blocks of 6, 12, 25, 50 and 100 records: 193 done
            raise _Crash

    monkeypatch.setattr(output_run_module, "checkpoint", crashing_checkpoint)
    with pytest.raises(_Crash):
        main(_args(reads, out, tiny_models, "--block-records", "100", "-q"))
    text = _in_terminal(_args(reads, out, tiny_models, "--block-records", "100", "--resume"))
    states = _bar_states(text)
    assert states[0][1] == 193 and 19.3 <= states[0][0] < 25, states[:5]  # not 0%: the resumed position
    assert states[-1] == (100.0, 1000)
    assert "this session: 807 sequences" in text and "whole run: 1,000 sequences (193 done before the resume)" in text
    _log_lines_are_whole(text, tiny_models)


def test_a_study_has_one_bar_from_its_first_sample_to_its_last(tiny_models, tmp_path):
    from test_study import make_study

    sheet = make_study(tmp_path, {"S1": (0, 150), "S2": (150, 250), "S3": (400, 100)})
    args = _args(sheet, tmp_path / "out", tiny_models, "--block-records", "60")
    args[1:2] = ["--samples", str(sheet)]
    text = _in_terminal(args)
    states = _bar_states(text)
    written = [reads for _, reads in states]
    assert written == sorted(written), states  # one bar over the study: never back to 0 at a new sample
    assert states[-1] == (100.0, 500)
    assert max(percent for percent, reads in states if reads <= 150) < 60  # the fraction is of the whole study
    for stage in ("sample S1, 0/3 samples done", "sample S2, 1/3 samples done", "sample S3, 2/3 samples done",
                  "sample S3, 3/3 samples done"):
        assert stage in text, stage
    assert text.index("sample S1, 0/3") < text.index("sample S2, 1/3") < text.index("sample S3, 2/3")
    _log_lines_are_whole(text, tiny_models)
