"""OutputPaths: the one place that knows the names of the files in an output directory."""

from __future__ import annotations

from pathlib import Path

PARTIAL_SUFFIX = ".partial"


class OutputPaths:
    def __init__(self, outdir: str | Path) -> None:
        self.outdir = Path(outdir)

    @property
    def prediction_results(self) -> Path:
        """Per-frame table in the original's format."""
        return self.outdir / "prediction_results.txt"

    @property
    def highestscore(self) -> Path:
        """Per-chunk table in the original's format (tab-separated despite the .csv name)."""
        return self.outdir / "prediction_results_highestscore.csv"

    @property
    def chunks(self) -> Path:
        return self.outdir / "chunks.tsv"

    @property
    def sequences(self) -> Path:
        return self.outdir / "sequences.tsv"

    @property
    def viral_fasta(self) -> Path:
        return self.outdir / "viral.fa"

    @property
    def regions(self) -> Path:
        """Viral regions inside sequences (outputs/regions.py), in input order."""
        return self.outdir / "regions.tsv"

    @property
    def regions_fasta(self) -> Path:
        return self.outdir / "regions.fa"

    @property
    def virus_summary(self) -> Path:
        """The hits table, sorted by score; built from sequences.tsv and regions.tsv when those are done."""
        return self.outdir / "virus_summary.tsv"

    @property
    def run_json(self) -> Path:
        return self.outdir / "run.json"

    @property
    def report_html(self) -> Path:
        return self.outdir / "report.html"

    def result_files(self, write_hits: bool) -> list[Path]:
        """The files ResultWriter streams (and checkpoints, and merge joins), in a fixed order."""
        files = [self.prediction_results, self.highestscore, self.chunks, self.sequences, self.regions]
        return files + [self.viral_fasta, self.regions_fasta] if write_hits else files

    @staticmethod
    def partial(final: Path) -> Path:
        """Where a result file grows until the run finishes."""
        return final.with_name(final.name + PARTIAL_SUFFIX)
