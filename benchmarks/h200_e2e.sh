#!/usr/bin/env bash
# End-to-end GPU benchmark in one call (issue 6 item 9, issue 8, numerics item 8):
#   1 GPU: W1/10 predict + ESM-2-only on the same frames; 2 GPUs (if present): the same predict,
#   result files compared with the 1-GPU run; numerics: W1/100 bf16 vs fp32 reference.
# Usage on the GPU machine: bash benchmarks/h200_e2e.sh OUTDIR [READS]
set -uo pipefail
out=${1:?output dir}; reads=${2:-100000}
work=/tmp/virnucpro-bench
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
py=${PYTHON:-python3}
bench() { "$py" -m virnucpro benchmark --size "${SIZE:-full}" --workdir "$work" "$@"; }
gpus=$("$py" -c 'import torch; print(torch.cuda.device_count())')
nvidia-smi -L || true
bench --reads "$reads" --gpus 1 -o "$out/e2e_1gpu.json" || echo "1-GPU run failed"
if [ "$gpus" -ge 2 ]; then
  bench --reads "$reads" --gpus 2 --no-esm-only -o "$out/e2e_2gpu.json" || echo "2-GPU run failed"
  for f in prediction_results.txt prediction_results_highestscore.csv chunks.tsv sequences.tsv; do
    cmp "$work/out-$reads-1/$f" "$work/out-$reads-2/$f" && echo "identical $f"
  done | tee "$out/identical_1_vs_2.txt"
fi
small=$((reads / 10))
bench --reads "$small" --gpus 1 --no-esm-only -o "$out/numerics_bf16.json" || echo "bf16 small run failed"
bench --reads "$small" --gpus 1 --no-esm-only --precision fp32 -o "$out/numerics_fp32.json" || echo "fp32 run failed"
"$py" benchmarks/numerics.py "$work/out-$small-1" "$work/out-$small-1-fp32" -o "$out/numerics.json"
