"""Streaming FASTA/FASTQ input (any compression, stdin) with one-line format errors."""

from virnucpro.io.pairs import PairedReader, open_input
from virnucpro.io.reader import ReadStats, Record, RecordReader, read_records
from virnucpro.io.record_batches import batch_records

__all__ = ["PairedReader", "ReadStats", "Record", "RecordReader", "batch_records", "open_input", "read_records"]
