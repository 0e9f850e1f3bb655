#!/usr/bin/env bash
# Issue #20's one H200 call: bench_first_result.py (BEFORE = f263dc2's virnucpro in $BEFORE) with
# full-size random models, then the GPU tests of the parallel load. Usage: bash benchmarks/h200_first_result.sh OUTDIR BEFORE
set -uo pipefail
out=${1:?output dir}; before=${2:?the directory holding the BEFORE virnucpro package}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
nvidia-smi -L || true
timeout "${BENCH_TIMEOUT:-175}" "$py" benchmarks/bench_first_result.py --size "${SIZE:-full}" --device "${DEVICE:-auto}" --reads 2000 --before "$before" \
  --workdir /tmp/vfr --budget-seconds "${BUDGET:-115}" --deadline-seconds "${DEADLINE:-150}" --probe-seconds "${PROBE:-15}" \
  -o "$out/first_result_h200.json" 2>&1 | tee "$out/first_result_h200_log.txt"
timeout 25 "$py" -m pytest -q -p no:cacheprovider -m gpu tests/engine/test_load_parallel.py 2>&1 | tail -5 \
  | tee "$out/load_parallel_gpu_tests.txt"

