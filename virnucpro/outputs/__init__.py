"""Result files, run.json, plots and the HTML report.

Files in OUTDIR (names only in `paths.OutputPaths`), all tab-separated with a header, one row per
line, written as NAME.partial and renamed when the run finishes:

- `prediction_results.txt` (the original's): `Sequence_ID Prediction score1 score2`, one row per
  kept frame, chunks in input order, frames F1 F2 F3 R1 R2 R3. score1 = P(others),
  score2 = P(virus), printed as the original did (`str` of a numpy float32, e.g. `0.9876543`).
  Prediction is `virus` only when score2 > score1: the original took torch.max, whose first
  maximum wins, so an exact tie is `others`.
- `prediction_results_highestscore.csv` (the original's, tab-separated): `Modified_ID Is_Virus`,
  one row per chunk with a kept frame, Is_Virus = max(score2) >= max(score1) (`True`/`False`,
  ties True); `--threshold` does not change it. Rows are in input order; the original wrote them
  sorted by ID (a pandas groupby), which `LC_ALL=C sort` of the rows below the header reproduces.
- `chunks.tsv`: every chunk, including those with no kept frame (n_frames 0, scores and is_virus
  `NA`); the two maxima printed like the original's scores, so is_virus can be recomputed exactly.
- `sequences.tsv`: every input sequence in input order; statistics over the scored chunks with
  6 significant digits, `NA` when none was scored. The calling rule is in `results`.
- `viral.fa` (with write_hits): the input sequences called `virus`, one unwrapped line each.
- `run.json`: written by the pipeline with `write_json_atomic`.

Every file is created new, never through a link or over a file the run did not create
(`fsutil.safe_files`), by a run holding OUTDIR's lock (`rundir_lock.RunDirLock`); `--force` removes exactly
`OutputPaths.owned_files()` and `owned_dirs()`.
"""

from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.results import (
    ChunkResult,
    FrameScore,
    SequenceCall,
    SequenceResult,
)
from virnucpro.outputs.writer import ResultWriter

__all__ = [
    "ChunkResult", "FrameScore", "OutputPaths", "ResultWriter", "SequenceCall", "SequenceResult", "write_json_atomic",
]
