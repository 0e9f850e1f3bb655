"""--resume continues only an intact run: an edited journal, a torn or edited partial file, or a changed
parameter, input or model file is refused with one line that says what is wrong (issue #15 point 6).

The unfinished run is made once (stopped in-process right after its second checkpoint) and copied
for every test, so each test costs one refused (or resumed) run with the tiny models.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
from conftest import RESULT_FILES, reads_and_phix

from virnucpro.cli.main import main
from virnucpro.errors import ResumeError
from virnucpro.pipeline.journal import Journal



def _args(inputs: list[str], out: Path, model_args: list[str]) -> list[str]:
    return ["predict", *inputs, "-o", str(out), "--block-records", "20", "--write-hits", "--threshold", "0.45",
            *model_args]


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory, model_args) -> tuple[list[str], Path, Path]:
    """The inputs, an output stopped after 2 of 6 blocks, and the output of an uninterrupted run."""
    tmp = tmp_path_factory.mktemp("unfinished")
    inputs = reads_and_phix(tmp)
    save = Journal.save

    def save_then_stop(self, path):
        save(self, path)
        if self.blocks_done == 2:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Journal, "save", save_then_stop)
        assert main(_args(inputs, tmp / "stopped", model_args)) == 130
    assert main(_args(inputs, tmp / "reference", model_args)) == 0
    return inputs, tmp / "stopped", tmp / "reference"


@pytest.fixture
def run(unfinished, tmp_path, model_args):
    """A fresh copy of the unfinished run: (resume args, output dir, journal path)."""
    inputs, stopped, _ = unfinished
    out = tmp_path / "out"
    shutil.copytree(stopped, out)
    return _args(inputs, out, model_args) + ["--resume"], out, out / ".virnucpro" / "journal.json"


def _refused(args: list[str], capsys, *phrases: str) -> str:
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("virnucpro: error: "), err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def _forge(journal_path: Path, **changes) -> None:
    """Rewrite the journal with `changes` and a correct checksum (what a careful forger would do)."""
    data = json.loads(journal_path.read_text())
    del data["checksum"]
    Journal(**{**data, **changes}).save(journal_path)


def test_an_intact_copy_resumes_to_identical_files(unfinished, run):
    args, out, _ = run
    assert main(args) == 0
    for name in RESULT_FILES:
        assert (out / name).read_bytes() == (unfinished[2] / name).read_bytes(), name


@pytest.mark.parametrize("field", ["records_done", "offsets"])
def test_one_digit_changed_in_the_journal_is_refused(run, capsys, field):
    args, _, journal_path = run
    text = journal_path.read_text()
    data = json.loads(text)
    value = data[field] if field == "records_done" else data["offsets"]["chunks.tsv"]
    needle = f"{json.dumps(field if field == 'records_done' else 'chunks.tsv')}: {value}"
    assert text.count(needle) == 1
    journal_path.write_text(text.replace(needle, needle[:-1] + str((value + 1) % 10)[-1]))
    _refused(args, capsys, "checksum does not match", "--force")


@pytest.mark.parametrize(("damage", "phrase"), [("truncate", "truncated?"), ("edit", "differ from what this run wrote"),
                                                ("remove", "is missing")])
def test_a_torn_or_edited_partial_file_is_refused(run, capsys, damage, phrase):
    args, out, _ = run
    partial = out / "chunks.tsv.partial"
    data = partial.read_bytes()
    if damage == "truncate":
        partial.write_bytes(data[:-7])
    elif damage == "edit":  # same size, one digit changed in the first checkpointed block
        at = data.index(b"\t0.", len(data) // 3) + 3
        partial.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
    else:
        partial.unlink()
    _refused(args, capsys, phrase, "chunks.tsv.partial", "--force")


@pytest.mark.parametrize(("option", "phrase"), [(["--threshold", "0.3"], "parameter threshold changed 0.45 -> 0.3"),
                                                (["--chunk-size", "500"], "parameter chunk_size changed 300 -> 500")])
def test_a_changed_parameter_is_named(run, capsys, option, phrase):
    args, _, _ = run
    _refused(args + option, capsys, phrase, "--force")


def test_a_changed_input_or_model_file_is_named(run, capsys):
    args, _, journal_path = run
    data = json.loads(journal_path.read_text())
    inputs = data["inputs"]
    inputs[0]["size"] += 1
    _forge(journal_path, inputs=inputs)
    _refused(args, capsys, "input reads.fastq changed (size)")
    parameters = data["parameters"]
    esm_files = parameters["models"]["esm2"]["files"]
    weights = next(name for name in esm_files if name.endswith(".safetensors"))
    esm_files[weights]["sha256"] = "0" * 64
    _forge(journal_path, inputs=json.loads(journal_path.read_text())["inputs"], parameters=parameters)
    _refused(args, capsys, f"model file esm2/{weights} changed (content)")


def test_a_checkpoint_inside_a_row_is_refused(run, capsys):
    """Offset and digest forged consistently: the offset still has to end a row."""
    args, out, journal_path = run
    data = json.loads(journal_path.read_text())
    inside = data["offsets"]["chunks.tsv"] - 3
    prefix = (out / "chunks.tsv.partial").read_bytes()[:inside]
    _forge(journal_path, offsets={**data["offsets"], "chunks.tsv": inside},
           digests={**data["digests"], "chunks.tsv": hashlib.sha256(prefix).hexdigest()})
    _refused(args, capsys, "checkpoint of chunks.tsv.partial ends inside a row")


def test_a_forged_record_count_is_refused(run, capsys):
    args, _, journal_path = run
    done = json.loads(journal_path.read_text())["records_done"]
    _forge(journal_path, records_done=done + 1)
    _refused(args, capsys, f"journal counts {done + 1} finished records", f"holds {done}")


def test_a_huge_value_is_one_line_through_the_cli(run, capsys):
    args, _, journal_path = run
    _forge(journal_path, records_done=10**40)
    _refused(args, capsys, "records_done is out of range", "--force")


def _valid_journal(tmp_path: Path) -> dict:
    names = ["prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv",
             "regions.tsv"]
    journal = Journal([{"path": "/in.fa", "size": 1}], {"write_hits": False, "embed_only": False}, 2, 40,
                      dict.fromkeys(names, 100), dict.fromkeys(names, "a" * 64))
    return asdict(journal)


MALFORMED = {
    "records_done as text": {"records_done": "40"},
    "negative records_done": {"records_done": -1},
    "bool blocks_done": {"blocks_done": True},
    "zero blocks_done": {"blocks_done": 0},
    "more blocks than records": {"blocks_done": 41},
    "huge offset": {"offsets": {"chunks.tsv": 2**70}},
    "negative offset": {"offsets": {"chunks.tsv": -3}},
    "float offset": {"offsets": {"chunks.tsv": 1.5}},
    "offset of an unknown file": {"offsets": {"../x": 1}},
    "offsets not a map": {"offsets": [1, 2]},
    "digest not hex": {"digests": {"chunks.tsv": "zz"}},
    "inputs not a list": {"inputs": {"path": "x"}},
    "parameters not a map": {"parameters": None},
    "unknown shard_log": {"shard_log": {"shard": 1}},
    "shard_log not a map": {"shard_log": 5},
}


@pytest.mark.parametrize("case", sorted(MALFORMED) + ["missing key", "extra key"])
def test_a_malformed_but_signed_journal_is_one_line(tmp_path, case):
    data = _valid_journal(tmp_path)
    for key, value in MALFORMED.get(case, {}).items():
        data[key] = {**data[key], **value} if key in ("offsets", "digests") and isinstance(value, dict) else value
    if case == "missing key":
        del data["offsets"]
    if case == "extra key":
        data["surprise"] = 1
    path = tmp_path / "journal.json"
    from virnucpro.fsutil.atomic import write_json_atomic
    from virnucpro.pipeline.journal import _checksum

    write_json_atomic(path, {**data, "checksum": _checksum(data)})
    with pytest.raises(ResumeError) as refused:
        Journal.load(path)
    assert "\n" not in str(refused.value) and "--force" in str(refused.value), refused.value


def test_the_valid_journal_of_these_tests_loads(tmp_path):
    """The baseline the malformed cases start from is accepted (so each case fails for its own reason)."""
    Journal(**_valid_journal(tmp_path)).save(tmp_path / "journal.json")
    assert Journal.load(tmp_path / "journal.json").records_done == 40


@pytest.mark.parametrize("content", [b"", b"[]", b"{", b"[" * 100_000 + b"]" * 100_000, b"NaN", b"\xff\xfe{}",
                                     b'{"version": 1, "fingerprint": "x"}'])
def test_an_unreadable_journal_is_one_line(tmp_path, content):
    path = tmp_path / "journal.json"
    path.write_bytes(content)
    with pytest.raises(ResumeError) as refused:
        Journal.load(path)
    assert "\n" not in str(refused.value) and "--force" in str(refused.value), refused.value


def test_a_stopped_shard_resumes_and_merges_to_the_single_run(unfinished, tmp_path, model_args):
    """A shard journal (with its shard log) passes its own checks on resume; merge gets the same files."""
    inputs, _, reference = unfinished
    save = Journal.save

    def save_then_stop(self, path):
        save(self, path)
        raise KeyboardInterrupt

    shard_args = [_args(inputs, tmp_path / f"s{k}", model_args) + ["--shard", f"{k}/2"] for k in (1, 2)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Journal, "save", save_then_stop)
        assert main(shard_args[0]) == 130
    assert json.loads((tmp_path / "s1" / ".virnucpro" / "journal.json").read_text())["shard_log"]["blocks"]
    assert main(shard_args[0] + ["--resume"]) == 0
    assert main(shard_args[1]) == 0
    assert main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "-o", str(tmp_path / "merged")]) == 0
    for name in RESULT_FILES:
        assert (tmp_path / "merged" / name).read_bytes() == (reference / name).read_bytes(), name
