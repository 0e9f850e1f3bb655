"""W1-style reads: 150-bp reads sampled uniformly (both strands) from real genomes (phages,
plasmids, a mitochondrion; shipped in virnucpro/data/genomes), with a fixed seed, so every
benchmark sees the same input.

    python -m virnucpro.devtools.workloads 1000000 -o w1.fq   # FASTQ for .fq/.fastq names, else FASTA
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import dnaio
import numpy as np
from xopen import xopen

GENOME_DIR = Path(__file__).resolve().parent.parent / "data" / "genomes"
GENOME_SUFFIXES = (".fa", ".fna")
_COMPLEMENT = np.arange(256, dtype=np.uint8)
for _a, _b in ("AT", "TA", "CG", "GC"):
    _COMPLEMENT[ord(_a)] = ord(_b)


def load_genomes(genome_dir: Path = GENOME_DIR) -> list[tuple[str, str]]:
    """(record ID, upper-case sequence) of every FASTA record in `genome_dir`, sorted by file name."""
    genomes = []
    for path in sorted(p for p in genome_dir.iterdir() if p.suffix in GENOME_SUFFIXES):
        with dnaio.open(path) as reader:
            genomes += [(record.id, record.sequence.upper()) for record in reader]
    return genomes


def sample_reads(count: int, length: int = 150, seed: int = 1, batch: int = 100_000,
                 genomes: list[tuple[str, str]] | None = None) -> Iterator[tuple[str, str]]:
    """(read ID, sequence) pairs; positions uniform over all genome bases, strand 50/50."""
    genomes = load_genomes() if genomes is None else [g for g in genomes if len(g[1]) >= length]
    sizes = np.array([len(sequence) - length + 1 for _, sequence in genomes], dtype=np.int64)
    offsets = np.cumsum([0] + [len(sequence) for _, sequence in genomes[:-1]])
    buffer = np.frombuffer("".join(s for _, s in genomes).encode("ascii"), dtype=np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(buffer, length)
    rng = np.random.default_rng(seed)
    for first in range(0, count, batch):
        n = min(batch, count - first)
        genome = rng.choice(len(genomes), size=n, p=sizes / sizes.sum())
        start = (rng.random(n) * sizes[genome]).astype(np.int64)
        reverse = rng.random(n) < 0.5
        reads = windows[offsets[genome] + start].copy()
        reads[reverse] = _COMPLEMENT[reads[reverse, ::-1]]
        text = reads.tobytes().decode("ascii")
        for i in range(n):
            strand = "-" if reverse[i] else "+"
            name = f"W1_{first + i:07d} {genomes[genome[i]][0]}:{start[i]}{strand}"
            yield name, text[i * length : (i + 1) * length]


def write_reads(path: Path, count: int, length: int = 150, seed: int = 1) -> None:
    """Write the reads as FASTQ (quality 'I') for .fq/.fastq names, FASTA otherwise; any compression."""
    fastq = any(s in (".fq", ".fastq") for s in Path(path).suffixes)
    quality = "I" * length
    with xopen(path, "w", threads=0) as out:
        for name, sequence in sample_reads(count, length, seed):
            out.write(f"@{name}\n{sequence}\n+\n{quality}\n" if fastq else f">{name}\n{sequence}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--length", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write_reads(args.output, args.count, args.length, args.seed)


if __name__ == "__main__":
    main()
