"""DNABERT-S tokenizer: the published tokenizer.json with truncation and padding off."""

import numpy as np
import pytest

from virnucpro.errors import ModelLoadError
from virnucpro.tokenize.dnabert import CLS_ID, SEP_ID, DnabertTokenizer

# Real sequences: phiX174 (NC_001422) 1-151 and lambda (NC_001416) 1001-1151.
PHIX_1_151 = (
    "GAGTTTTATCGCTTCCATGACGCAGAAGTTAACACTTTCGGATATTTCTGATGAGTCGAAAAATTATCTTGATAAAGCAGGAATTACTACTGC"
    "TTGTTTACGAATTAAATCGAAGTGGACTGCTGGCGGAAAATGAGAAAATTCGACCTAT"
)
LAMBDA_1001_1151 = (
    "GCAGCGCAACACCCTTATCTGGTTGCCGACGGATGGTGATGCCGAGAACTTTATGAAAACCCACGTTGAGCCGACTATTCGTGATATTCCGTC"
    "GCTGCTGGCGCTGGCCCCGTGGTATGGCAAAAAGCACCGGGATAACACGCTCACCATG"
)
PINNED = {
    PHIX_1_151: [
        1, 17, 255, 1086, 1008, 159, 25, 153, 219, 757, 43, 126, 2521, 179, 2317, 606, 1391, 1148,
        654, 360, 1338, 18, 480, 30, 251, 28, 247, 39, 23, 618, 93, 114, 8, 2,
    ],
    LAMBDA_1001_1151: [
        1, 1265, 66, 140, 81, 54, 1346, 17, 2224, 61, 139, 145, 29, 1748, 95, 134, 307, 3518, 368,
        43, 1847, 1127, 1305, 486, 30, 312, 707, 541, 117, 394, 3677, 249, 2,
    ],
    "ACGT": [1, 5, 6, 1049, 2],  # A C GT: single letters are ids 5-8
}


@pytest.fixture(scope="module")
def tokenizer():
    return DnabertTokenizer.default()


def test_pinned_ids_are_stable(tokenizer):
    encoded = tokenizer.encode_batch(list(PINNED))
    assert [e.tolist() for e in encoded] == list(PINNED.values())
    assert all(e.dtype == np.int32 for e in encoded)


def test_special_tokens_and_no_padding_or_truncation(tokenizer):
    long_seq = PHIX_1_151 * 80  # 12 kb: more tokens than the file's truncation length of 2000
    short, long_ = tokenizer.encode_batch([PHIX_1_151, long_seq])
    for ids in (short, long_):
        assert ids[0] == CLS_ID and ids[-1] == SEP_ID
        assert CLS_ID not in ids[1:-1] and SEP_ID not in ids[1:-1]
        assert 3 not in ids  # [PAD]
    assert len(short) == 34
    assert len(long_) > 2000


def test_lower_case_equals_upper_case(tokenizer):
    upper, lower, mixed = tokenizer.encode_batch([LAMBDA_1001_1151, LAMBDA_1001_1151.lower(), "acGTacgt"])
    assert upper.tolist() == lower.tolist()
    assert mixed.tolist() == tokenizer.encode_batch(["ACGTACGT"])[0].tolist()


def test_non_acgt_becomes_unk(tokenizer):
    (ids,) = tokenizer.encode_batch(["ACGTN"])
    assert ids.tolist() == [1, 5, 6, 1049, 0, 2]


def test_matches_transformers_fast_tokenizer(tokenizer):
    """The original tokenised with transformers' fast tokenizer, one sequence at a time."""
    transformers = pytest.importorskip("transformers")
    from importlib import resources

    file = resources.files("virnucpro") / "data" / "dnabert-s" / "tokenizer.json"
    with resources.as_file(file) as path:
        hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    seqs = [PHIX_1_151, LAMBDA_1001_1151, PHIX_1_151[:37], LAMBDA_1001_1151[5:140]]
    ours = tokenizer.encode_batch(seqs)
    for seq, ids in zip(seqs, ours):
        assert hf(seq)["input_ids"] == ids.tolist()


def test_from_dir(tmp_path, tokenizer):
    with pytest.raises(ModelLoadError, match="tokenizer not found"):
        DnabertTokenizer.from_dir(tmp_path)
    from virnucpro.devtools.random_dnabert import write_random_dnabert

    write_random_dnabert(tmp_path, "tiny", seed=0)
    (ids,) = DnabertTokenizer.from_dir(tmp_path).encode_batch([PHIX_1_151])
    assert ids.tolist() == PINNED[PHIX_1_151]
