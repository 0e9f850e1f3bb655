"""Runs `virnucpro predict` in a subprocess that reaches a chosen moment of the run, writes a marker
file there, and (for most points) pauses, so a test interrupts at exactly that moment, not at a race.

The driver calls the CLI entry point exactly as the `virnucpro` script does (`main()` on sys.argv),
so the process ends the way a user's would.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RESULT_FILES_WITH_REGIONS


_DRIVER = r'''
import os, signal, sys, threading, time
from pathlib import Path
point, marker, args = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a shell, even if pytest runs in the background

def mark(name=point):
    if not marker.exists():
        marker.write_text(name)

def pause():
    mark()
    time.sleep(600)

import torch
import virnucpro.engine.local as local
import virnucpro.pipeline.stream as stream
from virnucpro.engine.worker import DeviceWorker
from virnucpro.outputs.writer import ResultWriter
from virnucpro.pipeline.journal import Journal
from virnucpro.pipeline.output_state import OutputState

def busy_in_torch(seconds, device):
    """Torch ops back to back (the thread spends its time inside C++ with the GIL released)."""
    x = torch.rand(256, 256, device=device)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        x = torch.tanh(x @ x)

def slow_batches_from_block(first, seconds):
    """Every batch of block `first` and later is preceded by `seconds` of torch work."""
    run_block, embed_batch, local = DeviceWorker.run_block, DeviceWorker._embed_batch, threading.local()
    def run_block_noting_index(self, block, *a, **k):
        local.index = block.index
        return run_block(self, block, *a, **k)
    def slow_embed_batch(self, model, batch):
        if local.index >= first:
            mark()
            busy_in_torch(seconds, self.device)
        return embed_batch(self, model, batch)
    DeviceWorker.run_block, DeviceWorker._embed_batch = run_block_noting_index, slow_embed_batch

def pause_at_checkpoint(blocks):
    save = Journal.save
    def save_then_pause(self, path):
        save(self, path)
        if self.blocks_done == blocks:
            pause()
    Journal.save = save_then_pause

if point == "model_load":  # paused where the models would load
    local.load_encoders = lambda *a, **k: pause()
elif point == "loading":  # no pause: the signal lands somewhere in the real model loading
    load_encoders = local.load_encoders
    local.load_encoders = lambda *a, **k: (mark(), load_encoders(*a, **k))[1]
elif point == "warm_up":  # no pause: the signal lands in the real warm-up (torch.compile on a GPU)
    warm_up = local.warm_up
    local.warm_up = lambda *a, **k: (mark(), warm_up(*a, **k))[1]
elif point == "mid_block":  # a worker inside block 3, each batch ~0.4 s of torch work
    slow_batches_from_block(3, 0.4)
elif point == "stuck_worker":  # a worker inside one endless torch loop: it never reaches a stop point
    stream.STOP_SECONDS = 1.0
    slow_batches_from_block(3, 600)
elif point == "after_block_2":
    pause_at_checkpoint(2)
elif point == "torn_block_3":  # rows of block 3 reach the disk, its checkpoint never happens
    checkpoint = ResultWriter.checkpoint
    def flush_then_pause(self):
        if self.calls.total() > 60:
            for handle in self._handles.values():
                handle.flush()
            pause()
        return checkpoint(self)
    ResultWriter.checkpoint = flush_then_pause
elif point in ("before_rename", "between_renames"):
    replace = os.replace
    def replace_with_pause(src, dst):
        if str(src).endswith(".partial"):
            if point == "between_renames":
                replace(src, dst)
            pause()
        replace(src, dst)
    os.replace = replace_with_pause
elif point == "before_journal_removed":
    OutputState.done = lambda self: pause()
elif point == "second_signal":  # paused at block 2's checkpoint, then again while the clean-up closes the files
    pause_at_checkpoint(2)
    close = ResultWriter.close
    def close_slowly(self):
        marker.with_suffix(".cleanup").write_text(point)
        time.sleep(600)
        close(self)
    ResultWriter.close = close_slowly
else:
    sys.exit(f"unknown point {point}")

from virnucpro.cli.main import main
sys.argv = ["virnucpro", *args]
sys.exit(main())
'''


def start_paused(point: str, args: list[str], marker: Path, timeout: float = 240) -> subprocess.Popen:
    """Run predict under the driver; return once it reaches `point` (stderr is piped, as text)."""
    process = subprocess.Popen([sys.executable, "-c", _DRIVER, point, str(marker), *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(marker, process, point, timeout)
    return process


def wait_for(marker: Path, process: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run never reached {what}: {process.communicate()[1][-2000:]}")
        time.sleep(0.02)


def assert_same_results(out: Path, reference_out: Path) -> None:
    for name in RESULT_FILES_WITH_REGIONS:
        assert (out / name).read_bytes() == (reference_out / name).read_bytes(), name
    assert not (out / ".virnucpro").exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".partial")]
