"""OutputPaths: the one place that knows the names of the files in an output directory."""

from __future__ import annotations

import re
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
PART_NAME = re.compile(r"part-\d{8}(-\d{10})?\.parquet")  # what `embedding_part` names
STATE_DIR = ".virnucpro"  # journal and run lock of the run writing OUTDIR
SHARD_FILE = "shard.json"
JOURNAL_FILE = "journal.json"  # in the state dir while a run is unfinished


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
    def pairs(self) -> Path:
        """Paired-end runs only: one row per read pair, its pair-level call (outputs/pairs.py)."""
        return self.outdir / "pairs.tsv"

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

    @property
    def shard_json(self) -> Path:
        """With --shard: where each block lies in the result files (read by merge)."""
        return self.outdir / SHARD_FILE

    @property
    def embeddings(self) -> Path:
        """With --save-embeddings: one row per kept frame."""
        return self.outdir / "embeddings.parquet"

    @property
    def embedding_parts(self) -> Path:
        """Per-block parquet parts, joined into `embeddings` at the end."""
        return self.parts_dir(self.embeddings)

    @property
    def state_dir(self) -> Path:
        return self.outdir / STATE_DIR

    @property
    def journal(self) -> Path:
        return self.state_dir / JOURNAL_FILE

    def summary_run(self, number: int) -> Path:
        """A sorted run of virus_summary rows spilled while the table is sorted (outputs/hits.py);
        removed once the table is written."""
        return self.state_dir / f"virus_summary.run-{number:06d}.tsv"

    def owned_files(self) -> list[Path]:
        """Every file virnucpro writes directly in OUTDIR, final and partial (--force removes exactly
        these, `owned_dirs` and nothing else)."""
        finals = [*self.result_files(write_hits=True, pairs=True), self.virus_summary, self.embeddings, self.run_json,
                  self.shard_json, self.report_html]
        return finals + [self.partial(final) for final in finals]

    def owned_dirs(self) -> list[Path]:
        """The directories virnucpro creates in OUTDIR (state and embedding parts)."""
        return [self.embedding_parts, self.state_dir]

    def result_files(self, write_hits: bool, pairs: bool = False) -> list[Path]:
        """The files ResultWriter streams (and checkpoints, and merge joins), in a fixed order;
        `pairs`: a paired-end run's (pairs.tsv)."""
        files = [self.prediction_results, self.highestscore, self.chunks, self.sequences, self.regions]
        files += [self.pairs] if pairs else []
        return files + [self.viral_fasta, self.regions_fasta] if write_hits else files

    @staticmethod
    def partial(final: Path) -> Path:
        """Where a result file grows until the run finishes."""
        return final.with_name(final.name + PARTIAL_SUFFIX)

    @staticmethod
    def parts_dir(embeddings: Path) -> Path:
        """Per-block parquet parts of an embeddings file (also embed's state directory)."""
        return embeddings.with_name(embeddings.name + ".parts")

    @staticmethod
    def embedding_part(parts: Path, block_index: int, piece: int | None) -> Path:
        """One block's part; a long record's work blocks share its index and add their first chunk."""
        return parts / (f"part-{block_index:08d}.parquet" if piece is None else
                        f"part-{block_index:08d}-{piece:010d}.parquet")


class StudyPaths:
    """The files a study (`predict --samples`) writes in OUTDIR beside one directory per sample."""

    def __init__(self, outdir: str | Path) -> None:
        self.outdir = Path(outdir)

    @property
    def samples_table(self) -> Path:
        """One row per sample, in sheet order (outputs/samples_table.py)."""
        return self.outdir / "samples.tsv"

    @property
    def study_json(self) -> Path:
        return self.outdir / "study.json"

    @property
    def report_html(self) -> Path:
        return self.outdir / "report.html"

    @property
    def state_dir(self) -> Path:
        return self.outdir / STATE_DIR

    @property
    def journal(self) -> Path:
        """The study's progress while it is unfinished (which samples are done, with their files' sha256)."""
        return self.state_dir / "study_journal.json"

    def sample_dir(self, name: str) -> Path:
        return self.outdir / name

    def owned_files(self) -> list[Path]:
        """The study-level files (--force removes these, the journal, and each sample's own files)."""
        finals = [self.samples_table, self.study_json, self.report_html]
        return finals + [OutputPaths.partial(final) for final in finals]

    @staticmethod
    def reserved_names() -> frozenset[str]:
        """Names a sample may not take: any file or directory virnucpro writes in OUTDIR."""
        root = Path("/")
        owned = [*OutputPaths(root).owned_files(), *OutputPaths(root).owned_dirs(), *StudyPaths(root).owned_files()]
        return frozenset(path.name for path in owned)
