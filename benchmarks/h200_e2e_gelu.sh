#!/usr/bin/env bash
# End to end on one GPU after the GELU epilogue (issue #24): W1/10 with `virnucpro benchmark`
# (pipeline + ESM-2 alone on the same frames), then the contig workload (benchmarks/contigs.py,
# 500-bp model) with `virnucpro predict` on the same random full-size models.
# Usage on the GPU machine: bash benchmarks/h200_e2e_gelu.sh OUTDIR [READS] [CONTIGS]
set -uo pipefail
out=${1:?output dir}; reads=${2:-100000}; contigs=${3:-1000}
work=/tmp/virnucpro-bench
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
py=${PYTHON:-python3}
nvidia-smi -L || true
"$py" -m virnucpro benchmark --size full --workdir "$work" --reads "$reads" --gpus 1 -o "$out/e2e_1gpu.json" \
  || echo "W1 benchmark failed"
"$py" benchmarks/contigs.py "$contigs" -o "$work/w2-$contigs.fa"
m=$work/models-full
"$py" -m virnucpro predict "$work/w2-$contigs.fa" -o "$work/out-contigs" --model-type 500 --gpus 1 --force \
  --esm "$m/esm2" --dnabert "$m/dnabert-s" --classifier "$m/classifier.pth" || echo "contig run failed"
cp "$work/out-contigs/run.json" "$out/contigs_run.json"
