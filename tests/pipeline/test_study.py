"""`predict --samples SHEET`: a study in one run, each sample's files byte-identical to a run of it alone."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import READS
from workflow_tools import write_mates
from virnucpro.cli.main import main
from virnucpro.cli.predict_cmd import study_line
from virnucpro.fsutil.hashing import sha256_file

# run.json of a study's sample differs from a single run's only in these (timings, the command line,
# and `inputs`: the sheet's absolute path instead of the path as typed)
RUN_JSON_DIFFERENCES = {"started_at", "finished_at", "command_line", "inputs", "timings_seconds", "throughput",
                        "device_busy_fraction", "stage_busy_fraction", "stream_peak_rss_mib",
                        "stream_rss_mib_timeline", "gpu_utilization"}
# (first read, reads or pairs, paired): a single-end and a paired-end sample mix in one sheet
SAMPLE_SIZES = {"S1": (0, 70, False), "S2": (70, 130, False), "empty": (0, 0, False), "S3": (200, 25, False),
                "P": (300, 40, True)}


def _reads(path: Path, first: int, count: int) -> Path:
    lines = READS.read_text().splitlines()[4 * first: 4 * (first + count)]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def make_study(tmp_path: Path, sizes: dict[str, tuple] = SAMPLE_SIZES) -> Path:
    """A sheet (CSV, nf-core column names, relative paths) of samples cut from the test reads."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    lines = []
    for name, (first, count, *paired) in sizes.items():
        if paired and paired[0]:
            r1, r2 = write_mates(READS, data / f"{name}_1.fq", data / f"{name}_2.fq", first, count)
            lines.append(f"{name},{r1.name},{r2.name}\n")
        else:
            lines.append(f"{name},{_reads(data / f'{name}.fq', first, count).name},\n")
    sheet = data / "sheet.csv"
    sheet.write_text("sample,fastq_1,fastq_2\n" + "".join(lines))
    return sheet


def sample_inputs(sheet: Path, name: str) -> list[str]:
    """The `predict` inputs of one sample of `make_study`'s sheet."""
    if SAMPLE_SIZES[name][2]:
        return [str(sheet.parent / f"{name}_1.fq"), str(sheet.parent / f"{name}_2.fq"), "--paired"]
    return [str(sheet.parent / f"{name}.fq")]


OPTIONS = ("--block-records", "30", "--write-hits", "--save-embeddings")  # every file a run can write


def study_args(sheet: Path, out: Path, model_args: list[str], *extra: str) -> list[str]:
    return ["predict", "--samples", str(sheet), "-o", str(out), *OPTIONS, *model_args, *extra]


def single_args(inputs: list[str], out: Path, model_args: list[str]) -> list[str]:
    return ["predict", *inputs, "-o", str(out), *OPTIONS, *model_args]


def assert_same_sample(study_dir: Path, single_dir: Path) -> None:
    names = sorted(p.name for p in single_dir.iterdir())
    assert sorted(p.name for p in study_dir.iterdir()) == names
    for name in names:
        if name != "run.json":
            assert (study_dir / name).read_bytes() == (single_dir / name).read_bytes(), (study_dir, name)
    ours, alone = (json.loads((d / "run.json").read_text()) for d in (study_dir, single_dir))
    assert {k for k in ours if ours[k] != alone[k]} <= RUN_JSON_DIFFERENCES
    assert ours["counts"] == alone["counts"]


def read_table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def study(tmp_path_factory, model_args) -> tuple[Path, Path]:
    """(sheet, OUTDIR) of one uninterrupted study."""
    tmp = tmp_path_factory.mktemp("study")
    sheet = make_study(tmp)
    assert main(study_args(sheet, tmp / "out", model_args)) == 0
    return sheet, tmp / "out"


def test_each_sample_is_byte_identical_to_running_it_alone(study, tmp_path, model_args):
    sheet, out = study
    for name in SAMPLE_SIZES:
        assert main(single_args(sample_inputs(sheet, name), tmp_path / name, model_args)) == 0
        assert_same_sample(out / name, tmp_path / name)
    assert sorted(p.name for p in out.iterdir()) == sorted([*SAMPLE_SIZES, "samples.tsv", "study.json"])


def test_samples_table_and_study_json(study):
    sheet, out = study
    rows = read_table(out / "samples.tsv")
    assert list(rows[0]) == ["sample", "r1", "r2", "records", "pairs", "virus", "others", "no_call", "too_short",
                             "viral_fraction", "regions", "seconds", "status"]
    assert [row["sample"] for row in rows] == list(SAMPLE_SIZES)
    for row, (name, (_, count, paired)) in zip(rows, SAMPLE_SIZES.items()):
        sequences = read_table(out / name / "sequences.tsv")
        count = 2 * count if paired else count  # mates count separately
        assert row["records"] == str(count) == str(len(sequences))
        assert (row["pairs"], bool(row["r2"])) == ((str(count // 2), True) if paired else ("", False))
        calls = [s["call"] for s in sequences]
        assert [int(row[c]) for c in ("virus", "others", "no_call", "too_short")] == \
            [calls.count(c) for c in ("virus", "others", "no_call", "too_short")]
        assert row["viral_fraction"] == (f"{calls.count('virus') / count:.6g}" if count else "NA")
        assert row["status"] == "done" and float(row["seconds"]) >= 0 and row["r1"] == sample_inputs(sheet, name)[0]
    summary = json.loads((out / "study.json").read_text())
    assert summary["sheet"] == str(sheet) and len(summary["sheet_sha256"]) == 64
    assert summary["model_loads"] == 1 and summary["timings_seconds"]["model_load"] > 0
    assert summary["totals"]["records"] == sum(c * (1 + paired) for _, c, paired in SAMPLE_SIZES.values())
    assert [s["status"] for s in summary["samples"]] == ["done"] * len(SAMPLE_SIZES)
    for entry in summary["samples"]:  # the digests resume and merge check are those of the files
        directory = out / entry["name"]
        assert entry["files"] == {p.name: sha256_file(p) for p in directory.iterdir()}
    line = study_line(summary, out)
    records = summary["totals"]["records"]
    assert line.startswith(f"done: study of 5 samples, {records:,} sequences:") and str(out) in line
    assert not (out / ".virnucpro").exists() and not list(out.glob("*.partial"))


def test_models_load_once_and_the_next_sample_is_built_before_the_last_block_is_written(tmp_path, model_args,
                                                                                     monkeypatch):
    """One load for the study, and one stream: sample 2's first block is already built while sample
    1's last block is still being run, so a device never waits at a sample boundary."""
    import virnucpro.engine.local as local
    import virnucpro.pipeline.study as study_module
    from virnucpro.engine.worker import DeviceWorker
    from virnucpro.pipeline.output_run import OutputRun

    events: list[tuple[str, str, int]] = []
    loads = []
    load_encoders, iter_blocks, write, run_block = (local.load_encoders, study_module.iter_blocks,
                                                     OutputRun.write, DeviceWorker.run_block)

    def counted_load(*args, **kwargs):
        loads.append(1)
        return load_encoders(*args, **kwargs)

    def noted_blocks(records, *args, **kwargs):
        for block in iter_blocks(records, *args, **kwargs):
            events.append(("built", block.records[0].id if block.records else "", block.index))
            yield block

    def slow_run_block(self, block, *args, **kwargs):
        time.sleep(0.3)  # a device slower than the producer, as on a GPU with real models
        return run_block(self, block, *args, **kwargs)

    def noted_write(self, output):
        events.append(("written", self.options.output.name, output.block.index))
        return write(self, output)

    monkeypatch.setattr(local, "load_encoders", counted_load)
    monkeypatch.setattr(study_module, "iter_blocks", noted_blocks)
    monkeypatch.setattr(OutputRun, "write", noted_write)
    monkeypatch.setattr(DeviceWorker, "run_block", slow_run_block)
    sheet = make_study(tmp_path, {"S1": (0, 90), "S2": (90, 60)})
    assert main(study_args(sheet, tmp_path / "out", model_args)) == 0
    assert len(loads) == 1
    first_of_s2 = events.index(("built", _first_id(sheet.parent / "S2.fq"), 0))
    last_of_s1 = max(i for i, event in enumerate(events) if event[:2] == ("written", "S1"))
    assert first_of_s2 < last_of_s1, events


def _first_id(reads: Path) -> str:
    return reads.read_text().split("\n", 1)[0][1:].split()[0]


def test_inputs_and_samples_together_or_neither_is_a_usage_error(tmp_path, model_args, capsys):
    sheet = make_study(tmp_path, {"A": (0, 3)})
    assert main(["predict", str(sheet.parent / "A.fq"), "--samples", str(sheet), "-o", str(tmp_path / "o"),
                 *model_args]) == 2
    assert "INPUT... or --samples SHEET, not both" in capsys.readouterr().err
    assert main(["predict", "-o", str(tmp_path / "o"), *model_args]) == 2
    assert "missing INPUT... (or --samples SHEET)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_bad_sheet_or_a_bad_read_file_is_one_line_before_anything_is_written(tmp_path, model_args, capsys):
    sheet = make_study(tmp_path, {"A": (0, 3), "B": (3, 3)})
    (sheet.parent / "B.fq").write_text("not a fastq\n")
    assert main(study_args(sheet, tmp_path / "o", model_args)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("virnucpro: error:") and "B.fq" in err and len(err.splitlines()) == 1
    sheet.write_text("sample,r1\nstudy.json,A.fq\n")
    assert main(study_args(sheet, tmp_path / "o", model_args)) == 1
    assert "name of a file virnucpro writes" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_paired_options_describe_inputs_not_a_sheet(tmp_path, model_args, capsys):
    sheet = make_study(tmp_path, {"A": (0, 3)})
    assert main(study_args(sheet, tmp_path / "o", model_args, "--paired")) == 2
    assert "with --samples a sample is paired when the sheet gives its r2" in capsys.readouterr().err


def test_a_study_never_overwrites_and_force_removes_exactly_what_it_wrote(study, tmp_path, model_args, capsys):
    sheet, reference = study
    out = tmp_path / "out"
    assert main(study_args(sheet, out, model_args)) == 0
    assert main(study_args(sheet, out, model_args)) == 1
    assert "already exists: use --force" in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")
    (out / "S1" / "mine.txt").write_text("mine")
    (out / "S2" / "sequences.tsv").write_text("edited")
    assert main(study_args(sheet, out, model_args, "--force")) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "S1" / "mine.txt").read_text() == "mine"
    assert (out / "S2" / "sequences.tsv").read_bytes() == (reference / "S2" / "sequences.tsv").read_bytes()
    assert main(study_args(sheet, out, model_args, "--resume")) == 0  # already complete (test_study_finished_resume)
    other = tmp_path / "other"
    (other / "S3").mkdir(parents=True)
    (other / "S3" / "regions.tsv").write_text("not ours")
    assert main(study_args(sheet, other, model_args)) == 1
    assert "regions.tsv already exists and is not from this study (sample S3)" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["S3"]  # refused before anything was written


_KILL_IN_SAMPLE = r'''
import os, signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a shell, even if pytest runs in the background
from virnucpro.pipeline.journal import Journal
sample, blocks, number = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
save = Journal.save
def save_then_signal(self, path):
    save(self, path)
    if Path(path).parent.parent.name == sample and self.blocks_done == blocks:
        os.kill(os.getpid(), number)
Journal.save = save_then_signal
from virnucpro.cli.main import main
sys.argv = ["virnucpro", *sys.argv[4:]]
sys.exit(main())
'''


def kill_in_sample(args: list[str], sample: str, blocks: int, number: int = signal.SIGKILL) -> str:
    """Run the study in a subprocess that sends itself signal `number` right after `sample`'s
    checkpoint of `blocks` blocks; returns its stderr."""
    done = subprocess.run([sys.executable, "-c", _KILL_IN_SAMPLE, sample, str(blocks), str(int(number)), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == (-9 if number == signal.SIGKILL else 130), done.stderr[-2000:]
    return done.stderr


@pytest.mark.parametrize("sample, blocks, number", [
    ("S2", 2, signal.SIGKILL),  # in the middle of sample 2
    ("S2", 2, signal.SIGINT),
    ("S1", 3, signal.SIGKILL),  # sample 1's last block written, its files not yet finished
])
def test_resume_after_a_kill_in_the_middle_of_sample_2(study, tmp_path, model_args, sample, blocks, number):
    sheet, reference = study
    out = tmp_path / "out"
    err = kill_in_sample(study_args(sheet, out, model_args), sample, blocks, number)
    if number == signal.SIGINT:
        assert err.strip() == "virnucpro: interrupted; rerun the same command with --resume to continue"
    assert (out / sample / ".virnucpro" / "journal.json").is_file() and not (out / "samples.tsv").exists()
    if sample == "S2":
        assert (out / "S1" / "sequences.tsv").is_file()
    s1_inode = (out / "S1" / "sequences.tsv").stat().st_ino if sample == "S2" else None
    assert main(study_args(sheet, out, model_args)) == 1  # neither --resume nor --force
    assert main(study_args(sheet, out, model_args, "--resume")) == 0
    if s1_inode is not None:
        assert (out / "S1" / "sequences.tsv").stat().st_ino == s1_inode  # verified and skipped, not redone
    for name in SAMPLE_SIZES:
        for path in (reference / name).iterdir():
            if path.name != "run.json":
                assert (out / name / path.name).read_bytes() == path.read_bytes(), (name, path.name)
    ours, theirs = read_table(out / "samples.tsv"), read_table(reference / "samples.tsv")
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in ours] == \
        [{k: v for k, v in row.items() if k != "seconds"} for row in theirs]
    assert not (out / ".virnucpro").exists()


def test_resume_refuses_a_changed_sheet_or_an_edited_finished_sample(tmp_path, model_args, capsys):
    sheet = make_study(tmp_path, {"A": (0, 40), "B": (40, 90), "C": (130, 5)})
    out = tmp_path / "out"
    kill_in_sample(study_args(sheet, out, model_args), "B", 1)
    original = sheet.read_text()
    for changed, message in [(original.replace("C,C.fq", "D,C.fq"), "sample D added; sample C removed"),
                             (original.replace("B,B.fq", "B,C.fq").replace("C,C.fq", "C,B.fq"),
                              "sample B: r1 was .*B.fq, now .*C.fq")]:
        sheet.write_text(changed)
        assert main(study_args(sheet, out, model_args, "--resume")) == 1
        err = capsys.readouterr().err
        assert "cannot resume the study" in err
        assert __import__("re").search(message, err), err
    sheet.write_text(original)
    journal = out / ".virnucpro" / "study_journal.json"
    kept = journal.read_text()
    journal.write_text(kept.replace('"started": [', '"started": ["C", '))
    assert main(study_args(sheet, out, model_args, "--resume")) == 1
    assert "is not a study journal virnucpro wrote (its checksum does not match" in capsys.readouterr().err
    journal.write_text(kept)
    assert main(study_args(sheet, out, model_args, "--resume", "--threshold", "0.4")) == 1
    assert "threshold changed since it started" in capsys.readouterr().err
    with open(out / "A" / "chunks.tsv", "a") as handle:
        handle.write("x\n")
    assert main(study_args(sheet, out, model_args, "--resume")) == 1
    assert "chunks.tsv of finished sample A changed" in capsys.readouterr().err
    sheet.write_text(original.replace("B,B.fq,\n", ""))  # --force also removes the files of B, no longer listed
    assert main(study_args(sheet, out, model_args, "--threshold", "0.4", "--force")) == 0
    assert list((out / "B").iterdir()) == []
    assert [row["sample"] for row in read_table(out / "samples.tsv")] == ["A", "C"]


def _without_seconds(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_study_shards_merge_into_the_unsharded_study(study, tmp_path, model_args, capsys):
    """Samples are the shard unit: shard K runs samples K-1 mod N, each a plain single run."""
    sheet, reference = study
    shards = [tmp_path / f"shard{k}" for k in (1, 2)]
    for k, shard in enumerate(shards, start=1):
        assert main(study_args(sheet, shard, model_args, "--shard", f"{k}/2")) == 0
    assert sorted(p.name for p in shards[1].iterdir()) == ["S2", "S3", "samples.tsv", "study.json"]
    assert main(["merge", str(shards[0]), "-o", str(tmp_path / "merged")]) == 1
    assert "need shards 1..2 once each; missing [2]" in capsys.readouterr().err
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, shards), "-o", str(merged)]) == 0
    for name in SAMPLE_SIZES:
        assert_same_sample(merged / name, reference / name)
    ours, theirs = read_table(merged / "samples.tsv"), read_table(reference / "samples.tsv")
    assert _without_seconds(ours) == _without_seconds(theirs)
    summary = json.loads((merged / "study.json").read_text())
    assert summary["totals"] == json.loads((reference / "study.json").read_text())["totals"]
    assert main(["merge", *map(str, shards), "-o", str(merged)]) == 1
    assert "already exists: use --force" in capsys.readouterr().err
    kept = (shards[0] / "study.json").read_text()
    hostile = json.loads(kept)
    hostile["samples"][0]["name"] = "../evil"
    (shards[0] / "study.json").write_text(json.dumps(hostile))
    assert main(["merge", *map(str, shards), "-o", str(tmp_path / "m2")]) == 1
    assert "study.json is unusable: sample '../evil' has a bad name or status" in capsys.readouterr().err
    assert not (tmp_path / "evil").exists()
    (shards[0] / "study.json").write_text(kept)
    with open(shards[1] / "S3" / "sequences.tsv", "a") as handle:
        handle.write("tampered\n")
    assert main(["merge", *map(str, shards), "-o", str(merged), "--force"]) == 1
    assert "S3/sequences.tsv changed since its shard wrote it" in capsys.readouterr().err
