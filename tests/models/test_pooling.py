"""Deterministic per-sequence sums equal a plain per-sequence loop."""

import pytest
import torch

from virnucpro.models.pooling import segment_sums


def test_segment_sums_equal_a_loop():
    values = torch.randn(37, 5)
    lengths = torch.tensor([1, 2, 30, 4])
    expected = torch.stack([chunk.sum(0) for chunk in values.split(lengths.tolist())])
    torch.testing.assert_close(segment_sums(values, lengths), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_segment_sums_are_repeatable_bit_for_bit_on_the_gpu():
    """Where atomics would reorder the additions (index_add_ on a GPU), the sums stay bit-for-bit the same:
    long sequences of values with a wide range, so any change of order shows in the last bits."""
    generator = torch.Generator().manual_seed(0)
    magnitudes = 10.0 ** torch.randint(-3, 4, (65536, 1), generator=generator)
    values = torch.randn(65536, 64, generator=generator) * magnitudes
    lengths = torch.tensor([1, 4093, 30000, 31442])
    first = segment_sums(values.cuda(), lengths.cuda())
    for _ in range(20):
        assert torch.equal(segment_sums(values.cuda(), lengths.cuda()), first)
    chunks = values.double().split(lengths.tolist())
    exact = torch.stack([chunk.sum(0) for chunk in chunks])
    scale = torch.stack([chunk.abs().sum(0) for chunk in chunks])
    assert ((first.cpu().double() - exact).abs() <= 1e-5 * scale).all()  # and they are the sums, to fp32 rounding
