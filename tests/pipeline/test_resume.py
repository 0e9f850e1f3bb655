"""What --resume accepts and refuses: an unfinished run needs --resume or --force, a finished run is
already complete, stdin cannot be resumed, a killed embed resumes. (kill -9 then --resume at every
moment of a predict run, with byte-identical results: test_interruptions.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GENOMES, READS

from virnucpro.cli.main import main


def _inputs(tmp_path: Path) -> list[str]:
    reads = tmp_path / "reads.fastq"
    reads.write_text((READS).read_text())
    return [str(reads), str(GENOMES / "lambda_NC_001416.fa")]


def _predict_args(inputs: list[str], out: Path, model_args: list[str]) -> list[str]:
    return ["predict", *inputs, "-o", str(out), "--block-records", "40", "--write-hits", "--threshold", "0.45",
            *model_args]


def _kill_after_blocks(args: list[str], journal: Path, blocks: int) -> None:
    """Start a real run in a subprocess and SIGKILL it once `blocks` blocks are checkpointed."""
    process = subprocess.Popen([sys.executable, "-m", "virnucpro", *args], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if journal.is_file() and json.loads(journal.read_text() or "{}").get("blocks_done", 0) >= blocks:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_unfinished_run_needs_resume_or_force(tmp_path, model_args, capsys):
    inputs = _inputs(tmp_path)
    out = tmp_path / "out"
    _kill_after_blocks(_predict_args(inputs, out, model_args), out / ".virnucpro" / "journal.json", 1)
    capsys.readouterr()
    assert main(_predict_args(inputs, out, model_args)) == 1
    assert "--resume" in capsys.readouterr().err
    changed = _predict_args(inputs, out, model_args) + ["--resume", "--chunk-size", "500"]
    assert main(changed) == 1
    assert "changed" in capsys.readouterr().err
    assert main(_predict_args(inputs, out, model_args) + ["--force"]) == 0
    assert (out / "sequences.tsv").is_file()


def test_resume_of_a_finished_run_is_already_complete(tmp_path, model_args, capsys):
    """Exit 0, nothing rerun (tests/pipeline/test_study_finished_resume.py: no model load, refusals)."""
    inputs = _inputs(tmp_path)[:1]
    out = tmp_path / "out"
    assert main(_predict_args(inputs, out, model_args)) == 0
    before = (out / "run.json").read_bytes()
    assert main(_predict_args(inputs, out, model_args) + ["--resume"]) == 0
    assert (out / "run.json").read_bytes() == before


def test_stdin_cannot_be_resumed(tmp_path, model_args, capsys):
    assert main(["predict", "-", "-o", str(tmp_path / "o"), "--resume", *model_args]) == 1
    assert "stdin" in capsys.readouterr().err


def test_killed_embed_resumes_to_the_same_parquet(tmp_path, model_args):
    inputs = _inputs(tmp_path)[:1]
    reference = tmp_path / "ref.parquet"
    args = ["embed", *inputs, "--block-records", "40", *model_args]
    assert main(args + ["-o", str(reference)]) == 0
    out = tmp_path / "killed.parquet"
    _kill_after_blocks(args + ["-o", str(out)], tmp_path / "killed.parquet.parts" / "journal.json", 3)
    assert main(args + ["-o", str(out), "--resume"]) == 0
    import pyarrow.parquet as pq

    assert pq.read_table(out).equals(pq.read_table(reference))


@pytest.mark.parametrize("damage", ["edit", "remove", "add"])
def test_a_changed_embedding_part_is_refused(tmp_path, model_args, capsys, damage):
    """The journal records each embedding part's sha256: a resume over a part that was edited,
    removed or planted refuses in one line instead of joining it into the parquet."""
    args = ["embed", *_inputs(tmp_path)[:1], "--block-records", "40", *model_args, "-o", str(tmp_path / "e.parquet")]
    parts = tmp_path / "e.parquet.parts"
    _kill_after_blocks(args, parts / "journal.json", 3)
    kept = sorted(parts.glob("part-*.parquet"))
    assert len(kept) >= 3
    if damage == "edit":
        data = bytearray(kept[1].read_bytes())
        data[len(data) // 2] ^= 1
        kept[1].write_bytes(bytes(data))
    elif damage == "remove":
        kept[0].unlink()
    else:
        (parts / "part-00000000-0000000001.parquet").write_bytes(kept[0].read_bytes())
    capsys.readouterr()
    assert main(args + ["--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("embedding part" in err[0] or "changed since its checkpoint" in err[0]), err
    assert "--force" in err[0]
