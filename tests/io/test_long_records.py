"""Long FASTA records: spooled to disk while read, chunked a window at a time, results identical.

The spool threshold and the block size are lowered here (monkeypatch), so records of tens of kb
take the long-record path in many blocks; the reference is the same input read the old way (no
spooling: threshold above the file size).
"""

from __future__ import annotations

import dataclasses
import gzip
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import GENOMES, RESULT_FILES, predict_peak_rss_mib

from virnucpro.cli.main import main
from virnucpro.errors import InputFormatError
from virnucpro.frames.bounds import chunk_bounds, chunk_bounds_range
from virnucpro.frames.chunks import chunk_table
from virnucpro.frames.windows import window_table, windows
from virnucpro.io import Record, long_records, read_records
from virnucpro.io.long_records import is_spooled
from virnucpro.outputs.results import SequenceTally
from virnucpro.pipeline import blocks, output_run
from virnucpro.pipeline.options import RunOptions



def _bases(length: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("ACGTACGTacgtN") for _ in range(length))


def _as_text(sequence) -> str:
    return sequence[0 : len(sequence)]


def _read_all(path: Path) -> tuple[list[tuple[str, int, str]], tuple[int, int, int], int]:
    reader = read_records([str(path)])
    records = list(reader)
    spooled = sum(map(is_spooled, records))
    rows = [(r.id, r.index, _as_text(r.sequence)) for r in records]
    return rows, (reader.stats.records, reader.stats.empty, reader.stats.bases), spooled


MESSY_FASTA = (
    b"\n# leading comment\n>short1 a description\nACGT\nacgu\n"
    b">long1\r\nACGTNNacgt\r\nGGCC\r\n\r\n# a comment inside\r\n  TTAA  \r\n" + b"ACGTACGTAC\r\n" * 60
    + b">empty\n\n   \n"
    b">long2 unwrapped\n" + b"ACGTTGCA" * 150 + b"\n"
    b"  >indented header\nAC-GT.*\n"
    b">long3 old mac\r" + b"ACG\rTTA\r" * 100 + b">last\nACGT"  # no final newline
)


@pytest.mark.parametrize("gzipped", [False, True])
def test_spooled_reader_gives_dnaios_records(tmp_path, monkeypatch, gzipped):
    """Same IDs, indices, sequences and counts as the in-memory reader, for every FASTA shape dnaio
    reads: CR/CRLF/LF line ends, blank and comment lines, indented headers, no final newline."""
    path = tmp_path / ("messy.fa.gz" if gzipped else "messy.fa")
    path.write_bytes(gzip.compress(MESSY_FASTA) if gzipped else MESSY_FASTA)
    reference = _read_all(path)
    assert reference[2] == 0
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 64)
    monkeypatch.setattr(long_records, "_READ_BYTES", 50)  # records and lines cross read boundaries
    spooled = _read_all(path)
    assert spooled[2] >= 3
    assert spooled[:2] == reference[:2]


def test_spooled_record_with_a_bad_symbol_is_the_readers_error(tmp_path, monkeypatch):
    path = tmp_path / "bad.fa"
    path.write_text(">ok\nACGT\n>chr1\n" + "ACGTACGTAC\n" * 30 + "ACG TT\n")
    with pytest.raises(InputFormatError) as in_memory:
        list(read_records([str(path)]))
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 64)
    with pytest.raises(InputFormatError) as spooled:
        list(read_records([str(path)]))
    assert "position 304" in str(in_memory.value)
    assert str(spooled.value) == str(in_memory.value)


def test_chunk_bounds_range_is_a_slice_of_chunk_bounds():
    for mode in ("even", "legacy"):
        for size in (3, 300, 500):
            for length in [*range(1, 3 * size + 3, 1 if size == 3 else 37), 2 * size, 2 * size + 1, 10 * size - 1,
                           10 * size + 1, 123_457]:
                bounds = chunk_bounds(length, size, mode)
                for first, stop in ((0, 1), (1, 4), (len(bounds) - 2, len(bounds) + 5)):
                    assert chunk_bounds_range(length, size, mode, first, stop) == bounds[max(first, 0):stop]


@pytest.mark.parametrize("mode", ["even", "legacy"])
@pytest.mark.parametrize("length", [1499, 1500, 1501, 2999, 3001, 7777])
def test_windows_give_the_chunk_table_of_the_whole_record(mode, length):
    """Chunk IDs, boundaries, sequences, kept frames: identical to chunking the record at once."""
    record = Record("chr1", _bases(length, length), "x", 0)
    whole = chunk_table([record], 300, mode)
    for per_window in (1, 2, 7, 100):
        parts = [window_table("chr1", record.sequence, bounds, window.first)
                 for window, bounds in windows(length, 300, mode, per_window)]
        assert sum(part.chunk_counts[0] for part in parts) == whole.chunk_counts[0]
        assert [c for p in parts for c in p.chunk_ids] == whole.chunk_ids
        assert np.concatenate([p.starts for p in parts]).tolist() == whole.starts.tolist()
        assert np.concatenate([p.ends for p in parts]).tolist() == whole.ends.tolist()
        assert [s for p in parts for s in p.sequences] == whole.sequences
        assert [f for p in parts for f in p.frame_labels(p.chunk_ids)] == whole.frame_labels(whole.chunk_ids)
        assert [n for p in parts for n in p.nucleotides] == whole.nucleotides
        assert [q for p in parts for q in p.proteins] == whole.proteins


class _Score:
    def __init__(self, value):
        self.value = value

    def virus_score(self):
        return self.value


def test_sequence_tally_adds_chunk_scores_exactly_like_sum():
    """The mean over a long record's chunks, added block by block, is sum(scores)/n to the bit."""
    rng = random.Random(3)
    for _ in range(300):
        scores = [rng.random() ** rng.choice((1, 8, 30)) for _ in range(rng.randint(1, 400))]
        tally = SequenceTally()
        cut = rng.randint(0, len(scores))
        tally.add([_Score(s) for s in scores[:cut]])
        tally.add([_Score(s) for s in scores[cut:]])
        assert tally.call().mean_virus_score == sum(scores) / len(scores)


# --- the whole pipeline -------------------------------------------------------------------------

def _mixed_input(tmp_path: Path) -> str:
    """Short records around three long ones (lengths near chunk multiples; part of lambda among
    them) and one that is spooled (> 4000 file bytes) but not long (<= 5000 bases), wrapped at 70
    columns and gzipped."""
    lam = "".join(line.strip() for line in (GENOMES / "lambda_NC_001416.fa").read_text().splitlines()[1:])
    records = [("read1", _bases(150, 1)), ("lambda_part", lam[:24_001]), ("mid", _bases(4500, 6)), ("read2", _bases(290, 2)),
               ("chrA", _bases(18_000, 3)), ("chrB", _bases(15_001, 4)), ("read3", _bases(80, 5))]
    text = "".join(f">{name} test\n" + "\n".join(seq[i:i + 70] for i in range(0, len(seq), 70)) + "\n"
                   for name, seq in records)
    path = tmp_path / "mixed.fa.gz"
    path.write_bytes(gzip.compress(text.encode()))
    return str(path)


def _small_blocks(monkeypatch, block_bases: int, long_record_bases: int = 5000) -> None:
    original = RunOptions.block_settings
    monkeypatch.setattr(RunOptions, "block_settings", lambda options, tokens: dataclasses.replace(
        original(options, tokens), block_bases=block_bases, long_record_bases=long_record_bases))


def _predict(inputs: list[str], out: Path, model_args: list[str], *extra: str) -> int:
    return main(["predict", *inputs, "-o", str(out), "--write-hits", "--threshold", "0.45", *extra, *model_args])


def _files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in RESULT_FILES}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    return _mixed_input(tmp_path_factory.mktemp("long-input"))


@pytest.fixture(scope="module")
def references(tmp_path_factory, model_args, mixed):
    """Result files of the mixed input read the old way (nothing spooled), per chunking mode."""
    outs = {}
    with pytest.MonkeyPatch.context() as patch:
        _small_blocks(patch, 6000)
        for mode in ("even", "legacy"):
            outs[mode] = tmp_path_factory.mktemp(f"reference-{mode}")
            assert _predict([mixed], outs[mode], model_args, "--chunking", mode) == 0
    return {mode: _files(out) for mode, out in outs.items()}


@pytest.mark.parametrize("mode", ["even", "legacy"])
def test_spooled_records_give_identical_result_files(tmp_path, monkeypatch, model_args, mixed, references, mode):
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 4000)
    _small_blocks(monkeypatch, 6000)  # 20 chunks a block: every long record spans several blocks
    spooled, pieces = [], []
    finish, build_piece = long_records._Spool.finish, blocks.build_piece_block
    monkeypatch.setattr(long_records._Spool, "finish", lambda self: spooled.append(finish(self)) or spooled[-1])
    monkeypatch.setattr(blocks, "build_piece_block", lambda *a: pieces.append(build_piece(*a)) or pieces[-1])
    assert _predict([mixed], tmp_path / "out", model_args, "--chunking", mode) == 0
    assert set(map(len, spooled)) == {4500, 15_001, 18_000, 24_001}
    assert {block.records[0].id for block in pieces} == {"lambda_part", "chrA", "chrB"} and len(pieces) >= 9
    files = _files(tmp_path / "out")
    assert files == references[mode]
    headers = [line.split()[0] for line in files["viral.fa"].splitlines() if line.startswith(b">")]
    assert {b">lambda_part", b">chrA", b">chrB"} & set(headers)  # from a spool
    assert not (tmp_path / "out" / ".virnucpro").exists()  # spool files gone with the state dir


def test_interrupted_inside_a_long_record_resumes_to_identical_files(tmp_path, monkeypatch, model_args, mixed,
                                                                     references):
    """A crash between two blocks of one long record: the resume redoes the record from its start
    (checkpoints fall only at record boundaries) and the files are byte-identical."""
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 4000)
    _small_blocks(monkeypatch, 6000)
    original = output_run.write_block
    written = []

    def crash_in_chra(output, results, embeddings):
        if output.block.piece is not None and output.block.records[0].id == "chrA" and output.block.piece.first > 0:
            raise KeyboardInterrupt
        written.append(output.block.index)
        original(output, results, embeddings)

    monkeypatch.setattr(output_run, "write_block", crash_in_chra)
    assert _predict([str(mixed)], tmp_path / "out", model_args, "--save-embeddings") != 0  # the CLI turns the interrupt into an exit code
    assert (tmp_path / "out" / ".virnucpro" / "journal.json").is_file()
    assert written  # some blocks, including chrA's first, were written before the crash
    monkeypatch.setattr(output_run, "write_block", original)
    assert _predict([str(mixed)], tmp_path / "out", model_args, "--save-embeddings", "--resume") == 0
    assert _files(tmp_path / "out") == references["even"]
    # embeddings: a long record's pieces share its block index; parts in chunk order, none twice
    import pyarrow.parquet as pq

    frame_ids = [line.split("\t")[0] for line in _files(tmp_path / "out")["prediction_results.txt"].decode().splitlines()[1:]]
    assert pq.read_table(tmp_path / "out" / "embeddings.parquet").column("id").to_pylist() == frame_ids


def test_two_workers_write_long_records_identically(tmp_path, monkeypatch, model_args, mixed, references):
    """Work blocks of one long record run on both workers at once; the files are those of one."""
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 4000)
    _small_blocks(monkeypatch, 6000)
    assert _predict([mixed], tmp_path / "out", model_args, "--workers", "2") == 0
    assert _files(tmp_path / "out") == references["even"]


def test_shards_of_long_records_merge_to_identical_files(tmp_path, monkeypatch, model_args, mixed, references):
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 4000)
    _small_blocks(monkeypatch, 6000)
    shards = [tmp_path / f"shard{k}" for k in (1, 2, 3)]
    for k, shard in enumerate(shards, 1):
        assert _predict([mixed], shard, model_args, "--shard", f"{k}/3") == 0
    from virnucpro.outputs import hits

    unsharded = tmp_path / "unsharded"
    assert _predict([mixed], unsharded, model_args) == 0
    monkeypatch.setattr(hits, "SORT_RUN_ROWS", 1)  # merge sorts virus_summary.tsv in spilled runs of 1 row
    assert main(["merge", *map(str, shards), "-o", str(tmp_path / "merged")]) == 0
    assert _files(tmp_path / "merged") == references["even"]
    summary = (tmp_path / "merged" / "virus_summary.tsv").read_bytes()
    assert summary.count(b"\n") > 2 and summary == (unsharded / "virus_summary.tsv").read_bytes()
    assert not (tmp_path / "merged" / ".virnucpro").exists()  # the run files are gone


def test_frames_command_writes_the_same_files_for_spooled_records(tmp_path, monkeypatch, mixed):
    from virnucpro.frames import windows as frame_windows
    from virnucpro.frames.output import write_frames

    monkeypatch.setattr(frame_windows, "LONG_RECORD_BASES", 5000)
    write_frames([mixed], tmp_path / "reference", 300, "legacy")
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 4000)
    write_frames([mixed], tmp_path / "spooled", 300, "legacy")
    for name in ("chunks.fa", "nucleotide.fa", "protein.faa"):
        assert (tmp_path / "spooled" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()


def test_discard_checks_long_records_without_storing_them(tmp_path, monkeypatch):
    """predict's early look at each input (DISCARD) counts a long first record but writes no spool."""
    path = tmp_path / "chr.fa"
    path.write_text(">chr1\n" + "ACGTACGTAC\n" * 30 + ">chr2\nAC GT\n")
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 64)
    monkeypatch.setattr(long_records.tempfile, "TemporaryFile", None)  # any spool file would fail
    first = next(iter(read_records([str(path)], spool_dir=long_records.DISCARD)))
    assert (first.id, len(first.sequence)) == ("chr1", 300)


def test_a_full_spool_disk_is_a_one_line_error(tmp_path, monkeypatch):
    from virnucpro.errors import VirnucproError

    path = tmp_path / "chr.fa"
    path.write_text(">chr1\n" + "ACGTACGTAC\n" * 30)
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 64)

    def no_space(**_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(long_records.tempfile, "TemporaryFile", no_space)
    with pytest.raises(VirnucproError, match="cannot spool the long record 'chr1' to .*No space left"):
        list(read_records([str(path)], spool_dir=tmp_path))


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_record_length(tmp_path, model_args):
    """One record of 40 Mb then 120 Mb (10 and 30 work blocks: the block queues are full in both):
    the same peak RSS within a small margin. Before spooling, the 120-Mb record alone cost ~15-20
    bytes/base (> 1.5 GiB more). AT-rich bases keep few frames, so the tiny models take little time."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_long_record_rss import write_record

    peaks = {}
    for length in (40_000_000, 120_000_000):
        fasta = tmp_path / f"chr{length}.fa.gz"
        write_record(fasta, length, "at-rich")
        out = tmp_path / f"out{length}"
        peaks[length] = predict_peak_rss_mib(fasta, "-o", out, *model_args)
        assert (out / "sequences.tsv").read_text().splitlines()[1].startswith(f"chr1\t{length}\t")
        fasta.unlink()
    print(f"peak RSS MiB by record length: {peaks}")
    assert peaks[120_000_000] - peaks[40_000_000] < 64  # < 0.8 bytes/base; before: ~15-20 bytes/base


def test_rows_of_a_long_record_reach_the_files_block_by_block(tmp_path, monkeypatch):
    """No checkpoint falls inside a long record, so the writer must hand each work block's rows to
    the files itself (else a 1-Gb record's rows, and its viral.fa copy, pile up in memory)."""
    from virnucpro.outputs.results import ChunkResult, FrameScore, SequenceResult
    from virnucpro.outputs.writer import ResultWriter

    path = tmp_path / "chr.fa"
    bases = _bases(3000, 9)
    path.write_text(">chr1\n" + bases + "\n")
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 64)
    sequence = next(iter(read_records([str(path)], spool_dir=tmp_path))).sequence
    writer = ResultWriter(tmp_path / "out", write_hits=True)
    chunk = ChunkResult("chr1_chunk_1", 0, 300, [FrameScore("chr1_chunk_1F1", 0.25, 0.75)])
    writer.add_piece(SequenceResult("chr1", 3000, [chunk], sequence), first=True, last=False)
    partial = tmp_path / "out" / "chunks.tsv.partial"
    assert b"chr1_chunk_1\tchr1\t0\t300" in partial.read_bytes()
    last = ChunkResult("chr1_chunk_10", 2700, 3000, [FrameScore("chr1_chunk_10F1", 0.3, 0.7)])
    writer.add_piece(SequenceResult("chr1", 3000, [last], sequence), first=False, last=True)
    assert (tmp_path / "out" / "viral.fa.partial").read_bytes() == f">chr1\n{bases}\n".encode()
    assert (tmp_path / "out" / "sequences.tsv.partial").read_text().splitlines()[1].startswith("chr1\t3000\t2\t2\t2\t1\t")
    writer.finish()


def test_a_long_first_record_passes_the_early_checks(tmp_path, monkeypatch):
    """The first records are sampled for protein letters and probed before the models load: a
    spooled first record (its placeholder) must pass both, and the probe writes no spool file."""
    path = tmp_path / "chr.fa"
    path.write_text(">chr1\n" + "ACGTTGCANN\n" * 300 + ">read\nACGT\n")
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 64)
    reader = read_records([str(path)], spool_dir=tmp_path)
    temporary_file = long_records.tempfile.TemporaryFile
    monkeypatch.setattr(long_records.tempfile, "TemporaryFile", None)  # the probe must not spool
    reader.check_first_records()
    monkeypatch.setattr(long_records.tempfile, "TemporaryFile", temporary_file)
    assert [(r.id, len(r.sequence)) for r in reader] == [("chr1", 3000), ("read", 4)]


def _scored_chunks(record_id: str, length: int, viral: range) -> list:
    """300-bp chunks of a `length`-bp record, scored viral (0.99) on the chunk numbers in `viral`."""
    from virnucpro.outputs.results import ChunkResult, FrameScore

    chunks = []
    for number, start in enumerate(range(0, length, 300)):
        score = 0.99 if number in viral else 0.01
        name = f"{record_id}_chunk_{number + 1}"
        chunks.append(ChunkResult(name, start, min(start + 300, length), [FrameScore(name + "F1", 1 - score, score)]))
    return chunks


def test_regions_of_a_spooled_record_are_copied_in_bounded_pieces(tmp_path, monkeypatch):
    """regions.fa (and viral.fa) of a spooled record: no read from the spool larger than
    PIECE_BYTES, whatever the region's length; the files are those of the same record in memory."""
    from virnucpro.outputs.results import SequenceResult
    from virnucpro.outputs.writer import ResultWriter

    bases = _bases(9000, 11)
    path = tmp_path / "chr.fa"
    path.write_text(">chr1 a contig\n" + bases + "\n")
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 64)
    sequence = next(iter(read_records([str(path)], spool_dir=tmp_path))).sequence
    assert is_spooled(Record("chr1", sequence, "", 0))
    chunks = _scored_chunks("chr1", 9000, range(5, 25))  # one region of 6000 bp, most of the record
    reads = []
    getitem = long_records.SpooledSequence.__getitem__
    monkeypatch.setattr(long_records.SpooledSequence, "__getitem__",
                        lambda self, window: reads.append(len(getitem(self, window))) or getitem(self, window))
    monkeypatch.setattr(long_records, "PIECE_BYTES", 700, raising=False)
    spooled = ResultWriter(tmp_path / "spooled", write_hits=True)
    for first in range(0, 30, 10):
        spooled.add_piece(SequenceResult("chr1", 9000, chunks[first:first + 10], sequence, "a contig"),
                          first=first == 0, last=first == 20)
    spooled.finish()
    in_memory = ResultWriter(tmp_path / "memory", write_hits=True)
    in_memory.add(SequenceResult("chr1", 9000, chunks, bases, "a contig"))
    in_memory.finish()
    assert spooled.regions_found == 1 and reads and max(reads) <= 700
    for name in ("regions.fa", "viral.fa", "regions.tsv", "sequences.tsv", "virus_summary.tsv"):
        assert (tmp_path / "spooled" / name).read_bytes() == (tmp_path / "memory" / name).read_bytes(), name
    assert bases[1500:7500] in (tmp_path / "spooled" / "regions.fa").read_text()


def test_each_chunk_score_of_a_long_record_is_computed_once(tmp_path, monkeypatch):
    """chunks.tsv, the sequence's tally and the region track of a long record share each chunk's score."""
    from functools import cached_property

    from virnucpro.outputs.results import ChunkResult, SequenceResult
    from virnucpro.outputs.writer import ResultWriter

    computed = []
    original = ChunkResult.__dict__.get("_virus_score")
    counting = cached_property(lambda self: computed.append(self.chunk_id) or original.func(self))
    counting.__set_name__(ChunkResult, "_virus_score")
    monkeypatch.setattr(ChunkResult, "_virus_score", counting, raising=False)
    chunks = _scored_chunks("chr1", 9000, range(5, 25))
    writer = ResultWriter(tmp_path / "out", write_hits=False)
    for first in range(0, 30, 10):
        writer.add_piece(SequenceResult("chr1", 9000, chunks[first:first + 10]), first=first == 0, last=first == 20)
    writer.finish()
    assert writer.regions_found == 1
    assert computed == [chunk.chunk_id for chunk in chunks]


def test_the_region_scan_of_a_long_record_holds_no_object_per_chunk_before_it_runs(tmp_path):
    """The chunk track of a long record is compact arrays (20 bytes a chunk) handed to the region
    scan as views; it used to become lists of tuples and floats at the record's end (~160 bytes a
    chunk on top of the scan's own ~150: 3.3M chunks for a 1-Gb record)."""
    import tracemalloc

    from virnucpro.outputs.results import SequenceResult
    from virnucpro.outputs.writer import ResultWriter

    count, step = 30_000, 3000
    chunks = _scored_chunks("chr1", count * 300, range(10_000, 12_000))
    writer = ResultWriter(tmp_path / "out")
    tracemalloc.start()
    try:
        for first in range(0, count, step):
            last = first + step >= count
            if last:
                tracemalloc.reset_peak()
                before = tracemalloc.get_traced_memory()[0]
            writer.add_piece(SequenceResult("chr1", count * 300, chunks[first:first + step]), first=first == 0,
                             last=last)
        scan_bytes = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    writer.finish()
    assert writer.regions_found == 1
    assert scan_bytes / count < 220  # measured: 148 (the scan's own lists); before: 309
