"""Paired-end input (io/pairs.py): two mate files in lockstep or one interleaved file, mate IDs
checked and made unique as ID/1 ID/2, one-line refusals naming the record."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import pytest

from virnucpro.errors import InputFormatError
from virnucpro.io import PairedReader, RecordReader, open_input
from virnucpro.io.pairs import InputUsageError, pair_id


def _fastq(path: Path, ids: list[str], opener=open) -> str:
    """A FASTQ file of one read per header (`ID` or `ID COMMENT`), each a different 40-base read."""
    bases = "ACGT"
    with opener(path, "wt") as out:
        for number, header in enumerate(ids):
            sequence = "".join(bases[(number + i) % 4] for i in range(40))
            out.write(f"@{header}\n{sequence}\n+\n{'I' * 40}\n")
    return str(path)


def _ids(reader) -> list[str]:
    return [record.id for record in reader]


def test_mates_are_read_in_lockstep_as_id_1_id_2_with_comments_kept(tmp_path):
    r1 = _fastq(tmp_path / "r1.fq", ["a 1:N:0:ACGT", "b 1:N:0:ACGT", "c 1:N:0:ACGT"])
    r2 = _fastq(tmp_path / "r2.fq", ["a 2:N:0:ACGT", "b 2:N:0:ACGT", "c 2:N:0:ACGT"])
    reader = open_input([r1, r2], paired=True)
    assert isinstance(reader, PairedReader)
    reader.check_first_records()
    records = list(reader)
    assert [r.id for r in records] == ["a/1", "a/2", "b/1", "b/2", "c/1", "c/2"]
    assert [r.index for r in records] == list(range(6))
    assert [r.source for r in records] == [r1, r2] * 3
    assert records[1].description == "2:N:0:ACGT"  # viral.fa keeps the comment
    assert reader.stats.records == 6 and reader.stats.bases == 240
    assert reader.bytes_done == reader.bytes_total == os.path.getsize(r1) + os.path.getsize(r2)


@pytest.mark.parametrize(("mate1", "mate2", "expected"), [
    ("x/1", "x/2", "x"), ("x", "x", "x"), ("x/1", "x", "x"), ("x", "x/2", "x"), ("x/1", "x/1", "x"),
    ("HS18:8:1307#168/1", "HS18:8:1307#168/2", "HS18:8:1307#168"),
])
def test_mate_ids_that_agree(mate1, mate2, expected):
    assert pair_id(mate1, mate2, "here") == expected


@pytest.mark.parametrize(("mate1", "mate2"), [("x/2", "x/1"), ("x", "y"), ("x/1", "y/2"), ("x/1", "x/3")])
def test_mate_ids_that_disagree(mate1, mate2):
    with pytest.raises(InputFormatError, match="mate IDs disagree"):
        pair_id(mate1, mate2, "here")


def test_suffixed_ids_are_not_doubled(tmp_path):
    r1 = _fastq(tmp_path / "r1.fq", ["a/1", "b/1"])
    r2 = _fastq(tmp_path / "r2.fq", ["a/2", "b/2"])
    assert _ids(open_input([r1, r2], paired=True)) == ["a/1", "a/2", "b/1", "b/2"]


def test_a_desync_names_the_record_and_both_ids(tmp_path):
    r1 = _fastq(tmp_path / "r1.fq", ["a", "b", "c", "d"])
    r2 = _fastq(tmp_path / "r2.fq", ["a", "b", "d", "c"])
    reader = open_input([r1, r2], paired=True)
    reader.check_first_records()  # the first pair agrees
    with pytest.raises(InputFormatError) as error:
        list(reader)
    message = str(error.value)
    assert "record 3" in message and "'c' vs 'd'" in message and "\n" not in message


def test_a_wrong_first_pair_fails_the_start_up_check(tmp_path):
    r1 = _fastq(tmp_path / "r1.fq", ["a", "b"])
    r2 = _fastq(tmp_path / "r2.fq", ["z", "b"])
    with pytest.raises(InputFormatError, match="record 1.*'a' vs 'z'"):
        open_input([r1, r2], paired=True).check_first_records()


@pytest.mark.parametrize("shorter", [0, 1])
def test_one_file_ending_first_is_refused(tmp_path, shorter):
    short = _fastq(tmp_path / "short.fq", ["a", "b"])
    long = _fastq(tmp_path / "long.fq", ["a", "b", "c"])
    paths = [short, long] if shorter == 0 else [long, short]
    with pytest.raises(InputFormatError, match=r"short.fq ends after 2 records but .*long.fq has a record 3"):
        list(open_input(paths, paired=True))


def test_interleaved_mates_alternate(tmp_path):
    path = _fastq(tmp_path / "i.fq", ["a/1", "a/2", "b 1:N:0:A", "b 2:N:0:A"])
    reader = open_input([path], interleaved=True)
    reader.check_first_records()
    assert _ids(reader) == ["a/1", "a/2", "b/1", "b/2"]


def test_interleaved_odd_record_count_is_refused(tmp_path):
    path = _fastq(tmp_path / "i.fq", ["a/1", "a/2", "b/1"])
    with pytest.raises(InputFormatError, match=r"odd number of records: record 3 \('b/1'\) has no mate"):
        list(open_input([path], interleaved=True))


def test_interleaved_desync_names_both_records(tmp_path):
    path = _fastq(tmp_path / "i.fq", ["a/1", "a/2", "b/1", "c/2"])
    with pytest.raises(InputFormatError, match=r"records 3 and 4: mate IDs disagree \('b/1' vs 'c/2'\)"):
        list(open_input([path], interleaved=True))


def test_interleaved_single_end_file_fails_before_the_models_load(tmp_path):
    path = _fastq(tmp_path / "single.fq", ["a", "b", "c", "d"])
    with pytest.raises(InputFormatError, match="records 1 and 2"):
        open_input([path], interleaved=True).check_first_records()


def test_gzip_mates(tmp_path):
    r1 = _fastq(tmp_path / "r1.fq.gz", ["a/1", "b/1"], gzip.open)
    r2 = _fastq(tmp_path / "r2.fq", ["a/2", "b/2"])
    assert _ids(open_input([r1, r2], paired=True)) == ["a/1", "a/2", "b/1", "b/2"]


def test_a_stream_mate_is_read_once_after_the_check(tmp_path):
    """A FIFO (e.g. `<(zcat R1.fq.gz)`): the start-up check's bytes are replayed, none lost."""
    r1 = _fastq(tmp_path / "r1.fq", ["a", "b", "c"])
    fifo = tmp_path / "r2.fifo"
    os.mkfifo(fifo)
    text = Path(_fastq(tmp_path / "r2.fq", ["a", "b", "c"])).read_bytes()
    writer = threading.Thread(target=lambda: fifo.write_bytes(text))
    writer.start()
    reader = open_input([r1, str(fifo)], paired=True)
    assert reader.streams == [str(fifo)] and reader.bytes_total is None
    reader.check_first_records()
    assert _ids(reader) == ["a/1", "a/2", "b/1", "b/2", "c/1", "c/2"]
    writer.join()


def test_duplicate_pair_ids_are_refused(tmp_path):
    r1 = _fastq(tmp_path / "r1.fq", ["a/1", "a"])
    r2 = _fastq(tmp_path / "r2.fq", ["a/2", "a"])
    with pytest.raises(InputFormatError, match="duplicate record ID 'a'"):
        list(open_input([r1, r2], paired=True))


@pytest.mark.parametrize(("paths", "paired", "interleaved", "message"), [
    (["a.fq"], True, False, "exactly two inputs"),
    (["a.fq", "b.fq", "c.fq"], True, False, "exactly two inputs"),
    (["a.fq", "b.fq"], False, True, "exactly one input"),
    (["a.fq", "b.fq"], True, True, "use one of them"),
    (["-", "-"], True, False, "the same input"),
])
def test_usage_errors(paths, paired, interleaved, message):
    with pytest.raises(InputUsageError, match=message) as error:
        open_input(paths, paired=paired, interleaved=interleaved)
    assert error.value.exit_code == 2


def test_single_end_input_is_the_plain_reader(tmp_path):
    path = _fastq(tmp_path / "s.fq", ["a", "a/1"])
    reader = open_input([path])
    assert type(reader) is RecordReader and _ids(reader) == ["a", "a/1"]


@pytest.mark.parametrize(("comment1", "comment2"), [("2:N:0:ACGT", "1:N:0:ACGT"), ("1:N:0:ACGT", "1:N:0:ACGT")])
def test_illumina_read_numbers_catch_swapped_or_repeated_files(tmp_path, comment1, comment2):
    r1 = _fastq(tmp_path / "r1.fq", [f"a {comment1}"])
    r2 = _fastq(tmp_path / "r2.fq", [f"a {comment2}"])
    with pytest.raises(InputFormatError, match="swapped or given twice"):
        open_input([r1, r2], paired=True).check_first_records()


def test_other_comments_are_not_read_numbers(tmp_path):
    r1 = _fastq(tmp_path / "r1.fq", ["a length=40", "b"])
    r2 = _fastq(tmp_path / "r2.fq", ["a 2:N:0:ACGT", "b 1 extra"])
    open_input([r1, r2], paired=True).check_first_records()
