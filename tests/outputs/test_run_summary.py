"""A predict run tells its result: the end-of-run summary line and run.json's counts (issue #18 point 3)."""

from __future__ import annotations

import json

from conftest import DATA, GENOMES

from virnucpro.cli.main import main


def test_run_json_counts_and_the_summary_line(tmp_path, model_args, capsys):
    outdir = tmp_path / "out"
    stops = tmp_path / "stops.fa"
    stops.write_text(">all_frames_stop\nATTAATTAGTTAA\n")  # every one of its six frames has a stop codon
    inputs = [str(GENOMES / "phiX174_NC_001422.fa"), str(DATA / "bad" / "short_sequences.fa"), str(stops)]
    args = [a for a in model_args if a != "-q"]
    assert main(["predict", *inputs, "-o", str(outdir), "--min-length", "4", *args]) == 0
    run = json.loads((outdir / "run.json").read_text())
    counts = run["counts"]
    # short_sequences.fa: lengths 1, 2, 3, 4 and a 3-bp stop codon; only len4 reaches --min-length 4
    assert counts["calls"]["too_short"] == 4 and counts["calls"]["no_call"] == 1
    assert sum(counts["calls"].values()) == counts["records"] == 7
    assert counts["regions"] == len((outdir / "regions.tsv").read_text().splitlines()) - 1
    assert run["started_at"] <= run["finished_at"] and run["started_at"].endswith("+00:00")
    assert isinstance(run["command_line"], list)
    assert all(set(point) == {"seconds", "rss_mib", "shared_mib"} for point in run["stream_rss_mib_timeline"])
    assert run["parameters"]["min_length"] == 4 and run["parameters"]["viral_fraction"] == 0.5
    last = capsys.readouterr().err.splitlines()[-1].split(" INFO ", 1)[1]
    assert last.startswith("done: 7 sequences read: ") and "4 too_short" in last and "1 no_call" in last, last
    assert str(outdir) in last and "virus_summary.tsv" in last


def test_viral_fa_keeps_the_input_header_description(tmp_path, model_args):
    outdir = tmp_path / "out"
    # threshold 0.3: the tiny random classifier's chunk scores (about 0.43) all count as viral
    assert main(["predict", str(GENOMES / "phiX174_NC_001422.fa"), "-o", str(outdir), "--write-hits",
                 "--threshold", "0.3", *model_args]) == 0
    header = (outdir / "viral.fa").read_text().splitlines()[0]
    assert header == ">1 phiX: http://www.genome.jp/dbget-bin/www_bget?refseq+NC_001422"
