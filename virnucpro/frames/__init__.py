"""Chunking (even / legacy), six-frame translation and frame selection, vectorised with numpy."""

from virnucpro.frames.bounds import CHUNKING_MODES, chunk_bounds
from virnucpro.frames.chunks import Chunk, Frame, chunk_record, chunk_records
from virnucpro.frames.translate import STRAND_FRAMES

__all__ = ["CHUNKING_MODES", "STRAND_FRAMES", "Chunk", "Frame", "chunk_bounds", "chunk_record", "chunk_records"]
