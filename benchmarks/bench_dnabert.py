"""DNABERT-S on W1-style nucleotide frames: our packed bf16 path vs the original's one frame per call in fp32.

Two steps, so the GPU machine needs none of the FASTA tooling:

    python benchmarks/bench_dnabert.py prepare FRAMES.tsv --reads 100000    # here: W1/10 frames
    python benchmarks/bench_dnabert.py run FRAMES.tsv -o benchmarks/results/dnabert_h200.json

`prepare` samples W1 reads (benchmarks/reads.py), keeps frames exactly as the pipeline does
(virnucpro.frames, 300-bp model) and writes one `nucleotide<TAB>protein length` line per frame.
`run` uses full-size random weights in the published layout; the baseline runs on a subset and is
extrapolated per frame. Both run in one process, alternating, medians reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ESM2_TARGET_TOKENS_PER_S = 110_000  # docs/performance.md: the ESM-2 3B target on one H200


def prepare(path: Path, n_reads: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reads import sample_reads

    from virnucpro.frames import chunk_records
    from virnucpro.io.reader import Record

    records = [Record(name.split()[0], seq, "W1", i) for i, (name, seq) in enumerate(sample_reads(n_reads))]
    frames = [f for chunks in chunk_records(records, 300, "even") for c in chunks for f in c.frames]
    path.write_text("".join(f"{f.nucleotide}\t{len(f.protein)}\n" for f in frames))
    print(f"{n_reads} reads -> {len(frames)} frames in {path}")


def budget_batches(token_arrays: list[np.ndarray], budget: int) -> list:
    """The pipeline's batches (engine.batching, length-sorted over all frames, as pipeline/blocks.py
    sends a block): (input index of each frame, pinned packed tokens) per batch."""
    from virnucpro.engine.batching import token_budget_batches
    from virnucpro.tokenize.packing import pack

    batches = []
    for batch in token_budget_batches(range(len(token_arrays)), lambda i: token_arrays[i].size, budget):
        packed = pack([token_arrays[i] for i in batch.indices])
        pinned = type(packed)(packed.ids.pin_memory(), packed.cu_seqlens.pin_memory(), packed.max_seqlen)
        batches.append((torch.tensor(batch.indices), pinned))
    return batches


def in_input_order(batches, outputs: list[torch.Tensor]) -> torch.Tensor:
    """Per-batch embeddings put back in input order: row i is the i-th frame of `batches`' frames."""
    stacked = torch.cat(outputs)
    ordered = torch.empty_like(stacked)
    ordered[torch.cat([index for index, _ in batches]).to(stacked.device)] = stacked
    return ordered


def timed_pass(model, batches) -> tuple[float, torch.Tensor]:
    """Seconds for embedding every batch (device time between events), and the embeddings in input order."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    out = [model.embed(packed) for _, packed in batches]
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000, in_input_order(batches, out)


def original_way(model, tokenizer, seqs) -> tuple[float, torch.Tensor]:
    """One frame per call in fp32: tokenize, run, mean, copy back (as the original does)."""
    from virnucpro.tokenize.packing import pack

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = [model.embed(pack(tokenizer.encode_batch([s]))).cpu() for s in seqs]
    return time.perf_counter() - t0, torch.cat(out)


def eager_elementwise() -> None:
    """Comparison: the same model with its GEGLU and residual+LayerNorm helpers left uncompiled."""
    from virnucpro.models import dnabert

    dnabert._fused = lambda fn: fn


def cosine_stats(a: torch.Tensor, b: torch.Tensor) -> dict:
    cos = torch.nn.functional.cosine_similarity(a.float().cpu(), b.float().cpu(), dim=1)
    return {"min": cos.min().item(), "mean": cos.mean().item()}


def run(frames_file: Path, out: Path, budget: int, repeats: int, baseline_frames: int) -> None:
    from virnucpro.devtools.random_dnabert import write_random_dnabert
    from virnucpro.models.dnabert_loader import load_dnabert
    from virnucpro.tokenize.dnabert import DnabertTokenizer

    lines = [line.split("\t") for line in frames_file.read_text().splitlines()]
    seqs, protein_lengths = [s for s, _ in lines], np.array([int(n) for _, n in lines])
    tokenizer = DnabertTokenizer.default()
    t0 = time.perf_counter()
    token_arrays = tokenizer.encode_batch(seqs)
    tokenize_s = time.perf_counter() - t0
    lengths = np.array([len(t) for t in token_arrays])
    batches = budget_batches(token_arrays, budget)
    with tempfile.TemporaryDirectory() as tmp:
        write_random_dnabert(tmp, "full", seed=0)
        fast = load_dnabert(tmp, "cuda", torch.bfloat16)
        fp32 = load_dnabert(tmp, "cuda", torch.float32)
    result = {
        "benchmark": "bench_dnabert", "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
        "git_commit": os.environ.get("GIT_COMMIT") or _git_commit(), "attention": fast.describe_attention(),
        "workload": {
            "frames": len(seqs), "source": "W1/10 reads (benchmarks/reads.py, seed 1) -> kept frames, 300-bp model",
            "nucleotide_bp_mean": float(np.mean([len(s) for s in seqs])), "tokens_total": int(lengths.sum()),
            "tokens_per_frame_mean": float(lengths.mean()), "tokens_per_frame_max": int(lengths.max()),
            "token_budget": budget, "batches": len(batches),
        },
        "tokenize_cpu": {"seconds": tokenize_s, "frames_per_s": len(seqs) / tokenize_s, "cpu_cores": os.cpu_count()},
    }
    t0 = time.perf_counter()
    fast.embed(batches[0][1]), fast.embed(batches[-1][1]), fp32.embed(batches[0][1])  # warm-up: compile, kernels
    result["first_batches_seconds_incl_compile"] = time.perf_counter() - t0
    timed_pass(fast, batches)  # warm-up pass: clocks, allocator
    subset = seqs[:baseline_frames]
    original_way(fp32, tokenizer, subset[:20])
    ours_s, base_s = [], []
    for _ in range(repeats):
        seconds, ours = timed_pass(fast, batches)
        ours_s.append(seconds)
        seconds, baseline = original_way(fp32, tokenizer, subset)
        base_s.append(seconds)
    ours_per_frame = statistics.median(ours_s) / len(seqs)
    base_per_frame = statistics.median(base_s) / len(subset)
    esm2_s_per_frame = (protein_lengths + 2).mean() / ESM2_TARGET_TOKENS_PER_S
    n_exact = int(np.searchsorted(np.cumsum(lengths), 4 * budget, side="right"))  # the first 4 budgets' frames
    _, exact = timed_pass(fp32, budget_batches(token_arrays[:n_exact], budget))
    result["ours_bf16_packed"] = {
        "seconds_per_pass": ours_s, "frames_per_s": 1 / ours_per_frame,
        "tokens_per_s": lengths.sum() / statistics.median(ours_s),
        "tflops": 2 * _params(fast) * lengths.sum() / statistics.median(ours_s) / 1e12,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    result["baseline_fp32_one_per_call"] = {
        "frames_timed": len(subset), "seconds": base_s, "frames_per_s": 1 / base_per_frame,
        "extrapolated_seconds_all_frames": base_per_frame * len(seqs),
    }
    result["speedup"] = base_per_frame / ours_per_frame
    result["vs_esm2_target"] = {
        "esm2_tokens_per_frame": float((protein_lengths + 2).mean()),
        "esm2_seconds_per_frame_at_110k_tok_s": esm2_s_per_frame,
        "dnabert_fraction_of_esm2_time": ours_per_frame / esm2_s_per_frame,
        "target_frames_per_s": 45_000,
    }
    result["accuracy"] = {
        "bf16_packed_vs_fp32_packed_cosine": cosine_stats(ours[:n_exact], exact) | {"frames": n_exact},
        "bf16_packed_vs_fp32_one_per_call_cosine": cosine_stats(ours[: len(subset)], baseline),
        "fp32_packed_vs_fp32_one_per_call_max_abs": (exact[: len(subset)].cpu() - baseline).abs().max().item(),
    }
    _write(out, result)
    result["token_budget_sweep"] = {str(b): _frames_per_s(fast, token_arrays, b) for b in (32_768, 131_072)}
    _write(out, result)
    result["ours_bf16_packed_padded_sdpa"] = _with_attention(fast, batches, "padded", repeats, exact)
    _write(out, result)
    eager_elementwise()
    timed_pass(fast, batches)
    eager_s, eager = [], None
    for _ in range(repeats):
        seconds, eager = timed_pass(fast, batches)
        eager_s.append(seconds)
    result["ours_bf16_packed_eager_elementwise"] = {
        "seconds_per_pass": eager_s, "frames_per_s": len(seqs) / statistics.median(eager_s),
        "cosine_vs_fp32": cosine_stats(eager[:n_exact], exact),
    }
    _write(out, result)
    _summary(result)


def _with_attention(model, batches, kind: str, repeats: int, exact: torch.Tensor) -> dict:
    """The same passes with another attention path forced (side by side with the default)."""
    from virnucpro.models import dnabert

    chosen = dnabert._attention_kind
    dnabert._attention_kind = lambda *args: kind
    try:
        timed_pass(model, batches)
        runs = [timed_pass(model, batches) for _ in range(repeats)]
    finally:
        dnabert._attention_kind = chosen
    seconds = [s for s, _ in runs]
    frames = sum(packed.num_sequences for _, packed in batches)
    return {"attention": kind, "seconds_per_pass": seconds, "frames_per_s": frames / statistics.median(seconds),
            "cosine_vs_fp32": cosine_stats(runs[0][1][: exact.shape[0]], exact)}  # fmt: skip


def _frames_per_s(model, token_arrays, budget: int) -> float:
    """One warm-up pass, then the median of two timed passes."""
    batches = budget_batches(token_arrays, budget)
    timed_pass(model, batches)
    return len(token_arrays) / statistics.median([timed_pass(model, batches)[0] for _ in range(2)])


def _params(model) -> int:
    """Parameters used per token (the embedding table is a lookup, not a product)."""
    return sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


def _summary(r: dict) -> None:
    print(f"{r['gpu']}, torch {r['torch']}, {r['attention']}")
    print(f"frames {r['workload']['frames']}, tokens/frame {r['workload']['tokens_per_frame_mean']:.1f}")
    print(f"ours bf16 packed:          {r['ours_bf16_packed']['frames_per_s']:>10,.0f} frames/s "
          f"({r['ours_bf16_packed']['tflops']:.0f} TFLOP/s)")
    print(f"  same, padded SDPA attn:  {r['ours_bf16_packed_padded_sdpa']['frames_per_s']:>10,.0f} frames/s")
    print(f"  same, eager elementwise: {r['ours_bf16_packed_eager_elementwise']['frames_per_s']:>10,.0f} frames/s")
    print(f"baseline fp32 1/call:      {r['baseline_fp32_one_per_call']['frames_per_s']:>10,.0f} frames/s")
    print(f"speedup {r['speedup']:.0f}x; DNABERT/ESM-2 time {r['vs_esm2_target']['dnabert_fraction_of_esm2_time']:.3%}")
    print(f"budget sweep {r['token_budget_sweep']}")
    print(f"accuracy {r['accuracy']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("frames", type=Path)
    p.add_argument("--reads", type=int, default=100_000)
    r = sub.add_parser("run")
    r.add_argument("frames", type=Path)
    r.add_argument("-o", "--out", type=Path, default=Path("benchmarks/results/dnabert_h200.json"))
    r.add_argument("--token-budget", type=int, default=65_536)
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--baseline-frames", type=int, default=400)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.frames, args.reads)
    else:
        run(args.frames, args.out, args.token_budget, args.repeats, args.baseline_frames)


if __name__ == "__main__":
    main()
