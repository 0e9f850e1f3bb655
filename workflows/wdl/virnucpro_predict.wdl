version 1.0

# `virnucpro predict` as a WDL task (checked with `miniwdl check`). The models are a directory made by
# `virnucpro download --dir`: either `models_dir`, a path every worker sees (a shared file system, or
# baked into the image), or `models_tar`, a tar of that directory that any engine localises as one
# File and the task unpacks. Paired-end reads: R1 as `reads` and R2 as `r2` (run as `--paired`), or one
# interleaved file as `reads` with `interleaved = true`; both add the output `pairs` (pairs.tsv).

task virnucpro_predict {
  input {
    Array[File] reads
    File? r2
    Boolean interleaved = false
    String? models_dir
    File? models_tar
    String model_type = "300"
    Float threshold = 0.5
    Boolean write_hits = true
    String docker = "virnucpro:0.1.0"
    Int cpu = 8
    Int memory_gb = 48
    Int disk_gb = 100
    Int gpu_count = 1
    String gpu_type = "nvidia-tesla-a100"
  }

  command <<<
    set -euo pipefail
    models="~{if defined(models_dir) then models_dir else ""}"
    if [ -z "$models" ]; then
      if [ -z "~{if defined(models_tar) then models_tar else ""}" ]; then
        echo "virnucpro_predict: error: give models_dir or models_tar" >&2
        exit 2
      fi
      models=models
      mkdir models
      tar -xf "~{models_tar}" -C models --strip-components 1
    fi
    virnucpro predict ~{sep=" " reads} ~{if defined(r2) then "~{r2} --paired" else ""} \
      ~{if interleaved then "--interleaved" else ""} -o results \
      --models-dir "$models" --model-type ~{model_type} --threshold ~{threshold} \
      ~{if write_hits then "--write-hits" else ""} --threads ~{cpu} -q
  >>>

  output {
    File sequences = "results/sequences.tsv"
    File chunks = "results/chunks.tsv"
    File prediction_results = "results/prediction_results.txt"
    File highest_scores = "results/prediction_results_highestscore.csv"
    File run_json = "results/run.json"
    File? viral_fasta = "results/viral.fa"
    File? pairs = "results/pairs.tsv"
  }

  runtime {
    docker: docker
    cpu: cpu
    memory: "~{memory_gb} GB"
    disks: "local-disk ~{disk_gb} SSD"
    gpu: true
    gpuCount: gpu_count
    gpuType: gpu_type
  }

  parameter_meta {
    reads: "FASTA/FASTQ files (plain or gz/bz2/xz/zst); record IDs unique across them. With r2 or interleaved: one file"
    r2: "the R2 (mate 2) file of a paired-end sample whose R1 is reads: runs `predict R1 R2 --paired`"
    interleaved: "reads is one FASTQ whose records alternate mate 1, mate 2 (`predict --interleaved`)"
    models_dir: "a `virnucpro download --dir` directory visible to the task (shared file system or image)"
    models_tar: "tar of a `virnucpro download --dir DIR` directory (tar -cf models.tar DIR)"
    model_type: "300 for reads, 500 for contigs"
    threshold: "chunk virus score needed to call a chunk viral (0.5 = the original rule)"
  }

  meta {
    description: "Call viral sequences in reads or contigs with virnucpro (VirNucPro: DNABERT-S + ESM-2)"
  }
}
