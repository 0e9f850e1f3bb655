#!/usr/bin/env bash
# Issue #24 on one GPU in one call: ESM-2 with cuBLASLt's GELU epilogue (the GPU default) vs exact
# erf GELU, alternated in one process at 48-50, 95-100 and 160-166 aa (bench_esm2.py), then the
# GPU tests of the ESM-2 area on the same full-size random weights.
# Usage on the GPU machine: bash benchmarks/h200_esm2_gelu.sh OUTDIR   (GIT_COMMIT=... optional)
set -uo pipefail
out=${1:?output dir}
model=${ESM2_FULL_DIR:-/tmp/esm2-full}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
nvidia-smi -L || true
"$py" benchmarks/bench_esm2.py --model "$model" --out "$out/esm2_h200_gelu.json" --repeats 5 \
  --variants compiled-erf-gelu compiled || echo "bench_esm2 failed"
VIRNUCPRO_ESM2_FULL=$model timeout "${TEST_TIMEOUT:-180}" "$py" -m pytest -q -p no:cacheprovider -s \
  tests/models/test_esm2_gpu.py || echo "GPU tests failed or timed out"
