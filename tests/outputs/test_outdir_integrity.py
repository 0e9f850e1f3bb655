"""The output directory belongs to one run: a lock, no writes through links or over foreign files,
inputs never destroyed, --force cleans exactly virnucpro's names, outputs follow the umask."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import GENOMES, reads_and_phix

from virnucpro.cli.main import main
from virnucpro.errors import VirnucproError
from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.fsutil.safe_files import OutputClobberError, open_exclusive
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.rundir_lock import LOCK_NAME, RunDirLock

PHIX = str(GENOMES / "phiX174_NC_001422.fa")


def _predict(inputs, out: Path, model_args, *extra) -> int:
    return main(["predict", *map(str, inputs), "-o", str(out), "--block-records", "40", *model_args, *extra])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("virnucpro: error: "), err
    return err


# ---------------------------------------------------------------- 2. one run per output directory


def test_a_second_run_into_a_held_outdir_is_refused_naming_the_holder(tmp_path, model_args, capsys):
    out = tmp_path / "out"
    with RunDirLock(out, "predict"):
        assert _predict([PHIX], out, model_args) == 1
        error = _one_line_error(capsys)
        assert f"PID {os.getpid()}" in error and "started" in error and "predict" in error
        assert sorted(p.name for p in out.iterdir()) == [".virnucpro"]  # the refused run wrote nothing
        assert _predict([PHIX], out, model_args, "--force") == 1  # --force does not break the lock either
    assert _predict([PHIX], out, model_args) == 0
    assert not (out / ".virnucpro").exists()  # the lock goes with the run


def test_embed_and_merge_take_the_same_lock(tmp_path, model_args, capsys):
    parquet = tmp_path / "emb.parquet"
    with RunDirLock(parquet, "embed", state_dir=tmp_path / "emb.parquet.parts"):
        assert main(["embed", PHIX, "-o", str(parquet), *model_args]) == 1
        assert "in use by another virnucpro run (embed" in _one_line_error(capsys)
    assert main(["embed", PHIX, "-o", str(parquet), *model_args]) == 0
    assert not (tmp_path / "emb.parquet.parts").exists()

    shard, merged = tmp_path / "shard", tmp_path / "merged"
    shard.mkdir()
    with RunDirLock(merged, "predict"):
        assert main(["merge", str(shard), "-o", str(merged)]) == 1
        assert "in use" in _one_line_error(capsys)
    assert main(["merge", str(shard), "-o", str(merged)]) == 1
    assert "not a finished shard" in _one_line_error(capsys)
    assert not (merged / ".virnucpro").exists()


def test_a_lock_left_by_a_killed_run_blocks_nothing(tmp_path, model_args):
    out = tmp_path / "out"
    code = f"from virnucpro.outputs.rundir_lock import RunDirLock; RunDirLock({str(out)!r}, 'predict').acquire()"
    killer = "; import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert subprocess.run([sys.executable, "-c", code + killer]).returncode == -signal.SIGKILL
    assert (out / ".virnucpro" / LOCK_NAME).is_file()
    (out / "sequences.tsv.partial").write_text("rows of the killed run\n")  # killed before its first checkpoint
    assert _predict([PHIX], out, model_args, "--resume") == 0
    assert (out / "sequences.tsv").read_text().count("\n") == 2


def test_a_linked_state_dir_or_lock_file_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ".virnucpro").symlink_to(elsewhere)
    with pytest.raises(VirnucproError, match="symbolic link"):
        RunDirLock(tmp_path / "a", "predict").acquire()
    (tmp_path / "b" / ".virnucpro").mkdir(parents=True)
    (tmp_path / "b" / ".virnucpro" / LOCK_NAME).symlink_to(elsewhere / "lock")
    with pytest.raises(VirnucproError, match="symbolic link"):
        RunDirLock(tmp_path / "b", "predict").acquire()
    assert not list(elsewhere.iterdir())


# ---------------------------------------------------------------- 3. no writes through links, no clobbering


def test_a_planted_partial_symlink_is_refused_and_its_target_untouched(tmp_path, model_args, capsys):
    out, victim = tmp_path / "out", tmp_path / "precious.txt"
    out.mkdir()
    victim.write_text("keep me\n")
    (out / "prediction_results.txt.partial").symlink_to(victim)
    assert _predict([PHIX], out, model_args) == 1
    assert "symbolic link" in _one_line_error(capsys)
    assert victim.read_text() == "keep me\n"
    assert _predict([PHIX], out, model_args, "--force") == 0  # removes the link, never its target
    assert victim.read_text() == "keep me\n"
    assert not (out / "prediction_results.txt").is_symlink()


def test_a_foreign_file_with_one_of_our_names_needs_force(tmp_path, model_args, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "chunks.tsv").write_text("somebody else's table\n")
    assert _predict([PHIX], out, model_args) == 1
    assert "chunks.tsv already exists" in _one_line_error(capsys)
    assert (out / "chunks.tsv").read_text() == "somebody else's table\n"
    assert _predict([PHIX], out, model_args, "--force") == 0


def test_a_linked_outdir_is_fine(tmp_path, model_args):
    target = tmp_path / "real-out"
    target.mkdir()
    (tmp_path / "out").symlink_to(target)
    assert _predict([PHIX], tmp_path / "out", model_args) == 0
    assert (target / "sequences.tsv").is_file()


def test_exclusive_creation_refuses_links_and_existing_files(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("x")
    (tmp_path / "link").symlink_to(victim)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("link", "dangling", "victim"):
        with pytest.raises(OutputClobberError):
            open_exclusive(tmp_path / name)
    assert victim.read_text() == "x" and not (tmp_path / "nowhere").exists()
    write_json_atomic(tmp_path / "link", {"a": 1})  # replaces the link itself
    assert victim.read_text() == "x" and not (tmp_path / "link").is_symlink()


# ---------------------------------------------------------------- 4. an input is never destroyed


def test_an_input_that_is_an_output_name_is_refused_even_with_force(tmp_path, model_args, capsys):
    out = tmp_path / "out"
    out.mkdir()
    viral = out / "viral.fa"
    viral.write_text(Path(PHIX).read_text())
    assert _predict([viral], out, model_args, "--force", "--write-hits") == 1
    assert "input" in _one_line_error(capsys)
    assert viral.read_text() == Path(PHIX).read_text()

    reads = tmp_path / "reads.fa"
    reads.write_text(Path(PHIX).read_text())
    os.link(reads, out / "run.json")  # the same file under another name
    assert _predict([reads], out, model_args, "--force") == 1
    assert "run.json" in _one_line_error(capsys)
    assert reads.read_text() == Path(PHIX).read_text()


def test_embed_refuses_its_input_as_output(tmp_path, model_args, capsys):
    data = tmp_path / "x.fa"
    data.write_text(Path(PHIX).read_text())
    assert main(["embed", str(data), "-o", str(data), "--force", *model_args]) == 1
    assert "input" in _one_line_error(capsys)
    assert data.read_text() == Path(PHIX).read_text()


# ---------------------------------------------------------------- 5. --force means a clean directory


def test_force_removes_every_file_of_an_earlier_run_and_nothing_else(tmp_path, model_args):
    out, victim = tmp_path / "out", tmp_path / "precious.html"
    out.mkdir()
    victim.write_text("keep me\n")
    for name in ("shard.json", "viral.fa", "embeddings.parquet", "sequences.tsv", "chunks.tsv.partial"):
        (out / name).write_text("old\n")
    (out / "embeddings.parquet.parts").mkdir()
    (out / "embeddings.parquet.parts" / "part-00000000.parquet").write_text("old\n")
    (out / "report.html").symlink_to(victim)
    (out / "notes.txt").write_text("the user's\n")
    (out / "mine").mkdir()
    (out / "mine" / "sequences.tsv").write_text("the user's\n")
    assert _predict([PHIX], out, model_args, "--force") == 0
    expected = {"prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv",
                "regions.tsv", "virus_summary.tsv", "run.json", "notes.txt", "mine"}
    assert {p.name for p in out.iterdir()} == expected
    assert victim.read_text() == "keep me\n" and (out / "mine" / "sequences.tsv").read_text() == "the user's\n"


def test_resume_with_force_is_a_one_line_usage_error(tmp_path, model_args, capsys):
    assert _predict([PHIX], tmp_path / "out", model_args, "--resume", "--force") == 2
    assert "--resume" in capsys.readouterr().err.strip()
    assert not (tmp_path / "out").exists()


def test_plot_refuses_an_unfinished_run(tmp_path, model_args, capsys):
    out = tmp_path / "out"
    assert _predict([PHIX], out, model_args) == 0
    journal = OutputPaths(out).journal
    journal.parent.mkdir()
    journal.write_text("{}")
    capsys.readouterr()
    assert main(["plot", str(out)]) == 1
    assert "did not finish" in _one_line_error(capsys)
    journal.unlink()
    assert main(["plot", str(out)]) == 0
    capsys.readouterr()
    (out / "sequences.tsv").unlink()
    assert main(["plot", str(out)]) == 1
    assert "no finished run" in _one_line_error(capsys)


# ---------------------------------------------------------------- 11. outputs follow the umask


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in directory.iterdir() if p.is_file()}


def test_every_output_follows_the_umask(tmp_path, model_args, umask):
    out = tmp_path / "out"
    assert _predict(reads_and_phix(tmp_path, 20), out, model_args, "--write-hits", "--save-embeddings",
                    "--shard", "1/1") == 0
    assert main(["plot", str(out)]) == 0
    modes = _modes(out)
    assert {"run.json", "shard.json", "report.html", "embeddings.parquet", "viral.fa"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, modes


def _embed_parquet(path: Path, prefix: str, shift: float) -> str:
    rng = np.random.default_rng(len(prefix))
    ids = [f"{prefix}{i}_chunk_1F1" for i in range(30)]
    rows = rng.normal(shift, 1.0, size=(30, 8)).astype(np.float32)
    pq.write_table(pa.table({"id": ids, "dnabert": [r[:4].tolist() for r in rows],
                             "esm": [r[4:].tolist() for r in rows]}), path)
    return str(path)


def test_train_outputs_follow_the_umask(tmp_path, umask):
    virus = _embed_parquet(tmp_path / "v.parquet", "phage", 2.0)
    others = _embed_parquet(tmp_path / "o.parquet", "bact", -2.0)
    out = tmp_path / "trained"
    out.mkdir()
    assert main(["train", "--virus", virus, "--others", others, "-o", str(out / "model.safetensors"),
                 "--epochs", "1"]) == 0
    assert _modes(out) == {"model.safetensors": 0o666 & ~umask, "model.metrics.json": 0o666 & ~umask}
