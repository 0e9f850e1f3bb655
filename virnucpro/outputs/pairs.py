"""pairs.tsv: one row per read pair of a paired-end run, with a pair-level call.

Pair rule: the scored chunks of both mates are pooled and the sequence rule is applied to the
pool: `virus` when viral chunks / scored chunks >= --viral-fraction, `others` when there are
scored chunks but too few are viral, `no_call` when neither mate has a scored chunk, `too_short`
when both mates are shorter than --min-length (a too-short mate adds no chunks to the pool). So a
pair whose one mate has no stop-free frame is called on the other mate alone, and two mates of
2 chunks each with 1 and 2 viral chunks make 3/4 viral chunks.

Mates arrive one after the other (io/pairs.py yields them so, and blocks never split a pair), so
the table needs only the pending mate 1, never a lookup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from virnucpro.outputs.formats import stat_text
from virnucpro.outputs.results import CALLS, ChunkResult, SequenceCall, SequenceTally
from virnucpro.outputs.tables import ResultsFileError

PAIRS_COLUMNS = (
    "pair_id", "mate1_id", "mate2_id", "mate1_call", "mate2_call", "n_chunks_scored", "n_viral_chunks",
    "viral_fraction", "max_virus_score", "mean_virus_score", "call",
)
PAIRS_HEADER = "\t".join(PAIRS_COLUMNS) + "\n"
_CALL_COLUMN = PAIRS_COLUMNS.index("call")


class PairTable:
    """Pools each pair's mates into one row, written through `write` when mate 2 arrives."""

    def __init__(self, write: Callable[[bytes], object], threshold: float, viral_fraction: float) -> None:
        self._write = write
        self.threshold = threshold
        self.viral_fraction = viral_fraction
        self.calls: Counter[str] = Counter()
        self._mate1: tuple[str, SequenceCall, SequenceTally] | None = None

    def add_mate(self, record_id: str, call: SequenceCall, chunks: list[ChunkResult]) -> None:
        """A mate's call and chunks, mate 1 then mate 2 of each pair, in input order."""
        if self._mate1 is None:
            tally = SequenceTally(self.threshold, self.viral_fraction)
            if call.call != "too_short":
                tally.add(chunks)
            self._mate1 = (record_id, call, tally)
            return
        mate1_id, mate1_call, tally = self._mate1
        self._mate1 = None
        if call.call != "too_short":
            tally.add(chunks)
        pair = tally.call(too_short=mate1_call.call == call.call == "too_short")
        self._write(pair_line(mate1_id, record_id, mate1_call.call, call.call, pair).encode())
        self.calls[pair.call] += 1

    @property
    def between_pairs(self) -> bool:
        """Whether no mate 1 waits for its mate (true at every block end, hence at every checkpoint)."""
        return self._mate1 is None

    def recount(self, pairs_file: Path) -> None:
        """The calls of the rows already written (a resumed run counts the whole run)."""
        self.calls.update(pair_counts(pairs_file)["pair_calls"])


def pair_line(mate1_id: str, mate2_id: str, mate1_call: str, mate2_call: str, pair: SequenceCall) -> str:
    """One pairs.tsv row (PAIRS_COLUMNS); the pair ID is mate 1's ID without its `/1`."""
    fields = (
        mate1_id.removesuffix("/1"), mate1_id, mate2_id, mate1_call, mate2_call, str(pair.n_chunks_scored),
        str(pair.n_viral_chunks), stat_text(pair.viral_fraction), stat_text(pair.max_virus_score),
        stat_text(pair.mean_virus_score), pair.call,
    )
    return "\t".join(fields) + "\n"


def pair_counts(pairs_file: Path) -> dict:
    """Pairs and pairs per call in a finished pairs.tsv, as run.json gives them (a run's, a merge's).
    `plot` reads it from an OUTDIR anyone may edit: a file that is not ours is one ResultsFileError
    line (the count stays one C-level pass; the calls are checked once, after it)."""
    calls: Counter[str] = Counter()
    try:
        with open(pairs_file, encoding="utf-8") as lines:
            if next(lines, "") != PAIRS_HEADER:
                raise ResultsFileError(f"{pairs_file}: the header is not pairs.tsv's; not a file virnucpro wrote")
            calls.update(line.rstrip("\n").split("\t")[_CALL_COLUMN] for line in lines)
    except (UnicodeDecodeError, IndexError):
        raise ResultsFileError(f"{pairs_file} is not UTF-8 TSV with a call in every row; not a file virnucpro"
                               " wrote") from None
    if not set(calls) <= set(CALLS):
        odd = next(call for call in calls if call not in CALLS)
        raise ResultsFileError(f"{pairs_file}: call {odd[:40]!r} is not one of {', '.join(CALLS)}; not a file"
                               " virnucpro wrote")
    return {"pairs": calls.total(), "pair_calls": {call: calls[call] for call in CALLS}}


