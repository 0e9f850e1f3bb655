"""ResultWriter: every file field by field, partial files, checkpoint/reopen and run.json."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

import numpy as np
import pytest

from virnucpro.errors import ResumeError
from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.results import ChunkResult, FrameScore, SequenceResult
from virnucpro.outputs.writer import ResultWriter

STRANDS = ("F1", "F2", "F3", "R1", "R2", "R3")


def f32(value):
    return float(np.float32(value))


def make_sequence(record_id, frame_scores, chunk_size=300):
    """frame_scores: per chunk, a list of (strand_frame, p_others, p_virus) for its kept frames."""
    chunks = []
    for index, frames in enumerate(frame_scores):
        chunk_id = f"{record_id}_chunk_{index + 1}"
        scores = [FrameScore(chunk_id + strand, f32(others), f32(virus)) for strand, others, virus in frames]
        chunks.append(ChunkResult(chunk_id, index * chunk_size, (index + 1) * chunk_size, scores))
    length = len(frame_scores) * chunk_size
    return SequenceResult(record_id, length, chunks, "ACGT" * (length // 4))


EXAMPLE = [
    make_sequence("read1", [[("F1", 0.1, 0.9), ("R2", 0.7, 0.3)]]),
    make_sequence("contig2", [[("F2", 0.8, 0.2)], [], [("F1", 0.4, 0.6), ("R3", 0.5, 0.5)]]),
    make_sequence("empty3", [[], []]),
    make_sequence("tie4", [[("R1", 0.5, 0.5)]]),
    make_sequence("other5", [[("F3", 0.99, 0.01)]]),
]


def read_rows(path):
    lines = path.read_text().split("\n")
    assert lines[-1] == "", "every row ends with a newline"
    return [line.split("\t") for line in lines[:-1]]


@pytest.fixture
def outdir(tmp_path):
    writer = ResultWriter(tmp_path / "out", threshold=0.5, write_hits=True)
    for result in EXAMPLE:
        writer.add(result)
    finals = writer.finish()
    assert [path.name for path in finals] == [
        "prediction_results.txt", "prediction_results_highestscore.csv", "chunks.tsv", "sequences.tsv",
        "regions.tsv", "viral.fa", "regions.fa", "virus_summary.tsv",
    ]
    assert not list((tmp_path / "out").glob("*.partial"))
    return OutputPaths(tmp_path / "out")


def test_prediction_results_txt_is_the_original_per_frame_table(outdir):
    assert read_rows(outdir.prediction_results) == [
        ["Sequence_ID", "Prediction", "score1", "score2"],
        ["read1_chunk_1F1", "virus", "0.1", "0.9"],
        ["read1_chunk_1R2", "others", "0.7", "0.3"],
        ["contig2_chunk_1F2", "others", "0.8", "0.2"],
        ["contig2_chunk_3F1", "virus", "0.4", "0.6"],
        ["contig2_chunk_3R3", "others", "0.5", "0.5"],
        ["tie4_chunk_1R1", "others", "0.5", "0.5"],
        ["other5_chunk_1F3", "others", "0.99", "0.01"],
    ]


def test_highestscore_csv_is_the_original_per_chunk_table(outdir):
    assert read_rows(outdir.highestscore) == [
        ["Modified_ID", "Is_Virus"],
        ["read1_chunk_1", "True"],
        ["contig2_chunk_1", "False"],
        ["contig2_chunk_3", "True"],
        ["tie4_chunk_1", "True"],
        ["other5_chunk_1", "False"],
    ]


def test_highestscore_matches_the_original_rule_recomputed_from_the_frame_table(outdir):
    """The original re-read prediction_results.txt, grouped by ID[:-2], compared max(score2) >= max(score1)."""
    maxima = {}
    for sequence_id, _, score1, score2 in read_rows(outdir.prediction_results)[1:]:
        best1, best2 = maxima.get(sequence_id[:-2], (-1.0, -1.0))
        maxima[sequence_id[:-2]] = (max(best1, float(score1)), max(best2, float(score2)))
    expected = {key: str(best2 >= best1) for key, (best1, best2) in maxima.items()}
    assert dict(read_rows(outdir.highestscore)[1:]) == expected


def test_chunks_tsv_has_every_chunk_with_na_for_unscored(outdir):
    rows = read_rows(outdir.chunks)
    assert rows[0] == ["chunk_id", "sequence_id", "start", "end", "n_frames", "max_score_others",
                       "max_score_virus", "virus_score", "is_virus"]
    assert rows[1:] == [
        ["read1_chunk_1", "read1", "0", "300", "2", "0.7", "0.9", "0.5625", "True"],
        ["contig2_chunk_1", "contig2", "0", "300", "1", "0.8", "0.2", "0.2", "False"],
        ["contig2_chunk_2", "contig2", "300", "600", "0", "NA", "NA", "NA", "NA"],
        ["contig2_chunk_3", "contig2", "600", "900", "2", "0.5", "0.6", "0.545455", "True"],
        ["empty3_chunk_1", "empty3", "0", "300", "0", "NA", "NA", "NA", "NA"],
        ["empty3_chunk_2", "empty3", "300", "600", "0", "NA", "NA", "NA", "NA"],
        ["tie4_chunk_1", "tie4", "0", "300", "1", "0.5", "0.5", "0.5", "True"],
        ["other5_chunk_1", "other5", "0", "300", "1", "0.99", "0.01", "0.01", "False"],
    ]


def test_sequences_tsv_has_every_input_in_order(outdir):
    rows = read_rows(outdir.sequences)
    assert rows[0] == ["sequence_id", "length", "n_chunks", "n_chunks_scored", "n_viral_chunks",
                       "viral_fraction", "max_virus_score", "mean_virus_score", "call"]
    assert rows[1:] == [
        ["read1", "300", "1", "1", "1", "1", "0.5625", "0.5625", "virus"],
        ["contig2", "900", "3", "2", "1", "0.5", "0.545455", "0.372727", "virus"],
        ["empty3", "600", "2", "0", "0", "NA", "NA", "NA", "no_call"],
        ["tie4", "300", "1", "1", "1", "1", "0.5", "0.5", "virus"],
        ["other5", "300", "1", "1", "0", "0", "0.01", "0.01", "others"],
    ]


def test_viral_fasta_holds_the_sequences_called_virus(outdir):
    text = outdir.viral_fasta.read_text()
    called = [s for s in EXAMPLE if s.record_id in {"read1", "contig2", "tie4"}]
    assert text == "".join(f">{s.record_id}\n{s.sequence}\n" for s in called)


def test_threshold_changes_our_tables_but_not_the_original_ones(tmp_path):
    strict = ResultWriter(tmp_path / "strict", threshold=0.58)
    for result in EXAMPLE:
        strict.add(result)
    strict.finish()
    paths, default = OutputPaths(tmp_path / "strict"), ResultWriter(tmp_path / "default")
    for result in EXAMPLE:
        default.add(result)
    default.finish()
    for name in ("prediction_results.txt", "prediction_results_highestscore.csv"):
        assert (tmp_path / "strict" / name).read_bytes() == (tmp_path / "default" / name).read_bytes()
    assert [row[-1] for row in read_rows(paths.sequences)[1:]] == ["others", "others", "no_call", "others", "others"]
    assert not paths.viral_fasta.exists()
    assert strict.calls == {"others": 4, "no_call": 1}


def test_write_hits_needs_the_sequence(tmp_path):
    writer = ResultWriter(tmp_path, write_hits=True)
    with pytest.raises(ValueError, match="read1"):
        writer.add(SequenceResult("read1", 300, EXAMPLE[0].chunks, None))
    writer.close()


def many_sequences(count):
    rng = np.random.default_rng(7)
    results = []
    for index in range(count):
        frames = [[(strand, 1 - p, p) for strand, p in zip(STRANDS, rng.random(6)) if p > 0.3]
                  for _ in range(int(rng.integers(1, 5)))]
        results.append(make_sequence(f"seq{index}", frames))
    return results


def final_bytes(outdir):
    return {path.name: path.read_bytes() for path in OutputPaths(outdir).result_files(True)}


def test_resume_from_a_checkpoint_gives_byte_identical_files(tmp_path):
    results = many_sequences(40)
    uninterrupted = ResultWriter(tmp_path / "a", write_hits=True)
    for result in results:
        uninterrupted.add(result)
    uninterrupted.finish()

    crashed = ResultWriter(tmp_path / "b", write_hits=True)
    for result in results[:15]:
        crashed.add(result)
    offsets, digests = crashed.checkpoint(), crashed.digests()
    for result in results[15:27]:  # written after the checkpoint, then lost work
        crashed.add(result)
    crashed.close()
    resumed = ResultWriter.reopen(tmp_path / "b", offsets, write_hits=True, digests=digests)
    assert resumed.calls == Counter(result.summarize().call for result in results[:15])
    for result in results[15:]:
        resumed.add(result)
    assert resumed.calls == uninterrupted.calls
    resumed.finish()
    assert final_bytes(tmp_path / "b") == final_bytes(tmp_path / "a")


KILLED_WRITER = textwrap.dedent("""
    import json, os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_outputs_writer import many_sequences
    from virnucpro.outputs.writer import ResultWriter
    results = many_sequences(40)
    writer = ResultWriter({outdir!r}, write_hits=True)
    for result in results[:15]:
        writer.add(result)
    print(json.dumps([writer.checkpoint(), writer.digests()]), flush=True)
    for result in results[15:30]:
        writer.add(result)
    writer._handles[writer.paths.chunks].flush()  # some rows past the checkpoint reach the disk
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_resume_after_kill_9_gives_byte_identical_files(tmp_path):
    results = many_sequences(40)
    reference = ResultWriter(tmp_path / "a", write_hits=True)
    for result in results:
        reference.add(result)
    reference.finish()
    script = KILLED_WRITER.format(tests=os.path.dirname(__file__), outdir=str(tmp_path / "b"))
    killed = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    offsets, digests = json.loads(killed.stdout)
    assert (tmp_path / "b" / "chunks.tsv.partial").stat().st_size > offsets["chunks.tsv"]
    resumed = ResultWriter.reopen(tmp_path / "b", offsets, write_hits=True, digests=digests)
    for result in results[15:]:
        resumed.add(result)
    resumed.finish()
    assert final_bytes(tmp_path / "b") == final_bytes(tmp_path / "a")


def test_reopen_refuses_missing_short_or_mismatched_partials(tmp_path):
    writer = ResultWriter(tmp_path)
    writer.add(EXAMPLE[0])
    offsets, digests = writer.checkpoint(), writer.digests()
    writer.close()
    with pytest.raises(ResumeError, match="expected result files"):
        ResultWriter.reopen(tmp_path, offsets, write_hits=True, digests=digests)
    too_long = dict(offsets, **{"chunks.tsv": offsets["chunks.tsv"] + 1})
    with pytest.raises(ResumeError, match="chunks.tsv.partial has"):
        ResultWriter.reopen(tmp_path, too_long, digests=digests)
    (tmp_path / "sequences.tsv.partial").unlink()
    with pytest.raises(ResumeError, match="sequences.tsv.partial is missing"):
        ResultWriter.reopen(tmp_path, offsets, digests=digests)


def test_write_json_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "run.json"
    write_json_atomic(target, {"version": "0.1.0", "counts": {"virus": 1}})
    write_json_atomic(target, {"version": "0.1.1", "timings_s": {"embed": 1.5}})
    assert json.loads(target.read_text()) == {"version": "0.1.1", "timings_s": {"embed": 1.5}}
    assert target.read_text().endswith("}\n")
    assert [path.name for path in tmp_path.iterdir()] == ["run.json"]
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert json.loads(target.read_text())["version"] == "0.1.1"
    assert [path.name for path in tmp_path.iterdir()] == ["run.json"]
