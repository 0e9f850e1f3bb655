"""`virnucpro predict`: reads or contigs in, viral calls out."""

from __future__ import annotations

from pathlib import Path

import click

from virnucpro.cli.checks import FiniteFloatRange
from virnucpro.cli.run_options import OptionConflictError, build_run_options, run_options, start_logging
from virnucpro.outputs.regions import (
    DEFAULT_EXPECTED_LENGTH,
    DEFAULT_MIN_LENGTH,
    DEFAULT_MIN_SCORED,
    RegionSettings,
)


@click.command("predict")
@click.argument("inputs", nargs=-1, metavar="INPUT...")
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory for the result files.")
@click.option("--samples", "sheet", type=click.Path(dir_okay=False, path_type=Path), metavar="SHEET",
              help="Run a study: a TSV/CSV sample sheet (sample, r1[, r2]); OUTDIR/SAMPLE/ per sample, "
                   "OUTDIR/samples.tsv and study.json. Instead of INPUT...")
@click.option("--threshold", type=FiniteFloatRange(0, 1), default=0.5, show_default=True,
              help="Chunk virus score needed to call a chunk viral (0.5 = the original rule).")
@click.option("--viral-fraction", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="Fraction of a sequence's scored chunks that must be viral to call it virus.")
@click.option("--min-length", type=click.IntRange(min=0), default=0, show_default=True,
              help="Sequences shorter than this (bp) are not scored; sequences.tsv calls them too_short.")
@click.option("--region-length", type=click.IntRange(min=1), default=DEFAULT_EXPECTED_LENGTH, show_default=True,
              help="Expected length (bp) of viral and non-viral stretches: sets the region scan's switch cost.")
@click.option("--min-region-length", type=click.IntRange(min=0), default=DEFAULT_MIN_LENGTH, show_default=True,
              help="Shortest viral region (bp) written to regions.tsv.")
@click.option("--min-region-chunks", type=click.IntRange(min=1), default=DEFAULT_MIN_SCORED, show_default=True,
              help="Fewest scored chunks in a viral region.")
@click.option("--write-hits", is_flag=True,
              help="Also write viral.fa (sequences called virus) and regions.fa (viral regions).")
@click.option("--save-embeddings", is_flag=True, help="Also write embeddings.parquet (one row per kept frame).")
@click.option("--paired", is_flag=True,
              help="INPUT is R1 R2: paired-end mate files, read in lockstep; also writes pairs.tsv.")
@click.option("--interleaved", is_flag=True,
              help="INPUT is one file with mates alternating (R1, R2, R1, ...); also writes pairs.tsv.")
@run_options
def predict(inputs: tuple[str, ...], outdir: Path, sheet: Path | None, threshold: float, viral_fraction: float,
            min_length: int, region_length: int, min_region_length: int, min_region_chunks: int, write_hits: bool,
            save_embeddings: bool, paired: bool, interleaved: bool, **params) -> None:
    """Call viral sequences in INPUT... (FASTA/FASTQ, gz/bz2/xz/zst, - for stdin), or in every sample
    of a sample sheet (--samples SHEET)."""
    if sheet is not None and inputs:
        raise OptionConflictError("give INPUT... or --samples SHEET, not both")
    if sheet is None and not inputs:
        raise click.UsageError("missing INPUT... (or --samples SHEET)")
    if sheet is not None and (paired or interleaved):
        raise OptionConflictError("--paired/--interleaved describe INPUT...; with --samples a sample is paired"
                                  " when the sheet gives its r2")
    logger = start_logging(params)
    regions = RegionSettings(region_length, min_region_length, min_region_chunks)
    options = build_run_options(inputs, outdir, params, threshold=threshold, write_hits=write_hits,
                                save_embeddings=save_embeddings, viral_fraction=viral_fraction,
                                min_length=min_length, regions=regions, paired=paired, interleaved=interleaved)
    if sheet is not None:
        from virnucpro.pipeline.study import run_study

        summary = run_study(options, sheet, logger)
        if summary is not None:  # None: --resume found the study already complete (it said so)
            logger.info("%s", study_line(summary, outdir))
        return
    from virnucpro.pipeline.predict import run

    summary = run(options, logger)
    if summary is not None:  # None: --resume found the run already complete (it said so)
        _report(summary, outdir, logger)


def study_line(summary: dict, outdir: Path) -> str:
    """The study's result in one line: samples, reads, calls, viral fraction, time, where it is."""
    totals, timings = summary["totals"], summary["timings_seconds"]
    busy = summary["device_busy_fraction"]
    return (f"done: study of {totals['samples']:,} samples, {totals['records']:,} sequences: {totals['virus']:,} virus,"
            f" {totals['others']:,} others, {totals['no_call']:,} no_call, {totals['too_short']:,} too_short"
            f" (viral fraction {totals['viral_fraction']}); {totals['regions']:,} viral regions;"
            f" models loaded once in {timings['model_load']:.1f} s, stream {timings['stream']:.1f} s"
            + (f", GPU busy {100 * busy:.0f}%" if busy is not None else "")
            + f"; per-sample results in {outdir}/SAMPLE, table in {outdir}/samples.tsv")


def _report(summary: dict, outdir: Path, logger) -> None:
    counts, timings = summary["counts"], summary["timings_seconds"]
    if counts["records"] == 0:
        logger.warning("the input held no sequences; wrote empty result files")
    if counts["empty_records"]:
        logger.warning("%d records have no sequence (listed in sequences.tsv as no_call)", counts["empty_records"])
    logger.info("%s", session_line(counts, timings["total"], summary["device_busy_fraction"]))
    stages = ", ".join(f"{k.removeprefix('device_')} {v:.1f} s" for k, v in timings.items() if k.startswith("device_"))
    logger.info("device time per stage: %s; results in %s", stages, outdir)
    logger.info("%s", summary_line(counts, outdir))


def session_line(counts: dict, seconds: float, busy: float) -> str:
    """This session's work; after a resume it says which counts are this session's and which the run's."""
    work = (f"{counts['chunks_this_session']:,} chunks, {counts['frames_this_session']:,} kept frames"
            f" ({counts['unique_frames_this_session']:,} distinct) in {seconds:.1f} s; device busy {100 * busy:.0f}%")
    resumed = counts.get("records_resumed", 0)
    if not resumed:
        return f"{counts['records']:,} sequences, {work}"
    return (f"this session: {counts['records_this_session']:,} sequences, {work}; whole run: {counts['records']:,}"
            f" sequences ({resumed:,} done before the resume)")


def summary_line(counts: dict, outdir: Path) -> str:
    """The run's result in one line: what was read, how it was called (and why not), where it is."""
    calls = counts["calls"]
    pairs = ""
    if "pairs" in counts:  # a paired-end run
        pair_calls = counts["pair_calls"]
        pairs = (f" {counts['pairs']:,} pairs: {pair_calls['virus']:,} virus, {pair_calls['others']:,} others,"
                 f" {pair_calls['no_call']:,} no_call, {pair_calls['too_short']:,} too_short (pairs.tsv);")
    return (f"done: {counts['records']:,} sequences read: {calls['virus']:,} virus, {calls['others']:,} others,"
            f" {calls['no_call']:,} no_call (no stop-free frame), {calls['too_short']:,} too_short;{pairs}"
            f" {counts['regions']:,} viral regions; results in {outdir} (hits: virus_summary.tsv)")
