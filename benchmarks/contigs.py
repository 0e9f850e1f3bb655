"""W2-style contigs for the GPU benchmarks: `python benchmarks/contigs.py N -o FILE [--seed S]`.

N substrings of 2-50 kb (uniform, capped at the genome's length) of the genomes shipped in
virnucpro/data/genomes, a genome picked in proportion to its length, a fixed seed: the contig
workload of ../shared/docs/performance.md (long inputs, 500-bp chunks) from the same genomes as W1.
"""

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from virnucpro.devtools.workloads import load_genomes  # noqa: E402


def sample_contigs(count: int, seed: int = 2, low: int = 2_000, high: int = 50_000):
    """(contig ID, sequence) pairs."""
    genomes = load_genomes()
    rng = random.Random(seed)
    weights = [len(s) for _, s in genomes]
    for i in range(count):
        name, sequence = rng.choices(genomes, weights=weights)[0]
        length = min(rng.randint(low, high), len(sequence))
        start = rng.randrange(len(sequence) - length + 1)
        yield f"W2_{i:05d} {name}:{start}+{length}", sequence[start : start + length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    with args.output.open("w") as out:
        for name, sequence in sample_contigs(args.count, args.seed):
            out.write(f">{name}\n{sequence}\n")


if __name__ == "__main__":
    main()
