"""pairs.tsv read back by `plot` (and merge's counts) from an OUTDIR anyone may edit (#19): a file
that is not ours is one VirnucproError line, never a traceback."""

from __future__ import annotations

import pytest

from virnucpro.errors import VirnucproError
from virnucpro.outputs.pairs import PAIRS_HEADER, pair_counts

ROW = "p\tp/1\tp/2\tvirus\tvirus\t2\t2\t1\t0.9\t0.8\tvirus\n"


def test_a_table_virnucpro_wrote_is_counted(tmp_path):
    (tmp_path / "pairs.tsv").write_text(PAIRS_HEADER + ROW * 3 + ROW.replace("\tvirus\n", "\tno_call\n"))
    counts = pair_counts(tmp_path / "pairs.tsv")
    assert counts == {"pairs": 4, "pair_calls": {"virus": 3, "others": 0, "no_call": 1, "too_short": 0}}


@pytest.mark.parametrize("content, phrase", [
    (b"", "the header is not pairs.tsv's"),  # was StopIteration
    (PAIRS_HEADER.encode() + b"p\tshort\n", "a call in every row"),  # was IndexError
    (PAIRS_HEADER.encode() + b"\xff\xfe" * 10 + b"\n", "not UTF-8"),  # was UnicodeDecodeError
    (PAIRS_HEADER.encode() + ROW.replace("\tvirus\n", "\t<script>\n").encode(), "call '<script>' is not one of"),
    (b"pair_id\tcall\n" + ROW.encode(), "the header is not pairs.tsv's"),
])
def test_a_table_not_ours_is_one_line(tmp_path, content, phrase):
    (tmp_path / "pairs.tsv").write_bytes(content)
    with pytest.raises(VirnucproError, match=phrase) as error:
        pair_counts(tmp_path / "pairs.tsv")
    assert "\n" not in str(error.value)
