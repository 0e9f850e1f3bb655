"""The ESM-2 alphabet and protein -> token id encoding (vectorised through a byte lookup table).

Policy for characters outside the alphabet: the original (fair-esm) raises; we map every unknown
character -- and the stop `*` -- to `X` (unknown amino acid), after upper-casing. Kept frames are
stop-free, so in the pipeline this only touches rare ambiguity codes such as `J`.
Like the original's batch converter, sequences longer than 1024 residues are truncated to their
first 1024 residues before <cls>/<eos> are added.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from virnucpro.tokenize.packing import PackedTokens, pack

TOKENS = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W",
    "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)  # fmt: skip
CLS, PAD, EOS, UNK = 0, 1, 2, 3
MASK = TOKENS.index("<mask>")
X = TOKENS.index("X")
MAX_RESIDUES = 1024  # fair-esm's truncation_seq_length as used by the original


def _byte_table() -> np.ndarray:
    table = np.full(256, X, dtype=np.int64)
    for token_id, token in enumerate(TOKENS):
        if len(token) == 1:
            table[ord(token)] = token_id
            table[ord(token.lower())] = token_id
    return table


_TABLE = _byte_table()


def encode_protein(protein: str, max_residues: int = MAX_RESIDUES) -> np.ndarray:
    """<cls> + residues (unknown -> X, at most max_residues) + <eos> as int64 ids."""
    residues = np.frombuffer(protein[:max_residues].encode("latin-1", "replace"), dtype=np.uint8)
    ids = np.empty(residues.size + 2, dtype=np.int64)
    ids[0], ids[-1] = CLS, EOS
    ids[1:-1] = _TABLE[residues]
    return ids


def encode_protein_arrays(proteins: Sequence[str], max_residues: int = MAX_RESIDUES) -> list[np.ndarray]:
    """`encode_protein` of many proteins in one pass over their concatenated bytes (views into one
    buffer; the same ids)."""
    if not proteins:
        return []
    clipped = [p[:max_residues] for p in proteins]
    lengths = np.fromiter(map(len, clipped), dtype=np.int64, count=len(clipped)) + 2
    ends = np.cumsum(lengths)
    ids = np.empty(int(ends[-1]), dtype=np.int64)
    residue = np.ones(ids.size, dtype=bool)
    residue[ends - lengths] = residue[ends - 1] = False
    ids[~residue] = np.tile([CLS, EOS], len(clipped))
    ids[residue] = _TABLE[np.frombuffer("".join(clipped).encode("latin-1", "replace"), dtype=np.uint8)]
    starts = (ends - lengths).tolist()
    return [ids[a:b] for a, b in zip(starts, ends.tolist())]  # views; ~20x faster than np.split


def encode_proteins(proteins: Sequence[str], max_residues: int = MAX_RESIDUES) -> PackedTokens:
    """Encode and pack proteins in order (one sequence of the batch per protein)."""
    return pack(encode_protein_arrays(proteins, max_residues))
