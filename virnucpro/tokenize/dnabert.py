"""DNABERT-S BPE tokenizer: the published tokenizer.json through the `tokenizers` library.

The published file switches on truncation (2000) and fixed padding (2000); both are switched off
here because sequences are packed without padding. The vocabulary is upper case only and has no
normaliser, so input is upper-cased first; characters outside A/C/G/T (e.g. N) become [UNK],
exactly as in the original.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from virnucpro.errors import ModelLoadError

CLS_ID = 1
SEP_ID = 2


class DnabertTokenizer:
    """Batch encoder returning one int32 id array per sequence, [CLS] ... [SEP] included."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer

    @classmethod
    def from_dir(cls, path: str | Path) -> DnabertTokenizer:
        """Load `tokenizer.json` from a model directory (e.g. a Hugging Face snapshot)."""
        file = Path(path) / "tokenizer.json"
        if not file.is_file():
            raise ModelLoadError(f"DNABERT-S tokenizer not found: {file}")
        return cls(Tokenizer.from_file(str(file)))

    @classmethod
    def default(cls) -> DnabertTokenizer:
        """The tokenizer.json shipped in the package (a public copy of the published one)."""
        packaged = resources.files("virnucpro") / "data" / "dnabert-s" / "tokenizer.json"
        return cls(Tokenizer.from_str(packaged.read_text(encoding="utf-8")))

    def encode_batch(self, seqs: Sequence[str]) -> list[np.ndarray]:
        """Token ids per sequence (int32), with [CLS] first and [SEP] last."""
        # encode_batch_fast skips character offsets, which are never used here (~2x faster).
        encodings = self._tokenizer.encode_batch_fast([s.upper() for s in seqs])
        return [np.asarray(e.ids, dtype=np.int32) for e in encodings]
