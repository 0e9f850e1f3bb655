#!/usr/bin/env bash
# Issue #20.4 on one GPU in one call: the two-stream overlap and the sequence-tile attention against
# the current compiled ESM-2 (bench_esm2_overlap.py, one process, alternated), then the GPU tests of
# the new paths on the same full-size random weights.
# Usage on the GPU machine: bash benchmarks/h200_esm2_overlap.sh OUTDIR   (GIT_COMMIT=... optional)
set -uo pipefail
out=${1:?output dir}
model=${ESM2_FULL_DIR:-/tmp/esm2-full}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
nvidia-smi -L || true
timeout "${BENCH_TIMEOUT:-230}" "$py" benchmarks/bench_esm2_overlap.py --model "$model" \
  --out "$out/esm2_h200_overlap.json" --batches "${BATCHES:-2}" --repeats 5 || echo "bench_esm2_overlap failed or timed out"
VIRNUCPRO_ESM2_FULL=$model timeout "${TEST_TIMEOUT:-75}" "$py" -m pytest -q -p no:cacheprovider -s -m gpu \
  tests/models/test_packed_attention.py \
  tests/models/test_esm2_gpu.py::test_sequence_tiles_and_stream_overlap_match_fp32 || echo "GPU tests failed or timed out"
