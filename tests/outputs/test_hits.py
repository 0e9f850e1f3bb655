"""regions.tsv, regions.fa and virus_summary.tsv as the ResultWriter writes them (and resumes them)."""

from __future__ import annotations

import numpy as np

from virnucpro.outputs.hits import VIRUS_SUMMARY_COLUMNS, write_virus_summary
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.regions import RegionSettings
from virnucpro.outputs.results import ChunkResult, FrameScore, SequenceResult
from virnucpro.outputs.writer import ResultWriter

CHUNK = 500


def sequence(record_id: str, scores: list[float | None]) -> SequenceResult:
    """A sequence of 500-bp chunks with one kept frame each (None: no kept frame)."""
    chunks = []
    for i, score in enumerate(scores):
        frames = [] if score is None else [
            FrameScore(f"{record_id}_{i}F1", float(np.float32(1 - score)), float(np.float32(score)))]
        chunks.append(ChunkResult(f"{record_id}_{i}", i * CHUNK, (i + 1) * CHUNK, frames))
    bases = "ACGT" * (len(scores) * CHUNK // 4)
    return SequenceResult(record_id, len(scores) * CHUNK, chunks, bases)


PROPHAGE = sequence("bacterium_with_prophage", [0.05] * 30 + [0.95] * 10 + [0.05] * 30)
PHAGE = sequence("phage", [0.9] * 6)
READ = sequence("read", [0.99])
BACTERIUM = sequence("bacterium", [0.1] * 40)
WEAK_PHAGE = sequence("weak_phage", [0.7] * 8)


def rows(path):
    return [line.split("\t") for line in path.read_text().splitlines()]


def write(outdir, results, write_hits=True, **kwargs) -> OutputPaths:
    writer = ResultWriter(outdir, write_hits=write_hits, **kwargs)
    for result in results:
        writer.add(result)
    writer.finish()
    return OutputPaths(outdir)


def test_regions_tsv_rows_per_sequence_in_input_order(tmp_path):
    paths = write(tmp_path, [PROPHAGE, READ, BACTERIUM, PHAGE])
    header, *body = rows(paths.regions)
    assert header[:5] == ["sequence_id", "region_id", "start", "end", "length"]
    assert body == [
        ["bacterium_with_prophage", "bacterium_with_prophage|region_1", "15000", "20000", "5000", "10", "10", "10",
         "0.95", "0.95", body[0][10], "False"],
        ["phage", "phage|region_1", "0", "3000", "3000", "6", "6", "6", "0.9", "0.9", body[1][10], "True"],
    ]
    assert float(body[0][10]) > 0


def test_regions_fa_holds_each_region_with_its_coordinates(tmp_path):
    paths = write(tmp_path, [PROPHAGE, PHAGE])
    lines = paths.regions_fasta.read_text().splitlines()
    assert lines[0] == ">bacterium_with_prophage|region_1 bacterium_with_prophage:15001-20000"
    assert lines[1] == PROPHAGE.sequence[15000:20000]
    assert lines[2:] == [">phage|region_1 phage:1-3000", PHAGE.sequence]


def test_without_write_hits_there_is_no_regions_fa(tmp_path):
    paths = write(tmp_path, [PROPHAGE], write_hits=False)
    assert paths.regions.exists() and not paths.regions_fasta.exists()


def test_region_settings_reach_the_segmentation(tmp_path):
    paths = write(tmp_path, [PROPHAGE, PHAGE], regions=RegionSettings(min_length=4_000))
    assert [row[1] for row in rows(paths.regions)[1:]] == ["bacterium_with_prophage|region_1"]


def test_virus_summary_lists_viral_sequences_and_partial_regions_sorted_by_score(tmp_path):
    paths = write(tmp_path, [PROPHAGE, WEAK_PHAGE, READ, BACTERIUM, PHAGE])
    header, *body = rows(paths.virus_summary)
    assert tuple(header) == VIRUS_SUMMARY_COLUMNS
    assert [(row[0], row[2], row[-1]) for row in body] == [
        ("read", "sequence", "0"),  # mean score 0.99: one chunk, too short for a region
        ("bacterium_with_prophage|region_1", "region", "NA"),  # the prophage of a contig called others
        ("phage", "sequence", "1"),  # its region spans the whole sequence: no row of its own
        ("weak_phage", "sequence", "1"),
    ]
    assert body[1][3:8] == ["15000", "20000", "5000", "10", "1"]


def test_virus_summary_is_rebuilt_identically_from_the_tables(tmp_path):
    paths = write(tmp_path, [PROPHAGE, WEAK_PHAGE, READ, BACTERIUM, PHAGE])
    before = paths.virus_summary.read_bytes()
    paths.virus_summary.unlink()
    write_virus_summary(paths)
    assert paths.virus_summary.read_bytes() == before


def test_a_resumed_writer_continues_regions_byte_identically(tmp_path):
    results = [PROPHAGE, READ, PHAGE, BACTERIUM, WEAK_PHAGE]
    whole = write(tmp_path / "whole", results)
    writer = ResultWriter(tmp_path / "resumed", write_hits=True)
    for result in results[:2]:
        writer.add(result)
    offsets, digests = writer.checkpoint(), writer.digests()
    writer.add(results[2])  # written after the checkpoint: dropped by the resume
    writer.checkpoint()
    writer.close()
    writer = ResultWriter.reopen(tmp_path / "resumed", offsets, write_hits=True, digests=digests)
    for result in results[2:]:
        writer.add(result)
    writer.finish()
    for path in [*whole.result_files(True), whole.virus_summary]:
        assert (tmp_path / "resumed" / path.name).read_bytes() == path.read_bytes(), path.name


def test_min_length_calls_short_sequences_too_short_without_scoring_them(tmp_path):
    paths = write(tmp_path, [READ, PHAGE], min_length=1_000)
    assert [row[-1] for row in rows(paths.sequences)] == ["call", "too_short", "virus"]
    assert rows(paths.sequences)[1][1:] == ["500", "1", "0", "0", "NA", "NA", "NA", "too_short"]
    assert [row[1] for row in rows(paths.chunks)[1:]] == ["phage"] * 6  # the short read is not scored
    assert "read" not in paths.prediction_results.read_text()


def test_viral_fraction_sets_the_sequence_call(tmp_path):
    mixed = sequence("mixed", [0.9, 0.9, 0.1, 0.1, 0.1])  # 40% of its scored chunks are viral
    assert rows(write(tmp_path / "a", [mixed]).sequences)[1][-1] == "others"
    assert rows(write(tmp_path / "b", [mixed], viral_fraction=0.4).sequences)[1][-1] == "virus"


def test_viral_fa_keeps_the_description_and_a_bare_id_stays_bare(tmp_path):
    described = SequenceResult("phage", PHAGE.length, PHAGE.chunks, PHAGE.sequence, "Escherichia phage T4, complete")
    lines = write(tmp_path, [described, READ]).viral_fasta.read_text().splitlines()
    assert lines[0::2] == [">phage Escherichia phage T4, complete", ">read"]


def _many_hits() -> list[SequenceResult]:
    """200 sequences, most called virus, with many ties in score, fraction and length (the name
    decides), and prophage contigs that add region rows."""
    import random

    rng = random.Random(5)
    results = []
    for i in range(200):
        if i % 10 == 0:
            results.append(sequence(f"contig{i:03d}", [0.05] * 20 + [rng.choice((0.9, 0.95))] * 8 + [0.05] * 20))
        else:
            results.append(sequence(f"s{rng.randrange(1000):03d}_{i}", [rng.choice((0.6, 0.9, 0.99, 0.2))]
                                    * rng.choice((1, 2, 3))))
    return results


def test_virus_summary_of_many_hits_is_sorted_in_spilled_runs_identically(tmp_path, monkeypatch):
    """At most SORT_RUN_ROWS rows are sorted in memory; the rest go to sorted run files in the state
    directory (created exclusively, removed afterwards), merged: the table is byte-identical."""
    from virnucpro.outputs import hits

    results = _many_hits()
    in_memory = write(tmp_path / "memory", results)
    spills = []
    open_spill = hits.open_exclusive if hasattr(hits, "open_exclusive") else None
    monkeypatch.setattr(hits, "open_exclusive", lambda path: spills.append(path) or open_spill(path), raising=False)
    monkeypatch.setattr(hits, "SORT_RUN_ROWS", 7, raising=False)
    spilled = write(tmp_path / "spilled", results)
    table = in_memory.virus_summary.read_bytes()
    assert table.count(b"\n") > 150 and b"\tregion\t" in table
    assert spilled.virus_summary.read_bytes() == table
    assert len(spills) == -(-(table.count(b"\n") - 1) // 7)  # every run of 7 rows, the last shorter
    assert all(path.parent == spilled.state_dir for path in spills)
    assert not any(path.exists() for path in spills)
