"""What a predict or embed run was asked to do (filled by cli/run_options.py), and how that
decides block cutting and the call rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from virnucpro.engine.encoders import ModelChoice
from virnucpro.outputs.regions import RegionSettings
from virnucpro.pipeline.blocks import BlockSettings


@dataclass
class RunOptions:
    inputs: list[str]
    output: Path  # predict: the output directory; embed: the parquet file
    models: ModelChoice
    chunk_size: int | None = None
    chunking: str = "even"
    device: str = "auto"
    batch_tokens: int | None = None
    precision: str | None = None
    threads: int | None = None
    threshold: float = 0.5
    resume: bool = False
    force: bool = False
    save_embeddings: bool = False
    write_hits: bool = False
    live_progress: bool = False
    embed_only: bool = False
    block_records: int = 16_384  # records per block: the unit of batching, checkpointing and resume
    gpus: str | None = None  # all | N | 0,2
    workers: int = 1  # CPU workers (with --device cpu)
    shard: tuple[int, int] | None = None  # (k, n): only blocks k-1 mod n
    engine: str = "local"  # local: this host's devices; ray: actors on a Ray cluster
    ray_address: str | None = None  # None: start a local Ray instance
    regions: RegionSettings = field(default_factory=RegionSettings)  # viral-region scan (outputs/regions.py)
    viral_fraction: float = 0.5  # viral chunks / scored chunks that call a sequence virus
    min_length: int = 0  # shorter sequences are called too_short, not scored
    offline: bool = False  # never download missing published models (see pipeline/fetch.py)
    paired: bool = False  # inputs == [R1, R2], read in lockstep (io/pairs.py)
    interleaved: bool = False  # inputs == [one file], mates alternating

    @property
    def pairs(self) -> str | None:
        """How mates come ("paired" / "interleaved"), None for single-end reads."""
        return "paired" if self.paired else "interleaved" if self.interleaved else None

    def block_settings(self, batch_tokens: int) -> BlockSettings:
        """How blocks are cut and batched; `batch_tokens` as the engine resolved it for its devices."""
        return BlockSettings(chunk_size=self.chunk_size or self.models.model_type, chunking=self.chunking,
                             batch_tokens=batch_tokens, block_records=self.block_records,
                             keep_sequences=self.write_hits, pairs=self.pairs is not None,
                             min_length=0 if self.embed_only else self.min_length)

    def call_rules(self) -> dict:
        """The ResultWriter's rules for calling a sequence and finding its viral regions."""
        return {"regions": self.regions, "viral_fraction": self.viral_fraction, "min_length": self.min_length,
                "pairs": self.pairs is not None}
