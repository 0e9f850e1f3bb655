"""Batch protein encoding equals encoding one protein at a time."""

import numpy as np

from virnucpro.tokenize.esm_alphabet import encode_protein, encode_protein_arrays


def test_batch_encoding_equals_one_at_a_time():
    proteins = ["MKV", "", "A" * 1100, "xJ*", "LAGV", "W"]
    batch = encode_protein_arrays(proteins)
    assert len(batch) == len(proteins)
    for got, protein in zip(batch, proteins):
        np.testing.assert_array_equal(got, encode_protein(protein))
    assert encode_protein_arrays([]) == []
