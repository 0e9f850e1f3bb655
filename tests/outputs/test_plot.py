"""`virnucpro plot`: the report and figure files, what they contain, and one-line errors."""

import base64
import json
import re

import numpy as np
import pytest

from virnucpro.cli.main import main
from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.results import ChunkResult, FrameScore, SequenceResult
from virnucpro.outputs.summary import gather
from virnucpro.outputs.writer import ResultWriter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def contig(name, scores, chunk_size=500):
    """A sequence whose chunk i has one kept frame with P(virus) = scores[i] (None: no kept frame)."""
    chunks = []
    for index, score in enumerate(scores):
        chunk_id = f"{name}_chunk_{index + 1}"
        p_virus = None if score is None else float(np.float32(score))
        frames = [] if score is None else [FrameScore(chunk_id + "F1", float(np.float32(1 - score)), p_virus)]
        chunks.append(ChunkResult(chunk_id, index * chunk_size, (index + 1) * chunk_size, frames))
    return SequenceResult(name, len(scores) * chunk_size, chunks, "A" * len(scores) * chunk_size)


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    """A long contig with a high-scoring (prophage-like) region, a viral contig, reads, a no-call."""
    root = tmp_path_factory.mktemp("run")
    writer = ResultWriter(root, threshold=0.6, write_hits=True)
    writer.add(contig("host<contig>", [0.1] * 20 + [0.9] * 8 + [None] + [0.2] * 11))
    writer.add(contig("phage<&>", [0.8, 0.7, 0.95, 0.3]))
    for index in range(30):
        writer.add(contig(f"read{index}", [0.02 + index / 31], chunk_size=150))
    writer.add(contig("nothing", [None, None]))
    writer.finish()
    write_json_atomic(OutputPaths(root).run_json, {"version": "0.1.0", "parameters": {"threshold": 0.6}})
    return root


def test_gather_counts_calls_chunks_and_picks_tracks(outdir):
    data = gather(OutputPaths(outdir), threshold=0.6, max_tracks=2)
    assert data.calls == {"others": 1 + 18, "virus": 1 + 12, "no_call": 1}
    assert (data.n_chunks, data.n_chunks_scored, data.n_frames) == (40 + 4 + 30 + 2, 39 + 4 + 30, 73)
    assert [track.sequence.sequence_id for track in data.tracks] == ["host<contig>", "phage<&>"]
    assert [track.sequence.sequence_id for track in gather(OutputPaths(outdir), 0.6, 5).tracks] == [
        "host<contig>", "phage<&>"], "sequences with fewer than two scored chunks get no track"
    assert [chunk.start for chunk in data.tracks[0].chunks] == list(range(0, 20000, 500))
    assert data.tracks[0].chunks[28].virus_score is None
    assert data.top_hits[0].sequence_id == "phage<&>"
    assert sum(data.chunk_scores.counts) == 73 and data.n_chunks_viral == 8 + 3 + 12


def test_plot_writes_a_self_contained_html_report(outdir):
    assert main(["plot", str(outdir)]) == 0
    page = (outdir / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=["'](?!data:)""", page), "no external resources"
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2 and all(base64.b64decode(image).startswith(PNG_MAGIC) for image in images)
    assert "<td>phage&lt;&amp;&gt;</td>" in page and "phage<&>" not in page
    assert "chunk threshold 0.6" in page
    summary = dict(re.findall(r"<tr><td>([^<]+)</td><td>([\d,]+)</td>", page))
    assert summary["called virus"] == "13" and summary["no_call (no stop-free frame)"] == "1"
    assert "run.json" in page


def test_the_report_lists_regions_and_uncalled_sequences_with_denominators(outdir):
    assert main(["plot", str(outdir)]) == 0
    page = (outdir / "report.html").read_text()
    assert "<td>host&lt;contig&gt;|region_1</td><td>10,000</td><td>14,000</td>" in page  # the 0.9 stretch
    summary = dict(re.findall(r"<tr><td>([^<]+)</td><td>([\d,]+)</td>", page))
    assert summary["viral regions"] == "2" and summary["too_short (below --min-length)"] == "0"
    assert "<td>no_call (no stop-free frame)</td><td>1</td><td>3.0%</td><td>of all sequences</td>" in page
    assert "<td>nothing</td><td>1,000</td><td>no_call</td><td>no stop-free frame in any chunk</td>" in page
    data = gather(OutputPaths(outdir), 0.6, 5)
    assert [(r.start, r.end) for r in data.tracks[0].regions] == [(10_000, 14_000)] and data.n_regions == 2
    assert data.reads_mode  # 30 of the 33 sequences are one-chunk reads


def test_reads_get_a_histogram_of_read_scores(tmp_path):
    writer = ResultWriter(tmp_path)
    for index in range(10):
        writer.add(contig(f"read{index}", [index / 10], chunk_size=150))
    writer.finish()
    data = gather(OutputPaths(tmp_path), 0.5, 5)
    assert data.reads_mode and sum(data.sequence_scores.counts) == 10
    assert main(["plot", str(tmp_path)]) == 0


def test_plot_writes_figures_for_an_image_output_name(outdir, tmp_path):
    assert main(["plot", str(outdir), "-o", str(tmp_path / "scan.png"), "--max-tracks", "1", "--threshold", "0.5"]) == 0
    assert (tmp_path / "scan.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "scan_tracks.png").read_bytes().startswith(PNG_MAGIC)
    assert main(["plot", str(outdir), "-o", str(tmp_path / "scan.pdf"), "--max-tracks", "0"]) == 0
    assert (tmp_path / "scan.pdf").read_bytes().startswith(b"%PDF")
    assert not (tmp_path / "scan_tracks.pdf").exists()


def test_plot_of_reads_only_says_there_are_no_tracks(tmp_path):
    writer = ResultWriter(tmp_path)
    writer.add(contig("read", [0.7], chunk_size=150))
    writer.finish()
    assert main(["plot", str(tmp_path)]) == 0
    assert "nothing to scan along" in (tmp_path / "report.html").read_text()


def one_line_error(capsys, argv):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("virnucpro: error: ")
    return err


def test_plot_errors_are_one_line(tmp_path, capsys, outdir):
    assert "not found" in one_line_error(capsys, ["plot", str(tmp_path / "missing")])
    assert "sequences.tsv not found" in one_line_error(capsys, ["plot", str(tmp_path)])
    (tmp_path / "sequences.tsv.partial").write_text("")
    assert "did not finish" in one_line_error(capsys, ["plot", str(tmp_path)])
    (tmp_path / "sequences.tsv").write_text("id\tscore\n")
    assert "did not finish" in one_line_error(capsys, ["plot", str(tmp_path)])  # a stale partial beside it
    (tmp_path / "sequences.tsv.partial").unlink()
    assert "not a virnucpro sequences.tsv" in one_line_error(capsys, ["plot", str(tmp_path)])

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("sequences.tsv", "chunks.tsv"):
        (broken / name).write_text((outdir / name).read_text())
    with open(broken / "chunks.tsv", "a") as handle:
        handle.write("x_chunk_1\tx\t0\tten\t1\t0.5\t0.5\t0.5\tTrue\n")
    assert ":78: invalid literal" in one_line_error(capsys, ["plot", str(broken)])
    (broken / "run.json").write_text(json.dumps({"parameters": {"threshold": "high"}}))
    assert "parameters.threshold" in one_line_error(capsys, ["plot", str(broken)])


def test_ids_with_matplotlib_mathtext_are_drawn_as_text(tmp_path):
    """`$\\foo{...}$` in an ID made matplotlib's math parser raise while drawing the track title."""
    writer = ResultWriter(tmp_path)
    writer.add(contig("$\\foo{x}$_^{", [0.9, 0.2, 0.8]))
    writer.add(contig("a$b$c\\", [0.1, 0.7]))
    writer.finish()
    assert main(["plot", str(tmp_path)]) == 0
    assert main(["plot", str(tmp_path), "-o", str(tmp_path / "fig.svg")]) == 0
    assert "$\\foo{x}$_^{" in (tmp_path / "fig_tracks.svg").read_text()


@pytest.mark.parametrize("name", ["fig.jpg", "fig", "fig.txt", "report.html.bak"])
def test_plot_refuses_an_output_name_it_cannot_write(tmp_path, capsys, outdir, name):
    """`-o fig.jpg` wrote HTML into fig.jpg; the extension decides what is written, or one line says why not."""
    err = one_line_error(capsys, ["plot", str(outdir), "-o", str(tmp_path / name)])
    assert ".html, .htm, .png, .pdf, .svg" in err
    assert not (tmp_path / name).exists()


def test_plot_writes_the_report_for_an_html_name_and_leaves_no_partial(tmp_path, outdir):
    assert main(["plot", str(outdir), "-o", str(tmp_path / "r.HTM")]) == 0
    assert (tmp_path / "r.HTM").read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.HTM"]


def test_plot_into_a_missing_directory_is_one_line(tmp_path, capsys, outdir):
    assert "does not exist" in one_line_error(capsys, ["plot", str(outdir), "-o", str(tmp_path / "no" / "r.html")])


def _edited(outdir, tmp_path, name, edit):
    target = tmp_path / "edited"
    target.mkdir()
    for table in ("sequences.tsv", "chunks.tsv", "run.json"):
        (target / table).write_bytes((outdir / table).read_bytes())
    lines = (target / name).read_text().split("\n")
    (target / name).write_text("\n".join(edit(lines)))
    return target


def _set_field(line_index, column, value):
    def edit(lines):
        fields = lines[line_index].split("\t")
        fields[column] = value
        lines[line_index] = "\t".join(fields)
        return lines
    return edit


# sequences.tsv columns: id length n_chunks scored viral fraction max mean call
# chunks.tsv columns: chunk_id sequence_id start end n_frames max_others max_virus virus_score is_virus
@pytest.mark.parametrize(("name", "edit", "expected"), [
    ("sequences.tsv", _set_field(1, 5, "nan"), "viral_fraction 'nan' is not in [0, 1]"),
    ("sequences.tsv", _set_field(1, 6, "inf"), "max_virus_score 'inf' is not in [0, 1]"),
    ("sequences.tsv", _set_field(1, 7, "-0.5"), "mean_virus_score '-0.5' is not in [0, 1]"),
    ("sequences.tsv", _set_field(1, 1, "-5"), "length '-5' is out of range"),
    ("sequences.tsv", _set_field(1, 2, "9" * 40), "is out of range"),
    ("sequences.tsv", _set_field(1, 3, "many"), "invalid literal"),
    ("sequences.tsv", _set_field(1, 8, "maybe"), "unknown call"),
    ("sequences.tsv", lambda lines: lines[:1] + ["only\tthree\tcolumns"], "expected 9 columns, found 3"),
    ("chunks.tsv", _set_field(1, 5, "nan"), "max_score_others 'nan' is not in [0, 1]"),
    ("chunks.tsv", _set_field(1, 6, "1e308"), "is not in [0, 1]"),
    ("chunks.tsv", lambda lines: _set_field(1, 6, "0")(_set_field(1, 5, "0")(lines)), "do not make a chunk score"),
    ("chunks.tsv", _set_field(1, 6, "NA"), "do not make a chunk score"),
    ("chunks.tsv", _set_field(2, 3, "0"), "end 0 is before start 500"),
    ("chunks.tsv", _set_field(1, 7, "0.999"), "does not match the chunk's max scores"),
    ("chunks.tsv", _set_field(1, 2, "1e5"), "invalid literal"),
    ("chunks.tsv", lambda lines: ["chunk_id\tsequence_id"] + lines[1:], "unexpected header"),
    ("run.json", lambda lines: ['{"parameters": {"threshold": NaN}}'], "parameters.threshold"),
    ("run.json", lambda lines: ["[" * 100_000], "run.json"),
])
def test_corrupt_plot_inputs_are_one_line_errors(tmp_path, capsys, outdir, name, edit, expected):
    edited = _edited(outdir, tmp_path, name, edit)
    assert expected in one_line_error(capsys, ["plot", str(edited)])


def test_plot_of_tables_that_are_not_utf8_is_one_line(tmp_path, capsys, outdir):
    edited = _edited(outdir, tmp_path, "chunks.tsv", lambda lines: lines)
    with open(edited / "chunks.tsv", "ab") as handle:
        handle.write(b"\xff\xfe\tx\n")
    assert "not UTF-8" in one_line_error(capsys, ["plot", str(edited)])


def test_virus_call_without_a_mean_score_still_ranks(tmp_path, outdir):
    """Two hits with equal viral counts compared their mean scores, and None < float raised TypeError."""
    edited = _edited(outdir, tmp_path, "sequences.tsv",
                     lambda lines: lines[:-1] + ["odd\t150\t1\t1\t1\t1\t1\tNA\tvirus", "twin\t150\t1\t1\t1\t1\t1\t0.9\tvirus", ""])
    assert main(["plot", str(edited)]) == 0
