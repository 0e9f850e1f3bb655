version 1.0

# `virnucpro predict` as a WDL task (checked with `miniwdl check`). The models come in as a directory
# made by `virnucpro download --dir` (a tarball of it, unpacked in the task, so that any WDL engine
# can localise it as one File).

task virnucpro_predict {
  input {
    Array[File] reads
    File models_tar
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
    mkdir models
    tar -xf ~{models_tar} -C models --strip-components 1
    virnucpro predict ~{sep=" " reads} -o results \
      --models-dir models --model-type ~{model_type} --threshold ~{threshold} \
      ~{if write_hits then "--write-hits" else ""} --threads ~{cpu} -q
  >>>

  output {
    File sequences = "results/sequences.tsv"
    File chunks = "results/chunks.tsv"
    File prediction_results = "results/prediction_results.txt"
    File highest_scores = "results/prediction_results_highestscore.csv"
    File run_json = "results/run.json"
    File? viral_fasta = "results/viral.fa"
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
    reads: "FASTA/FASTQ files (plain or gz/bz2/xz/zst); record IDs unique across them"
    models_tar: "tar of a `virnucpro download --dir DIR` directory (tar -cf models.tar DIR)"
    model_type: "300 for reads, 500 for contigs"
    threshold: "chunk virus score needed to call a chunk viral (0.5 = the original rule)"
  }

  meta {
    description: "Call viral sequences in reads or contigs with virnucpro (VirNucPro: DNABERT-S + ESM-2)"
  }
}
