"""SIGINT and SIGTERM end a run cleanly: exit exactly 130 / 143, one line on stderr (no traceback, no
"terminate called without an active exception" abort), every time and at every moment of the run,
and `--resume` afterwards gives byte-identical files. Also the pieces that make it so: engine
threads stop between batches and are joined, they never receive signals, a second signal during the
clean-up exits at once.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import uninterrupted_run
from interrupt_driver import assert_same_results, start_paused, wait_for

from virnucpro.cli.interrupts import Interrupted, SignalGuard
from virnucpro.cli.main import main
from virnucpro.engine.threads import lingering, start_thread, stop_point
from virnucpro.pipeline.stream import StreamEngine

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
HINT = "virnucpro: interrupted; rerun the same command with --resume to continue"
# (point, repetitions): points reached by a pause are exact; the others land in a moving process
CPU_POINTS = [("loading", 2), ("model_load", 1), ("mid_block", 2), ("stuck_worker", 1), ("after_block_2", 1),
              ("torn_block_3", 1), ("before_rename", 1), ("before_journal_removed", 1)]
GPU_POINTS = [("warm_up", 2), ("mid_block", 2), ("stuck_worker", 1), ("after_block_2", 1)]


def _args(inputs: list[str], out: Path, model_args: list[str]) -> list[str]:
    # small blocks and batches: a block is many batches, so "mid_block" is mid-block
    return ["predict", *inputs, "-o", str(out), "--block-records", "30", "--batch-tokens", "128",
            "--write-hits", *model_args]


def _interrupt_then_resume(tmp_path: Path, model_args: list[str], reference, point: str, sent: int) -> None:
    inputs, reference_out = reference
    out = tmp_path / "out"
    process = start_paused(point, _args(inputs, out, model_args), tmp_path / "marker")
    sent_at = time.monotonic()
    process.send_signal(sent)
    _, err = process.communicate(timeout=60)
    assert process.returncode == EXIT_CODES[sent], err
    assert err == HINT + "\n", err  # one line: no traceback, no "terminate called", no empty line
    assert time.monotonic() - sent_at < 30
    assert main(_args(inputs, out, model_args) + ["--resume"]) == 0
    assert_same_results(out, reference_out)


@pytest.mark.slow
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("point", "repeats"), CPU_POINTS, ids=[p for p, _ in CPU_POINTS])
def test_signal_at_every_point_exits_cleanly_and_resume_is_byte_identical(tmp_path, model_args, reference,
                                                                          point, repeats, sent):
    for repeat in range(repeats):
        _interrupt_then_resume(tmp_path / str(repeat), model_args, reference, point, sent)


@pytest.mark.parametrize(("point", "sent"), [("mid_block", signal.SIGINT), ("stuck_worker", signal.SIGTERM)],
                         ids=["mid_block-SIGINT", "stuck_worker-SIGTERM"])
def test_signal_while_a_worker_is_inside_torch(tmp_path, model_args, reference, point, sent):
    """The old abort: a worker thread still inside a torch op when the interpreter finalized."""
    _interrupt_then_resume(tmp_path, model_args, reference, point, sent)


@pytest.mark.parametrize("second", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["SIGINT", "SIGTERM"])
def test_second_signal_during_the_clean_up_exits_at_once(tmp_path, model_args, reference, second):
    inputs, reference_out = reference
    out = tmp_path / "out"
    process = start_paused("second_signal", _args(inputs, out, model_args), tmp_path / "marker")
    process.send_signal(signal.SIGINT)
    wait_for((tmp_path / "marker").with_suffix(".cleanup"), process, "the clean-up", timeout=30)
    sent_at = time.monotonic()
    process.send_signal(second)
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - sent_at < 5  # the clean-up it cut short would have slept 600 s
    assert process.returncode == 130, err  # the first signal decides the code
    assert err == HINT + "\n", err
    assert main(_args(inputs, out, model_args) + ["--resume"]) == 0
    assert_same_results(out, reference_out)


def test_engine_stop_joins_a_worker_in_the_middle_of_a_block():
    """One worker fails while the other is inside an endless block: the caller gets the error only
    once both threads are joined, which the endless one allows at its next stop point."""
    inside = threading.Event()

    def work(worker, _block):
        if worker == 0:
            inside.set()
            while True:
                stop_point()  # where DeviceWorker checks: before each batch
                time.sleep(0.01)
        inside.wait(10)
        raise ValueError("bad block")

    begun = time.monotonic()
    with pytest.raises(ValueError, match="bad block"):
        list(StreamEngine(range(3), [0, 1], work).results())
    assert time.monotonic() - begun < 5  # the old stop gave up after 5 s and left the thread running
    assert lingering() == []


def test_engine_threads_never_receive_signals():
    masks = []
    thread = start_thread("mask-probe", lambda: masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    thread.join(5)
    assert {signal.SIGINT, signal.SIGTERM} <= masks[0]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the caller's mask is untouched


def test_guard_raises_in_the_main_thread_and_restores_handlers():
    before = signal.getsignal(signal.SIGTERM)
    guard = SignalGuard("virnucpro: interrupted")
    guard.install()
    try:
        with pytest.raises(Interrupted) as raised:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at the next bytecode, long before this ends
        assert raised.value.exit_code == 143
    finally:
        guard.settle()
        guard.restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_guard_raises_again_when_a_finalizer_swallowed_the_interrupt():
    """Seen in the loop above: SIGTERM while a reader generator was being closed. Python only prints
    an exception raised in a finalizer, and the run went on to exit 0."""

    def records():
        try:
            yield 1
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # the handler raises here, inside the generator's finalizer

    guard = SignalGuard("virnucpro: interrupted")
    guard.install()
    try:
        with pytest.raises(Interrupted):
            next(iter(records()))  # the generator is dropped, and closed, right here
            time.sleep(5)
    finally:
        guard.settle()
        guard.restore()


def test_a_signal_decides_the_exit_code_even_if_something_swallowed_it(monkeypatch, capfd):
    """Third-party code with a bare `except:` could eat the exception: the run then ends normally,
    but the exit code and the line still say it was interrupted."""

    def run_that_swallows(_argv):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except BaseException:  # noqa: BLE001
            pass
        return 0

    monkeypatch.setattr("virnucpro.cli.main._run", run_that_swallows)
    assert main(["predict", "x.fa", "-o", "out"]) == 143
    assert capfd.readouterr().err == HINT + "\n"


def test_guard_leaves_an_ignored_signal_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        guard = SignalGuard("virnucpro: interrupted")
        guard.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        guard.restore()
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="module")
def gpu_model_args(tiny_models) -> list[str]:
    return ["--esm", str(tiny_models / "esm2"), "--dnabert", str(tiny_models / "dnabert-s"),
            "--classifier", str(tiny_models / "classifier.pth"), "--device", "cuda:0", "-q"]


@pytest.fixture(scope="module")
def gpu_reference(tmp_path_factory, gpu_model_args):
    """The inputs and the files of an uninterrupted GPU run."""
    return uninterrupted_run(tmp_path_factory, _args, gpu_model_args)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("point", "repeats"), GPU_POINTS, ids=[p for p, _ in GPU_POINTS])
def test_gpu_signal_at_every_point_exits_cleanly_and_resume_is_byte_identical(tmp_path, gpu_model_args, gpu_reference,
                                                                              point, repeats, sent):
    for repeat in range(repeats):
        _interrupt_then_resume(tmp_path / str(repeat), gpu_model_args, gpu_reference, point, sent)
