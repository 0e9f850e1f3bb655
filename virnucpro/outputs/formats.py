"""Text lines of every result file; pure functions, so the formats are tested without any I/O.

The two original files copy the original byte for byte: it printed each probability with
`str()` of a numpy float32 (`'\\t'.join(map(str, probability))` over `probabilities.numpy()`),
which is numpy's shortest round-trip float32 text, e.g. `0.9876543`, `1e-08`, `1.0`.
Our own tables print the chunk maxima the same exact way (so `is_virus` can be recomputed from
them) and derived statistics with 6 significant digits; a missing value is `NA`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from virnucpro.outputs.regions import Region
from virnucpro.outputs.results import ChunkResult, SequenceCall, SequenceResult

NA = "NA"

PREDICTION_HEADER = "Sequence_ID\tPrediction\tscore1\tscore2\n"
HIGHESTSCORE_HEADER = "Modified_ID\tIs_Virus\n"
CHUNKS_COLUMNS = (
    "chunk_id", "sequence_id", "start", "end", "n_frames", "max_score_others", "max_score_virus", "virus_score",
    "is_virus",
)
SEQUENCES_COLUMNS = (
    "sequence_id", "length", "n_chunks", "n_chunks_scored", "n_viral_chunks", "viral_fraction",
    "max_virus_score", "mean_virus_score", "call",
)
REGIONS_COLUMNS = (
    "sequence_id", "region_id", "start", "end", "length", "n_chunks", "n_chunks_scored", "n_viral_chunks",
    "mean_virus_score", "max_virus_score", "log_odds_viral", "whole_sequence",
)
CHUNKS_HEADER = "\t".join(CHUNKS_COLUMNS) + "\n"
SEQUENCES_HEADER = "\t".join(SEQUENCES_COLUMNS) + "\n"
REGIONS_HEADER = "\t".join(REGIONS_COLUMNS) + "\n"


@lru_cache(maxsize=256)  # a chunk's maxima repeat its frames' values, printed just before
def float32_text(value: float) -> str:
    """A probability printed exactly as the original printed it (str of a numpy float32)."""
    return str(np.float32(value))


def stat_text(value: float | None) -> str:
    """A derived statistic: 6 significant digits, `NA` when missing."""
    return NA if value is None else format(value, ".6g")


def flag_text(value: bool | None) -> str:
    return NA if value is None else str(value)


def prediction_lines(chunk: ChunkResult) -> str:
    """prediction_results.txt rows: one per kept frame, in the order given (F1 F2 F3 R1 R2 R3)."""
    return "".join(
        f"{frame.frame_id}\t{frame.prediction}\t{float32_text(frame.p_others)}\t{float32_text(frame.p_virus)}\n"
        for frame in chunk.frames
    )


def highestscore_line(chunk: ChunkResult) -> str:
    """prediction_results_highestscore.csv row (tab-separated); chunks with no kept frame get none."""
    if not chunk.scored:
        return ""
    return f"{chunk.chunk_id}\t{chunk.original_is_virus()}\n"


def chunk_line(chunk: ChunkResult, sequence_id: str, threshold: float) -> str:
    if chunk.scored:
        maxima = (float32_text(chunk.max_p_others), float32_text(chunk.max_p_virus))
    else:
        maxima = (NA, NA)
    fields = (
        chunk.chunk_id, sequence_id, str(chunk.start), str(chunk.end), str(len(chunk.frames)),
        *maxima, stat_text(chunk.virus_score()), flag_text(chunk.is_viral(threshold)),
    )
    return "\t".join(fields) + "\n"


def sequence_line(sequence_id: str, length: int, call: SequenceCall) -> str:
    """sequences.tsv row (SEQUENCES_COLUMNS); `tables.SequenceRow` is the same row read back."""
    fields = (
        sequence_id, str(length), str(call.n_chunks), str(call.n_chunks_scored),
        str(call.n_viral_chunks), stat_text(call.viral_fraction), stat_text(call.max_virus_score),
        stat_text(call.mean_virus_score), call.call,
    )
    return "\t".join(fields) + "\n"


def fasta_record(record_id: str, sequence: str, description: str | None = None) -> str:
    """One unwrapped FASTA record, like the original's FASTA outputs; the input's description kept."""
    header = f"{record_id} {description}" if description else record_id
    return f">{header}\n{sequence}\n"


def region_id(sequence_id: str, number: int) -> str:
    """`ID|region_N`, N counted from 1 along the sequence (geNomad names proviruses `ID|provirus_...`)."""
    return f"{sequence_id}|region_{number}"


def region_lines(result: SequenceResult, regions: list[Region]) -> str:
    """regions.tsv rows of one sequence: 0-based, end-exclusive chunk-boundary coordinates."""
    return "".join(
        "\t".join((
            result.record_id, region_id(result.record_id, number), str(r.start), str(r.end), str(r.length),
            str(r.n_chunks), str(r.n_scored), str(r.n_viral), stat_text(r.mean_score), stat_text(r.max_score),
            stat_text(r.log_odds), str(r.start == 0 and r.end == result.length),
        )) + "\n"
        for number, r in enumerate(regions, start=1)
    )


def region_fasta(result: SequenceResult, regions: list[Region]) -> str:
    """regions.fa records of a sequence held in memory (a spooled one: see ResultWriter._add_regions)."""
    return "".join(
        f"{region_header(result.record_id, number, r)}{result.sequence[r.start:r.end]}\n"
        for number, r in enumerate(regions, start=1)
    )


def region_header(record_id: str, number: int, region: Region) -> str:
    """A regions.fa header line: the span as ID:FIRST-LAST (1-based, inclusive, like samtools)."""
    return f">{region_id(record_id, number)} {record_id}:{region.start + 1}-{region.end}\n"
