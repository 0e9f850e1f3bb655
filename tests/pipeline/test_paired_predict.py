"""`predict R1 R2 --paired` and `predict X --interleaved` end to end: mates scored as ID/1 ID/2,
pairs.tsv by the pooled rule, byte-identical after a kill and --resume, and after shards + merge."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from conftest import READS
from interrupt_driver import start_paused

from virnucpro.cli.main import main

PAIRS = 150
# the tiny random classifier scores chunks near 0.42: this threshold gives virus and others calls
CALLS = ("--threshold", "0.42", "--region-length", "1", "--min-region-length", "0", "--min-region-chunks", "1")
FILES = ("prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv", "viral.fa",
         "regions.tsv", "regions.fa", "virus_summary.tsv", "pairs.tsv")
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def write_mates(directory: Path, pairs: int = PAIRS) -> tuple[str, str, str]:
    """R1, R2 and the interleaved file of `pairs` real reads: mate 2 is the reverse complement of
    the read's second half plus its first half (mates of different content); IDs as Illumina
    writes them (`ID/1`, `ID/2`); the 5th pair's mate 2 is empty (a no_call mate)."""
    lines = READS.read_text().splitlines()[: 4 * pairs]
    r1, r2, interleaved = [], [], []
    for number in range(pairs):
        header, sequence, quality = lines[4 * number][1:].split()[0], lines[4 * number + 1], lines[4 * number + 3]
        base = header.removesuffix("/1")
        half = len(sequence) // 2
        other = (sequence[half:].translate(_COMPLEMENT)[::-1] + sequence[:half]) if number != 4 else ""
        mate1 = f"@{base}/1 1:N:0:ACGT\n{sequence}\n+\n{quality}\n"
        mate2 = f"@{base}/2 2:N:0:ACGT\n{other}\n+\n{quality[:len(other)]}\n"
        r1.append(mate1)
        r2.append(mate2)
        interleaved += [mate1, mate2]
    paths = directory / "R1.fastq", directory / "R2.fastq", directory / "interleaved.fastq"
    for path, text in zip(paths, (r1, r2, interleaved)):
        path.write_text("".join(text))
    return tuple(map(str, paths))


def _args(inputs: list[str], out: Path, model_args: list[str]) -> list[str]:
    """The predict command of this module's reference run (conftest `reference` fixture)."""
    return ["predict", *inputs, "-o", str(out), "--block-records", "30", "--write-hits", *CALLS,
            *_mode(inputs), *model_args]


def _mode(inputs: list[str]) -> list[str]:
    return ["--paired"] if len(inputs) == 2 else ["--interleaved"]


@pytest.fixture(scope="module")
def mates(tmp_path_factory) -> tuple[str, str, str]:
    return write_mates(tmp_path_factory.mktemp("mates"))


@pytest.fixture(scope="module")
def paired_run(mates, model_args, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("paired") / "out"
    assert main(_args(list(mates[:2]), out, model_args)) == 0
    return out


def _same(out: Path, reference: Path) -> None:
    for name in FILES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def _table(path: Path) -> list[dict]:
    header, *rows = (line.split("\t") for line in path.read_text().splitlines())
    return [dict(zip(header, row)) for row in rows]


def test_mates_are_scored_as_id_1_id_2_and_pairs_pool_their_chunks(paired_run):
    sequences = _table(paired_run / "sequences.tsv")
    assert len(sequences) == 2 * PAIRS
    assert [row["sequence_id"][-2:] for row in sequences] == ["/1", "/2"] * PAIRS
    assert not any(row["sequence_id"].endswith("/1/1") for row in sequences)
    scores: dict[str, list[float]] = {}
    for chunk in _table(paired_run / "chunks.tsv"):
        if chunk["virus_score"] != "NA":
            scores.setdefault(chunk["sequence_id"][:-2], []).append(float(chunk["virus_score"]))
    pairs = _table(paired_run / "pairs.tsv")
    assert [row["pair_id"] for row in pairs] == [row["sequence_id"][:-2] for row in sequences[::2]]
    calls = {row["sequence_id"]: row["call"] for row in sequences}
    for row in pairs:
        pooled = scores.get(row["pair_id"], [])
        viral = sum(score >= 0.42 for score in pooled)
        assert (row["mate1_call"], row["mate2_call"]) == (calls[row["mate1_id"]], calls[row["mate2_id"]])
        assert (int(row["n_chunks_scored"]), int(row["n_viral_chunks"])) == (len(pooled), viral)
        assert row["call"] == ("no_call" if not pooled else "virus" if viral / len(pooled) >= 0.5 else "others")
    assert pairs[4]["mate2_call"] == "no_call" and pairs[4]["call"] != "no_call"  # the empty mate 2
    assert {row["call"] for row in pairs} >= {"virus", "others"}
    counts = json.loads((paired_run / "run.json").read_text())["counts"]
    assert counts["records"] == 2 * PAIRS and counts["pairs"] == PAIRS
    assert counts["pair_calls"] == {call: sum(row["call"] == call for row in pairs)
                                    for call in ("virus", "others", "no_call", "too_short")}


def test_interleaved_gives_the_same_files_as_paired(mates, paired_run, model_args, tmp_path):
    out = tmp_path / "out"
    assert main(_args([mates[2]], out, model_args)) == 0
    _same(out, paired_run)


@pytest.mark.parametrize("point", ["after_block_2", "torn_block_3"])
def test_kill_9_then_resume_is_byte_identical(mates, paired_run, model_args, tmp_path, point):
    out = tmp_path / "out"
    args = _args(list(mates[:2]), out, model_args)
    process = start_paused(point, args, tmp_path / "marker")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert (out / "pairs.tsv.partial").is_file() and not (out / "pairs.tsv").exists()
    assert main(args + ["--resume"]) == 0
    _same(out, paired_run)
    assert json.loads((out / "run.json").read_text())["counts"]["pairs"] == PAIRS


def test_shards_and_merge_give_the_unsharded_files(mates, paired_run, model_args, tmp_path, capsys):
    shards = [tmp_path / "shard1", tmp_path / "shard2"]
    for k, shard in enumerate(shards, 1):
        assert main(_args(list(mates[:2]), shard, model_args) + ["--shard", f"{k}/2"]) == 0
    assert 0 < len(_table(shards[1] / "pairs.tsv")) < PAIRS
    assert main(["merge", *map(str, shards), "-o", str(tmp_path / "merged")]) == 0
    _same(tmp_path / "merged", paired_run)
    merged = json.loads((tmp_path / "merged" / "run.json").read_text())["counts"]
    assert merged["pairs"] == PAIRS
    assert merged["pair_calls"] == json.loads((paired_run / "run.json").read_text())["counts"]["pair_calls"]


def test_resume_as_another_pairing_is_refused(mates, model_args, tmp_path, capsys):
    out = tmp_path / "out"
    process = start_paused("after_block_2", _args([mates[2]], out, model_args), tmp_path / "marker")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    capsys.readouterr()
    single = [arg for arg in _args([mates[2]], out, model_args) if arg != "--interleaved"]
    assert main(single + ["--resume"]) == 1
    assert "read layout changed from paired-end, interleaved (--interleaved) to single-end" in capsys.readouterr().err


def test_single_end_runs_write_no_pair_table_and_force_removes_one(mates, paired_run, model_args, tmp_path):
    out = tmp_path / "out"
    (out).mkdir()
    for name in FILES:
        (out / name).write_bytes((paired_run / name).read_bytes())
    single = ["predict", mates[0], "-o", str(out), "--block-records", "30", *model_args]
    assert main(single + ["--force"]) == 0
    assert not (out / "pairs.tsv").exists()
    assert "pairs" not in json.loads((out / "run.json").read_text())["counts"]
    assert _table(out / "sequences.tsv")[0]["sequence_id"].endswith("/1")  # IDs as in the file


def test_the_end_of_run_line_counts_pairs(mates, model_args, tmp_path, capsys):
    args = [arg for arg in _args(list(mates[:2]), tmp_path / "out", model_args) if arg != "-q"]
    assert main(args) == 0
    line = [line for line in capsys.readouterr().err.splitlines() if "done:" in line][0]
    assert f"{2 * PAIRS:,} sequences read" in line and f"{PAIRS:,} pairs:" in line and "(pairs.tsv)" in line


@pytest.mark.parametrize(("extra", "inputs", "message"), [
    (["--paired"], 1, "exactly two inputs"),
    (["--paired"], 3, "exactly two inputs"),
    (["--interleaved"], 2, "exactly one input"),
    (["--paired", "--interleaved"], 2, "use one of them"),
])
def test_usage_errors(mates, model_args, tmp_path, capsys, extra, inputs, message):
    assert main(["predict", *mates[:inputs], "-o", str(tmp_path / "o"), *extra, *model_args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_stdin_for_both_mates_is_a_usage_error(model_args, tmp_path, capsys):
    assert main(["predict", "-", "-", "--paired", "-o", str(tmp_path / "o"), *model_args]) == 2
    assert "the same input" in capsys.readouterr().err


def test_a_desync_is_one_line_before_any_output(mates, model_args, tmp_path, capsys):
    r2 = tmp_path / "R2.fastq"
    lines = Path(mates[1]).read_text().splitlines(True)
    r2.write_text("".join(lines[4:8] + lines[:4] + lines[8:]))  # pairs 1 and 2 swapped in R2
    assert main(["predict", mates[0], str(r2), "--paired", "-o", str(tmp_path / "o"), *model_args]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "record 1" in err and "mate IDs disagree" in err
    assert not (tmp_path / "o").exists()  # refused before the models load


def test_the_report_counts_pairs(paired_run, tmp_path):
    report = tmp_path / "report.html"
    assert main(["plot", str(paired_run), "-o", str(report)]) == 0
    text = report.read_text()
    assert 'id="pairs"' in text and f"<td>read pairs</td><td>{PAIRS:,}</td>" in text


def test_resume_after_r2_changed_is_refused(model_args, tmp_path, capsys):
    r1, r2, _ = write_mates(tmp_path)
    out = tmp_path / "out"
    args = _args([r1, r2], out, model_args)
    process = start_paused("after_block_2", args, tmp_path / "marker")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    text = Path(r2).read_text()
    Path(r2).write_text(text.replace("2:N:0:ACGT", "2:N:0:ACGA", 1))  # same size, other bytes
    capsys.readouterr()
    assert main(args + ["--resume"]) == 1
    err = capsys.readouterr().err
    assert "R2.fastq" in err and "changed" in err
