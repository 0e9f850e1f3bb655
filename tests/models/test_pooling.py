"""Deterministic per-sequence sums equal a plain per-sequence loop."""

import torch

from virnucpro.models.pooling import segment_sums


def test_segment_sums_equal_a_loop():
    values = torch.randn(37, 5)
    lengths = torch.tensor([1, 2, 30, 4])
    expected = torch.stack([chunk.sum(0) for chunk in values.split(lengths.tolist())])
    torch.testing.assert_close(segment_sums(values, lengths), expected, rtol=1e-6, atol=1e-6)


def test_segment_sums_are_repeatable_bit_for_bit():
    values = torch.randn(4096, 64)
    lengths = torch.full((64,), 64)
    assert torch.equal(segment_sums(values, lengths), segment_sums(values.clone(), lengths.clone()))
