"""Progress estimates the total from what the reader has seen, not from bytes read alone."""

import logging
from types import SimpleNamespace

from virnucpro.pipeline.progress import RunProgress


def _reader(total_bytes, read_bytes, read_records):
    return SimpleNamespace(bytes_total=total_bytes, bytes_done=read_bytes, stats=SimpleNamespace(records=read_records))


def test_fraction_uses_records_written_over_the_estimated_total():
    reader = _reader(1000, 500, 50)  # half the input read: about 100 records in all
    progress = RunProgress(logging.getLogger("test"), reader, live=False)
    progress.advance(records=10, frames=12, tokens=600)
    assert abs(progress.fraction_done() - 0.1) < 1e-9
    reader.bytes_done, reader.stats.records = 1000, 100  # reader at the end: exact total
    progress.advance(records=90, frames=100, tokens=5000)
    assert progress.fraction_done() == 1.0


def test_no_estimate_for_stdin_and_resumed_records_count():
    progress = RunProgress(logging.getLogger("test"), _reader(None, 10, 5), live=False, records_before=40)
    assert progress.fraction_done() is None
    progress.advance(records=2, frames=2, tokens=100)
    assert progress.records == 42


def test_plain_log_line_has_rates_and_eta(caplog):
    reader = _reader(1000, 1000, 100)
    progress = RunProgress(logging.getLogger("progress-test"), reader, live=False)
    progress._last_log -= 60
    with caplog.at_level(logging.INFO, logger="progress-test"):
        progress.advance(records=50, frames=60, tokens=3000)
    assert "frames/s" in caplog.text and "50.0% done" in caplog.text and "ETA" in caplog.text
