"""A refused resume or merge names what changed in the words of the CLI (pipeline/run_changes.py)."""

from __future__ import annotations

from virnucpro.pipeline.run_changes import describe_changes


def test_a_changed_read_layout_is_named_by_its_flags_not_by_the_internal_key():
    inputs = [{"path": "r1.fq", "size": 1, "mtime_ns": 1, "head_sha256": "a"}]
    assert describe_changes(inputs, {"threshold": 0.5, "pairs": "paired"}, inputs, {"threshold": 0.5}) == [
        "the read layout changed from paired-end (--paired) to single-end"]
    assert describe_changes(inputs, {"threshold": 0.5}, inputs, {"threshold": 0.5, "pairs": "interleaved"}) == [
        "the read layout changed from single-end to paired-end, interleaved (--interleaved)"]
    assert describe_changes(inputs, {"threshold": 0.5}, inputs, {"threshold": 0.7}) == [
        "parameter threshold changed 0.5 -> 0.7"]
