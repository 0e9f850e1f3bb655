"""Progress estimates the total from what the reader has seen, not from bytes read alone."""

import logging
import time
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


def _block(index, records, esm_tokens, dnabert_tokens):
    batch = SimpleNamespace(num_tokens=esm_tokens)
    dna = SimpleNamespace(num_tokens=dnabert_tokens)
    return SimpleNamespace(index=index, piece=None, records_completed=records, num_frames=2 * records,
                           esm_tokens=esm_tokens, dnabert_tokens=dnabert_tokens, esm_batches=[batch],
                           dnabert_batches=[dna])


def test_batches_move_the_fraction_inside_a_block_and_writing_settles_it():
    progress = RunProgress(logging.getLogger("test"), _reader(1000, 1000, 100), live=False)
    block = _block(0, records=40, esm_tokens=300, dnabert_tokens=100)
    progress.counter.batch_done(block, 300, 300, on_gpu=False)  # ESM-2 done: 3/4 of the block's tokens
    assert abs(progress.fraction_done() - 0.30) < 1e-9
    assert progress.records == 0  # nothing written yet
    progress.counter.batch_done(block, 100, 0, on_gpu=False)
    progress.block_written(block)
    assert progress.records == 40 and abs(progress.fraction_done() - 0.40) < 1e-9  # counted once, not twice


def test_a_run_off_a_terminal_logs_every_30_s_between_blocks(caplog):
    progress = RunProgress(logging.getLogger("progress-tick"), _reader(1000, 1000, 100), live=False)
    with caplog.at_level(logging.INFO, logger="progress-tick"), progress:
        progress.start_stream(records_before=25, workers=[])
        progress._last_log -= 60  # no block written since: the ticker logs anyway
        deadline = time.monotonic() + 5
        while "progress:" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "25 reads" in caplog.text and "25.0% done" in caplog.text


def _piece(first, stop, chunks, esm_tokens=100):
    last = stop == chunks
    return SimpleNamespace(index=0, piece=SimpleNamespace(first=first, stop=stop, last=last, chunks=chunks),
                           records=[object()], records_completed=int(last), num_frames=stop - first,
                           esm_tokens=esm_tokens, dnabert_tokens=0)


def test_a_long_records_pieces_move_the_bar_and_the_record_counts_once():
    progress = RunProgress(logging.getLogger("test"), _reader(1000, 1000, 10), live=False)  # 10 records
    first, second, last = _piece(0, 4, 10), _piece(4, 8, 10), _piece(8, 10, 10)
    progress.block_written(first)
    assert abs(progress.fraction_done() - 0.04) < 1e-9  # 4 of its 10 chunks: 0.4 of one record in 10
    progress.counter.batch_done(second, 50, 50, on_gpu=False)  # half of the second piece
    assert abs(progress.fraction_done() - 0.06) < 1e-9
    progress.counter.batch_done(second, 50, 50, on_gpu=False)
    progress.block_written(second)
    assert abs(progress.fraction_done() - 0.08) < 1e-9 and progress.records == 0
    progress.counter.batch_done(last, 100, 100, on_gpu=False)
    assert abs(progress.fraction_done() - 0.10) < 1e-9
    progress.block_written(last)
    assert progress.records == 1 and abs(progress.fraction_done() - 0.10) < 1e-9  # once, not 1.8 records


def test_the_fraction_rises_piece_by_piece_inside_one_long_record(tmp_path, monkeypatch, model_args):
    """A record run as several blocks (limits lowered as in tests/io/test_long_records.py): each
    written piece moves the bar, before the record is complete."""
    import dataclasses

    from conftest import GENOMES

    from virnucpro.cli.main import main
    from virnucpro.io import long_records
    from virnucpro.pipeline.options import RunOptions

    lam = "".join(line.strip() for line in (GENOMES / "lambda_NC_001416.fa").read_text().splitlines()[1:])
    reads = tmp_path / "long.fa"
    reads.write_text(f">short\n{lam[:400]}\n>long\n{lam[:30_000]}\n>tail\n{lam[-600:]}\n")
    monkeypatch.setattr(long_records, "LONG_RECORD_BYTES", 4000)
    settings = RunOptions.block_settings
    monkeypatch.setattr(RunOptions, "block_settings", lambda options, tokens: dataclasses.replace(
        settings(options, tokens), block_bases=6000, long_record_bases=5000))
    seen, written = [], RunProgress.block_written

    def noted(self, block):
        written(self, block)
        seen.append((block.piece is not None, self.records, self.records + self.record_part))

    monkeypatch.setattr(RunProgress, "block_written", noted)
    assert main(["predict", str(reads), "-o", str(tmp_path / "out"), *model_args]) == 0
    # the written part (the fraction's numerator; its estimated total moves with the reader, not with
    # the pieces), after each piece of "long" that does not complete it
    inside = [done for piece, records, done in seen if piece and records == 1]
    assert len(inside) >= 4 and all(1 < a < b < 2 for a, b in zip(inside, inside[1:])), seen
    assert seen[-1][1:] == (3, 3)  # the record counted once


def test_blocks_of_two_samples_with_the_same_index_keep_their_own_credit():
    """At a study's sample boundary, block 0 of the next sample runs while block 0 of the last is written."""
    progress = RunProgress(logging.getLogger("test"), _reader(1000, 1000, 100), live=False)
    ending, starting = _block(0, records=10, esm_tokens=100, dnabert_tokens=0), _block(0, 20, 100, 0)
    progress.counter.batch_done(ending, 100, 100, on_gpu=False)
    progress.counter.batch_done(starting, 50, 50, on_gpu=False)  # half of the next sample's first block
    progress.block_written(ending)
    assert progress.records == 10 and abs(progress.fraction_done() - 0.20) < 1e-9  # 10 written + 10 in flight


def test_a_studys_log_line_names_its_samples_done_and_the_current_sample(caplog):
    progress = RunProgress(logging.getLogger("progress-study"), _reader(1000, 500, 50), live=False)
    progress.set_stage("sample S2, 1/3 samples done")
    progress._last_log -= 60
    with caplog.at_level(logging.INFO, logger="progress-study"):
        progress.advance(records=25, frames=30, tokens=1000)
    assert "25 reads" in caplog.text and "sample S2, 1/3 samples done" in caplog.text and "25.0% done" in caplog.text


def test_the_estimate_stays_known_while_the_reader_closes_a_file():
    reader = _reader(1000, 500, 50)
    progress = RunProgress(logging.getLogger("test"), reader, live=False)
    progress.advance(records=10, frames=10, tokens=100)
    reader.bytes_done = 0  # the reader's file closed, its size not yet added (another thread)
    assert abs(progress.fraction_done() - 0.1) < 1e-9
