"""pairs.tsv (outputs/pairs.py): the pair call pools both mates' scored chunks and applies the
sequence rule to the pool; no_call without a scored chunk, too_short when both mates are."""

from __future__ import annotations

import pytest

from virnucpro.outputs.pairs import PAIRS_HEADER, PairTable, pair_counts
from virnucpro.outputs.results import ChunkResult, FrameScore, SequenceResult


def _chunk(virus: float | None) -> ChunkResult:
    """A chunk with one kept frame scoring `virus` (None: no kept frame)."""
    frames = [] if virus is None else [FrameScore("f", 1 - virus, virus)]
    return ChunkResult("c", 0, 300, frames)


def _mate(record_id: str, scores: list[float | None], length: int = 300) -> SequenceResult:
    return SequenceResult(record_id, length, [_chunk(score) for score in scores])


def _row(mate1: SequenceResult, mate2: SequenceResult, min_length: int = 0) -> list[str]:
    rows: list[bytes] = []
    table = PairTable(rows.append, threshold=0.5, viral_fraction=0.5)
    for mate in (mate1, mate2):
        table.add_mate(mate.record_id, mate.summarize(0.5, 0.5, min_length), mate.chunks)
    assert table.between_pairs and len(rows) == 1
    assert table.calls.total() == 1
    return rows[0].decode().rstrip("\n").split("\t")


def test_the_pool_of_both_mates_decides():
    # mate 1: 1 of 2 viral (virus on its own), mate 2: 0 of 2 -> pooled 1 of 4: others
    row = _row(_mate("p/1", [0.9, 0.1]), _mate("p/2", [0.2, 0.3]))
    assert row == ["p", "p/1", "p/2", "virus", "others", "4", "1", "0.25", "0.9", "0.375", "others"]


def test_virus_when_the_pooled_fraction_reaches_the_rule():
    row = _row(_mate("p/1", [0.9, 0.1]), _mate("p/2", [0.8, 0.2]))
    assert row[3:5] == ["virus", "virus"] and row[5:8] == ["4", "2", "0.5"] and row[-1] == "virus"


def test_one_mate_without_a_scored_chunk_is_called_on_the_other():
    row = _row(_mate("p/1", [None]), _mate("p/2", [0.7]))
    assert row[3:5] == ["no_call", "virus"] and row[5:8] == ["1", "1", "1"] and row[-1] == "virus"


def test_no_call_when_neither_mate_is_scored():
    row = _row(_mate("p/1", [None]), _mate("p/2", []))
    assert row[3:] == ["no_call", "no_call", "0", "0", "NA", "NA", "NA", "no_call"]


def test_too_short_only_when_both_mates_are():
    assert _row(_mate("p/1", [0.9], 50), _mate("p/2", [0.9], 50), min_length=100)[-1] == "too_short"
    one_short = _row(_mate("p/1", [0.9], 50), _mate("p/2", [0.1], 300), min_length=100)
    assert one_short[3:5] == ["too_short", "others"]
    assert one_short[5:7] == ["1", "0"] and one_short[-1] == "others"  # the short mate adds no chunks


@pytest.mark.parametrize("calls", [["virus", "others", "others"], []])
def test_pair_counts_of_a_finished_table(tmp_path, calls):
    path = tmp_path / "pairs.tsv"
    path.write_text(PAIRS_HEADER + "".join(f"p{i}\tp{i}/1\tp{i}/2\ta\tb\t1\t1\t1\t1\t1\t{c}\n"
                                           for i, c in enumerate(calls)))
    counts = pair_counts(path)
    assert counts["pairs"] == len(calls)
    assert counts["pair_calls"] == {"virus": calls.count("virus"), "others": calls.count("others"),
                                    "no_call": 0, "too_short": 0}


def test_pairs_tsv_is_a_result_file_of_paired_runs_only(tmp_path):
    from virnucpro.outputs.paths import OutputPaths

    paths = OutputPaths(tmp_path)
    assert paths.pairs not in paths.result_files(write_hits=True)
    assert paths.pairs in paths.result_files(write_hits=False, pairs=True)
    assert {paths.pairs, paths.partial(paths.pairs)} <= set(paths.owned_files())  # --force removes them


def test_the_writer_streams_pairs_and_never_checkpoints_inside_a_pair(tmp_path):
    from virnucpro.outputs.writer import ResultWriter

    writer = ResultWriter(tmp_path, pairs=True)
    writer.add(_mate("p/1", [0.9]))
    with pytest.raises(RuntimeError, match="split a pair"):
        writer.checkpoint()
    writer.add(_mate("p/2", [0.1, None]))
    writer.finish()
    rows = (tmp_path / "pairs.tsv").read_text().splitlines()
    assert rows[0] == PAIRS_HEADER.rstrip("\n")
    assert rows[1].split("\t") == ["p", "p/1", "p/2", "virus", "others", "2", "1", "0.5", "0.9", "0.5", "virus"]
