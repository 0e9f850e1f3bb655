"""DNABERT-S BPE tokenizer: the published tokenizer.json through the `tokenizers` library.

The published file switches on truncation (2000) and fixed padding (2000); both are switched off
here because sequences are packed without padding. The vocabulary is upper case only and has no
normaliser, so input is upper-cased first; characters outside A/C/G/T (e.g. N) become [UNK],
exactly as in the original.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from virnucpro.errors import ModelLoadError
from virnucpro.fsutil.untrusted import Invalid, load_json_object

CLS_ID = 1
SEP_ID = 2
MAX_VOCAB = 1 << 20  # the published vocabulary has 4096 entries


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
        try:
            data = load_json_object(file)
        except Invalid as err:
            raise ModelLoadError(f"{file} is not a usable tokenizer: {err}") from None
        _check_tokenizer_json(data, file)
        ids = [*data["model"]["vocab"].values(), *(token["id"] for token in data.get("added_tokens", []))]
        _check_ids_fit_the_model(ids, Path(path) / "config.json", file)
        try:
            return cls(Tokenizer.from_str(json.dumps(data)))
        except Exception as err:  # the Rust library raises plain Exception; its first line says what
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise ModelLoadError(f"{file} is not a usable tokenizer: {reason}") from None

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


def _check_tokenizer_json(data: dict, file: Path) -> None:
    """The parts the `tokenizers` library would trust or choke on: the vocabulary's types and size,
    and the [CLS]/[SEP] ids that packing hard-codes. One error line for each problem."""
    model = data.get("model")
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if not isinstance(vocab, dict):
        raise ModelLoadError(f"{file} has no model.vocab object; not a tokenizer.json")
    if len(vocab) > MAX_VOCAB:
        raise ModelLoadError(f"{file} has {len(vocab):,} vocabulary entries; at most {MAX_VOCAB:,} are accepted")
    if not all(type(i) is int and 0 <= i < MAX_VOCAB for i in vocab.values()):
        raise ModelLoadError(f"{file}: vocabulary ids must be whole numbers below {MAX_VOCAB:,}")
    added = data.get("added_tokens", [])
    if not isinstance(added, list) or any(
        type(t.get("id") if isinstance(t, dict) else None) is not int or not 0 <= t["id"] < MAX_VOCAB for t in added
    ):
        raise ModelLoadError(f"{file}: added_tokens must each have a whole-number id below {MAX_VOCAB:,}")
    if vocab.get("[CLS]") != CLS_ID or vocab.get("[SEP]") != SEP_ID:
        raise ModelLoadError(f"{file}: [CLS] and [SEP] must have ids {CLS_ID} and {SEP_ID}, as in DNABERT-S")


def _check_ids_fit_the_model(ids: list[int], config: Path, file: Path) -> None:
    """Every token id must index the model's embedding table (else a crash, or a device assert on
    a GPU, mid-run); checked against the same directory's config.json when it has one."""
    if not config.is_file():
        return
    try:  # only the one field this check needs; the model loader validates the whole config
        vocab_size = load_json_object(config).get("vocab_size")
    except Invalid as err:
        raise ModelLoadError(f"{config} is not a usable config: {err}") from None
    if type(vocab_size) is not int or vocab_size < 1:
        raise ModelLoadError(f"{config}: vocab_size must be a positive whole number, got {vocab_size!r}")
    largest = max(ids, default=-1)
    if largest >= vocab_size:
        raise ModelLoadError(f"{file}: token id {largest} does not fit the model's vocab_size {vocab_size} ({config})")
