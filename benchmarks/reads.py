"""W1-style reads for the benchmark scripts: `python benchmarks/reads.py N -o FILE`.

The generator lives in the package (virnucpro.devtools.workloads) so `virnucpro benchmark` can use
it too; this keeps the scripts' `from reads import ...` working.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from virnucpro.devtools.workloads import load_genomes, main, sample_reads, write_reads  # noqa: F401

if __name__ == "__main__":
    main()
