"""Scoring and calling rules and the number formats, checked against the original's behaviour."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from virnucpro.outputs.formats import float32_text, stat_text
from virnucpro.outputs.results import ChunkResult, FrameScore, SequenceResult

probability = st.floats(0.0, 1.0, width=32, allow_subnormal=False)


def chunk(*pairs, chunk_id="s_chunk_1", start=0, end=300):
    frames = [FrameScore(f"{chunk_id}F{i + 1}", others, virus) for i, (others, virus) in enumerate(pairs)]
    return ChunkResult(chunk_id, start, end, frames)


def test_probabilities_print_like_the_original_numpy_float32_str():
    """The original: '\\t'.join(map(str, row)) over rows of softmax(...).cpu().numpy()."""
    probabilities = torch.softmax(torch.tensor([[2.3, -1.7], [0.0, 0.0], [-20.0, 20.0]]), dim=1)
    for row in probabilities.numpy():
        assert "\t".join(map(str, row)) == "\t".join(float32_text(float(value)) for value in row)
    assert float32_text(0.98765432) == "0.9876543"
    assert float32_text(1e-8) == "1e-08"
    assert float32_text(1.0) == "1.0"
    assert float32_text(0.5) == "0.5"


@given(probability)
def test_float32_text_round_trips_to_the_same_float32(value):
    assert np.float32(float(float32_text(value))) == np.float32(value)


@given(probability, probability)
def test_frame_label_is_torch_argmax_with_first_maximum_on_ties(others, virus):
    index = torch.max(torch.tensor([[others, virus]], dtype=torch.float32), 1).indices.item()
    assert FrameScore("x", others, virus).prediction == ("virus" if index == 1 else "others")


def test_exact_tie_is_others_per_frame_but_viral_per_chunk():
    tied = chunk((0.5, 0.5))
    assert tied.frames[0].prediction == "others"
    assert tied.original_is_virus() is True
    assert tied.virus_score() == 0.5
    assert tied.is_viral(0.5) is True


@given(st.lists(st.tuples(probability, probability).filter(lambda p: p[0] + p[1] > 0), min_size=1, max_size=6))
def test_default_threshold_equals_the_original_chunk_rule(pairs):
    result = chunk(*pairs)
    assert result.is_viral(0.5) == (max(v for _, v in pairs) >= max(o for o, _ in pairs))
    assert result.is_viral(0.5) == result.original_is_virus()


def test_chunk_score_uses_the_maxima_over_frames():
    result = chunk((0.9, 0.1), (0.3, 0.7), (0.6, 0.4))
    assert result.max_p_others == 0.9 and result.max_p_virus == 0.7
    assert math.isclose(result.virus_score(), 0.7 / 1.6)
    assert result.is_viral(0.4) is True and result.is_viral(0.5) is False


def test_chunk_without_kept_frames_has_no_score():
    empty = ChunkResult("s_chunk_2", 300, 600, [])
    assert empty.virus_score() is None and empty.is_viral(0.5) is None and not empty.scored


def sequence(*chunks):
    return SequenceResult("s", 1000, list(chunks))


def test_sequence_call_is_a_majority_of_scored_chunks_ties_viral():
    viral, other, empty = chunk((0.2, 0.8)), chunk((0.8, 0.2)), ChunkResult("c", 0, 1, [])
    call = sequence(viral, other, empty).summarize()
    assert (call.n_chunks, call.n_chunks_scored, call.n_viral_chunks, call.call) == (3, 2, 1, "virus")
    assert call.viral_fraction == 0.5
    assert math.isclose(call.max_virus_score, 0.8) and math.isclose(call.mean_virus_score, 0.5)
    assert sequence(viral, other, other).summarize().call == "others"


def test_sequence_without_kept_frames_is_no_call():
    call = sequence(ChunkResult("c", 0, 1, [])).summarize()
    assert call.call == "no_call" and call.viral_fraction is None and call.max_virus_score is None
    assert SequenceResult("t", 0, []).summarize().call == "no_call"


def test_threshold_moves_the_chunk_and_sequence_calls():
    weak = sequence(chunk((0.45, 0.55)), chunk((0.4, 0.6)))
    assert weak.summarize(0.5).call == "virus"
    assert weak.summarize(0.58).n_viral_chunks == 1
    assert weak.summarize(0.9).call == "others"


@pytest.mark.parametrize(("value", "text"), [(None, "NA"), (0.5, "0.5"), (1 / 3, "0.333333"), (1.0, "1"),
                                             (2.5e-7, "2.5e-07")])
def test_statistics_print_with_six_significant_digits(value, text):
    assert stat_text(value) == text
