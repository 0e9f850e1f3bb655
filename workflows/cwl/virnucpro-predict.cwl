#!/usr/bin/env cwl-runner
# `virnucpro predict` as a CWL CommandLineTool. Run: cwltool virnucpro-predict.cwl job.yml
# (add --no-container where virnucpro is installed; otherwise the DockerRequirement image is used).
# No CUDARequirement hint: cwltool refuses to start on a machine without CUDA when it is given, and
# virnucpro itself uses the GPUs it sees (--device auto); run with `--no-container` or a GPU-enabled
# container runtime on a GPU node.
cwlVersion: v1.2
class: CommandLineTool
label: virnucpro predict
doc: |
  Call viral sequences in reads or contigs (FASTA/FASTQ, compressed or not) with VirNucPro's
  DNABERT-S + ESM-2 classifier. Writes the result files into the output directory `results`.
  Paired-end reads: give R1 as `reads` and R2 as `r2` (run as `--paired`), or one interleaved file
  as `reads` with `interleaved: true`; either adds `pairs.tsv`, one call per read pair.
requirements:
  InlineJavascriptRequirement: {}
hints:
  DockerRequirement:
    dockerPull: virnucpro:0.1.0
  ResourceRequirement:
    coresMin: 4
    ramMin: 32000
baseCommand: [virnucpro, predict]
arguments:
  - {prefix: -o, valueFrom: results}
  - -q
  - {position: 3, valueFrom: '$(inputs.r2 ? "--paired" : null)'}
inputs:
  reads:
    type: File[]
    doc: |
      FASTA/FASTQ files (plain or gz/bz2/xz/zst); record IDs must be unique across them.
      With `r2`: the one R1 file; with `interleaved`: the one interleaved file
    inputBinding: {position: 1}
  r2:
    type: File?
    doc: the R2 (mate 2) file of a paired-end sample whose R1 is `reads`; runs `predict R1 R2 --paired`
    inputBinding: {position: 2}
  interleaved:
    type: boolean?
    doc: "`reads` is one FASTQ whose records alternate mate 1, mate 2 (`predict --interleaved`)"
    inputBinding: {prefix: --interleaved, position: 3}
  model_type:
    type:
      - "null"
      - type: enum
        symbols: ["300", "500"]
    doc: 300 for reads, 500 for contigs (default 300)
    inputBinding: {prefix: --model-type}
  models_dir:
    type: Directory?
    doc: a directory made by `virnucpro download --dir`
    inputBinding: {prefix: --models-dir}
  esm:
    type: Directory?
    doc: a local ESM-2 model directory instead of the published one
    inputBinding: {prefix: --esm}
  dnabert:
    type: Directory?
    doc: a local DNABERT-S model directory instead of the published one
    inputBinding: {prefix: --dnabert}
  classifier:
    type: File?
    doc: a classifier checkpoint (.pth or .safetensors) instead of the published one
    inputBinding: {prefix: --classifier}
  threshold:
    type: float?
    doc: chunk virus score needed to call a chunk viral (default 0.5)
    inputBinding: {prefix: --threshold}
  write_hits:
    type: boolean?
    doc: also write viral.fa with the sequences called viral
    inputBinding: {prefix: --write-hits}
  device:
    type: string?
    doc: auto, cpu, cuda or cuda:N (default auto)
    inputBinding: {prefix: --device}
outputs:
  results:
    type: Directory
    outputBinding: {glob: results}
  sequences:
    type: File
    outputBinding: {glob: results/sequences.tsv}
  chunks:
    type: File
    outputBinding: {glob: results/chunks.tsv}
  prediction_results:
    type: File
    outputBinding: {glob: results/prediction_results.txt}
  highest_scores:
    type: File
    outputBinding: {glob: results/prediction_results_highestscore.csv}
  run_json:
    type: File
    outputBinding: {glob: results/run.json}
  viral_fasta:
    type: File?
    outputBinding: {glob: results/viral.fa}
  pairs:
    type: File?
    doc: "paired-end runs only (`r2` or `interleaved`): one row per read pair with its pair call"
    outputBinding: {glob: results/pairs.tsv}
