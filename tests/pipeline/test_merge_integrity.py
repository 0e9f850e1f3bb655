"""merge accepts only the complete, untouched shards of one run (issue #15 point 7): mixed N, file names
from shard.json, malformed shard.json, torn or edited shard files, missing blocks and an existing
output without --force are each refused with one line, and nothing is written (or read) elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import reads_and_phix

from virnucpro.cli.main import main

FILES = ("prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv", "viral.fa",
         "regions.tsv", "regions.fa", "virus_summary.tsv")
_opened: list[str] | None = None  # files opened while a test records them (see _recording_opens)


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, os.PathLike)):
        _opened.append(os.path.abspath(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one is idle unless _opened is a list


@pytest.fixture(scope="module")
def runs(tmp_path_factory, model_args) -> Path:
    """single/ (one run), s1of2, s2of2, s1of3, s2of3, s3of3 (shards of the same run)."""
    root = tmp_path_factory.mktemp("runs")
    inputs = reads_and_phix(root)
    base = ["--block-records", "20", "--write-hits", *model_args]
    assert main(["predict", *inputs, "-o", str(root / "single"), *base]) == 0
    for n in (2, 3):
        for k in range(1, n + 1):
            assert main(["predict", *inputs, "-o", str(root / f"s{k}of{n}"), "--shard", f"{k}/{n}", *base]) == 0
    return root


@pytest.fixture
def shards(runs, tmp_path) -> list[Path]:
    """Copies of the three shards of the 3-way run (free to damage)."""
    copies = []
    for k in (1, 2, 3):
        shutil.copytree(runs / f"s{k}of3", tmp_path / f"s{k}")
        copies.append(tmp_path / f"s{k}")
    return copies


def _merge(dirs: list[Path], out: Path, *extra: str) -> int:
    return main(["merge", *map(str, dirs), "-o", str(out), *extra])


def _refused(dirs: list[Path], out: Path, capsys, *phrases: str) -> str:
    capsys.readouterr()
    assert _merge(dirs, out) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("virnucpro: error: "), err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert not out.exists() or not [p for p in out.iterdir() if p.name.startswith(FILES)], list(out.iterdir())
    return lines[0]


def _edit_log(shard: Path, edit) -> None:
    path = shard / "shard.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_the_three_shards_merge_to_the_single_run(runs, shards, tmp_path):
    out = tmp_path / "merged"
    assert _merge(shards[::-1], out) == 0
    for name in FILES:
        assert (out / name).read_bytes() == (runs / "single" / name).read_bytes(), name
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "run.json"])


def test_shards_of_different_n_are_refused(runs, tmp_path, capsys):
    dirs = [runs / "s1of3", runs / "s2of2", runs / "s3of3"]
    _refused(dirs, tmp_path / "out", capsys, "s2of2 is shard 2/2", "s1of3 is 1/3")


def test_a_shard_twice_or_missing_is_refused(runs, tmp_path, capsys):
    _refused([runs / "s1of3", runs / "s1of3", runs / "s3of3"], tmp_path / "out", capsys, "missing [2]",
             "duplicated [1]")
    _refused([runs / "s1of3", runs / "s3of3"], tmp_path / "out", capsys, "missing [2]")


@pytest.mark.parametrize("where", ["start_offsets", "ends"])
def test_file_names_from_shard_json_are_refused_and_nothing_outside_is_touched(shards, tmp_path, capsys, where):
    def rename(data):
        target = data["start_offsets"] if where == "start_offsets" else data["blocks"][0]["ends"]
        target["../x"] = target.pop("chunks.tsv")

    _edit_log(shards[0], rename)
    (tmp_path / "x").write_bytes(b"not a shard file\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    global _opened
    _opened = []
    try:
        _refused(shards, tmp_path / "out", capsys, "shard.json is unusable", where)
    finally:
        opened, _opened = _opened, None
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert str(tmp_path / "x") not in opened
    lock = str(tmp_path / "out" / ".virnucpro" / "lock")  # merge's own output lock, removed at the end
    read = [p for p in opened if p.startswith(str(tmp_path)) and p != lock]
    assert read == [str(s / "shard.json") for s in shards[:1]]


MALFORMED = {
    "index as text": (lambda d: d["blocks"][0].update(index=str(d["blocks"][0]["index"])), "index is not an integer"),
    "negative start offset": (lambda d: d["start_offsets"].update({"chunks.tsv": -1}), "out of range"),
    "ends going back": (lambda d: d["blocks"][1]["ends"].update({"chunks.tsv": 5}), "goes back"),
    "index of another shard": (lambda d: d["blocks"][0].update(index=1), "does not belong to shard 1/3"),
    "indexes not increasing": (lambda d: d["blocks"].reverse(), "index is out of range"),
    "missing key": (lambda d: d.pop("sha256"), "lacks sha256"),
    "another version": (lambda d: d.update(version=1), "another virnucpro version"),
    "unfinished": (lambda d: d.update(sha256=None), "checksums of a finished shard"),
    "huge of": (lambda d: d.update(of=10**40), "out of range"),
    "shard not in 1..of": (lambda d: d.update(shard=4), "not a valid K/N"),
    "blocks not a list": (lambda d: d.update(blocks={}), "blocks is not a JSON list"),
    "record counts overlap": (lambda d: d["blocks"][1].update(first_record=0), "first_record is out of range"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_shard_json_is_one_line(shards, tmp_path, capsys, case):
    edit, phrase = MALFORMED[case]
    _edit_log(shards[0], edit)
    _refused(shards, tmp_path / "out", capsys, "shard.json is unusable", phrase)


@pytest.mark.parametrize("content", ["", "[1]", "{", "[" * 100_000])
def test_an_unreadable_shard_json_is_one_line(shards, tmp_path, capsys, content):
    (shards[1] / "shard.json").write_text(content)
    _refused(shards, tmp_path / "out", capsys, "s2/shard.json is unusable")


def test_an_offset_beyond_the_shard_file_is_refused(shards, tmp_path, capsys):
    _edit_log(shards[2], lambda d: d["blocks"][-1]["ends"].update({"sequences.tsv": 10**9}))
    _refused(shards, tmp_path / "out", capsys, "s3/sequences.tsv has", "says 1000000000")


@pytest.mark.parametrize("damage", ["truncate", "edit"])
def test_a_torn_or_edited_shard_file_is_refused(shards, tmp_path, capsys, damage):
    path = shards[1] / "chunks.tsv"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:-1])
        _refused(shards, tmp_path / "out", capsys, "s2/chunks.tsv has", "torn or edited")
    else:
        at = data.index(b"\t0.", len(data) // 2) + 3
        path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
        _refused(shards, tmp_path / "out", capsys, "s2/chunks.tsv differs", "sha256")


def test_a_shard_missing_its_last_block_is_refused(shards, tmp_path, capsys):
    """A consistent-looking shard (files cut back, checksums redone) that lost its last block."""
    logs = [json.loads((s / "shard.json").read_text()) for s in shards]
    last = max(range(3), key=lambda k: logs[k]["blocks"][-1]["index"] if logs[k]["blocks"] else -1)
    shard, log = shards[last], logs[last]
    log["blocks"].pop()
    ends = log["blocks"][-1]["ends"] if log["blocks"] else log["start_offsets"]
    for name, end in ends.items():
        (shard / name).write_bytes((shard / name).read_bytes()[:end])
        log["sha256"][name] = hashlib.sha256((shard / name).read_bytes()).hexdigest()
    (shard / "shard.json").write_text(json.dumps(log))
    _refused(shards, tmp_path / "out", capsys, "input records: blocks are missing")


def test_an_existing_output_needs_force(runs, shards, tmp_path, capsys):
    out = tmp_path / "merged"
    out.mkdir()
    (out / "report.html").write_text("a report of other results")
    _refused(shards, out, capsys, "report.html already exists: use --force")
    assert _merge(shards, out, "--force") == 0
    assert _merge(shards, out) == 1
    assert "already exists: use --force" in capsys.readouterr().err
    assert _merge(shards, out, "--force") == 0
    assert not (out / "report.html").exists()  # it described other results
    for name in FILES:
        assert (out / name).read_bytes() == (runs / "single" / name).read_bytes(), name


def test_merging_into_a_shard_directory_is_refused(shards, capsys):
    before = {p.name: p.read_bytes() for p in shards[0].iterdir() if p.is_file()}
    capsys.readouterr()
    assert _merge(shards, shards[0], "--force") == 1
    assert "is one of the shard directories" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in shards[0].iterdir() if p.is_file()} == before
