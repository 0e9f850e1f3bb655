"""PackedTokens / pack() and the ESM-2 alphabet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from virnucpro.tokenize.esm_alphabet import (
    CLS,
    EOS,
    MAX_RESIDUES,
    TOKENS,
    X,
    encode_proteins,
)
from virnucpro.tokenize.packing import pack


def test_pack_layout():
    packed = pack([np.array([5, 6, 7]), [8], np.array([9, 10])])
    assert packed.ids.dtype == torch.int64 and packed.cu_seqlens.dtype == torch.int32
    assert packed.ids.tolist() == [5, 6, 7, 8, 9, 10]
    assert packed.cu_seqlens.tolist() == [0, 3, 4, 6]
    assert packed.max_seqlen == 3 and packed.num_sequences == 3 and packed.num_tokens == 6
    assert packed.lengths().tolist() == [3, 1, 2]


def test_pack_refuses_empty_sequences():
    with pytest.raises(ValueError):
        pack([[1], []])


def test_encode_adds_cls_eos_and_maps_alphabet():
    packed = encode_proteins(["LAG", "c"])
    assert packed.ids.tolist() == [CLS, 4, 5, 6, EOS, CLS, TOKENS.index("C"), EOS]


def test_unknown_residues_become_x():
    packed = encode_proteins(["AJ*é1"])
    assert packed.ids.tolist()[2:-1] == [X, X, X, X]


def test_long_proteins_are_truncated_like_the_original():
    packed = encode_proteins(["A" * (MAX_RESIDUES + 10)])
    assert packed.num_tokens == MAX_RESIDUES + 2
