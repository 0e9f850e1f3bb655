"""ESM-2 3B, issue #20.4: two-stream overlap and sequence-tile attention vs the current compiled path.

One command, one process, one bf16 model whose settings are switched between variants, alternated
repeat by repeat (medians), plus their cosine to our fp32 path and a kernel-level attention timing:
  python benchmarks/bench_esm2_overlap.py --model /tmp/esm2-full --out esm2_h200_overlap.json
Variants (all compiled, fc1 GELU as the loader chooses, Triton attention for batches <= 64 tokens):
- `compiled`: the path before issue #20.4 (attention over 64-token stretches of the stream);
- `seq-attn`: Triton attention with one program per (sequence, head) where every sequence fits one
  tile (<= 128 tokens; at 95-100 aa this replaces torch varlen + compiled rotary); the model's
  default since #20.4 is the same for sequences <= 64 tokens (what won);
- `overlap`: each batch split in two halves at a sequence boundary, on two CUDA streams;
- `seq-attn-overlap`: both.
`--device cpu --size tiny` runs the same code on the CPU (no streams, no Triton): a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

import bench_esm2 as base  # benchmarks/ is the script's own folder (sys.path[0])
from virnucpro.engine.batching import token_budget_batches
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.tokenize.esm_alphabet import encode_proteins

VARIANTS = {
    "compiled": {"sequence_tile_tokens": 0, "stream_overlap": False},
    "seq-attn": {"sequence_tile_tokens": 128, "stream_overlap": False},
    "overlap": {"sequence_tile_tokens": 0, "stream_overlap": True},
    "seq-attn-overlap": {"sequence_tile_tokens": 128, "stream_overlap": True},
}
WORKLOADS = {  # name: (residues lo, hi, variants timed); at 95-100 aa the current path is torch varlen
    "read150_48-50aa": (48, 50, list(VARIANTS)),
    "chunk300_95-100aa": (95, 100, ["compiled", "seq-attn", "overlap"]),
}


def switch(model, variant: str):
    for key, value in VARIANTS[variant].items():
        setattr(model, key, value)
    return model


def batches(seqs, budget: int):
    return [encode_proteins(b.items) for b in token_budget_batches(seqs, lambda p: len(p) + 2, budget)]


def run(model, variant: str, prepared):
    switch(model, variant)
    return [model.embed(b) for b in prepared]


def bench_workload(model, variants, seqs, budget: int, repeats: int, params: int) -> dict:
    tokens = sum(len(p) + 2 for p in seqs)
    prepared = batches(seqs, budget)
    for variant in variants:  # warm-up: compile, streams, Triton kernels, allocator
        t0 = time.perf_counter()
        run(model, variant, prepared)
        base.sync()
        print(f"  warm-up {variant}: {time.perf_counter() - t0:.1f} s", flush=True)
    times = {v: [] for v in variants}
    peaks = {}
    for _ in range(repeats):
        for variant in variants:
            seconds, peaks[variant] = base.timed(lambda v=variant: run(model, v, prepared))
            times[variant].append(seconds)
    rows = {v: base.throughput(v, times[v], peaks[v], tokens, len(seqs), params) for v in variants}
    for row in rows.values():
        row["gain_vs_compiled"] = rows["compiled"]["seconds_median"] / row["seconds_median"] - 1
        spread = (max(row["seconds_all"]) - min(row["seconds_all"])) / row["seconds_median"]
        row["spread"] = spread
        print(f"  {row['candidate']:>18}: {row['tokens_per_s']:>9,.0f} tok/s {row['gain_vs_compiled']:+.2%} "
              f"(spread {spread:.2%}) peak {row['peak_gib']:5.1f} GiB", flush=True)  # fmt: skip
    return rows


def usable_variants(model, seqs, budget: int, errors: dict) -> list[str]:
    """The variants that run here (one that fails, e.g. a kernel that does not build, is recorded
    in `errors` and left out, so that the others are still measured in this call)."""
    usable = []
    for variant in VARIANTS:
        try:
            run(model, variant, batches(seqs, budget))
            base.sync()
        except Exception as exc:  # noqa: BLE001
            errors[variant] = f"{type(exc).__name__}: {exc}"[:500]
            print(f"variant {variant} left out: {errors[variant]}", flush=True)
            continue
        usable.append(variant)
    return usable


def accuracy(model, variants, ref_embeddings, seqs, budget: int) -> dict:
    """Cosine per sequence of each variant vs our fp32 eager path (sorted input: batches keep order)."""
    out = {}
    for variant in variants:
        got = torch.cat(run(model, variant, batches(seqs, budget))).float()
        cos = torch.nn.functional.cosine_similarity(got, ref_embeddings, dim=-1)
        out[variant] = {"min": cos.min().item(), "mean": cos.mean().item(), "n": len(seqs)}
        print(f"  cosine {variant:>18}: min {out[variant]['min']:.6f} mean {out[variant]['mean']:.6f}", flush=True)
    return out


def attention_kernels(cfg, budget: int) -> dict:
    """Milliseconds per call at ESM-2 shapes (`budget` tokens of 48-50 and of 95-100 aa proteins):
    the stream-tile kernel, the sequence-tile kernel, and torch varlen (rotary applied separately)."""
    return {f"{lo}-{hi}aa": attention_kernels_at(cfg, budget, lo, hi) for lo, hi in ((48, 50), (95, 100))}


def attention_kernels_at(cfg, budget: int, lo: int, hi: int) -> dict:
    import triton.testing

    from virnucpro.models.attention import TORCH_VARLEN, varlen_attention
    from virnucpro.models.esm2 import rotary_qkv
    from virnucpro.models.packed_attention import packed_attention, sequence_attention, sequence_bounds

    packed = encode_proteins(base.proteins(lo, hi, budget // (hi + 2), 11)).to(base.DEVICE)
    tokens, heads = packed.num_tokens, cfg.num_heads
    qkv = torch.randn(tokens, 3 * cfg.hidden_size, device=base.DEVICE, dtype=base.DTYPE)
    start, end = sequence_bounds(packed.cu_seqlens, tokens)
    angles = (torch.arange(tokens, device=base.DEVICE) - start)[:, None].float() * torch.rand(cfg.head_dim // 2, device=base.DEVICE)
    rotary = (angles.cos(), angles.sin())
    cu, longest = packed.cu_seqlens, packed.max_seqlen
    calls = {
        "stream_tiles": lambda: packed_attention(qkv, start, end, heads, rotary=rotary),
        "sequence_tiles": lambda: sequence_attention(qkv, cu, longest, heads, rotary=rotary),
        "sequence_tiles_8_warps": lambda: sequence_attention(qkv, cu, longest, heads, rotary=rotary, num_warps=8),
        "torch_varlen_plus_rotary": lambda: varlen_attention(*rotary_qkv(qkv, *rotary, heads), cu, longest, 1.0, TORCH_VARLEN),
    }  # fmt: skip
    ref = calls["stream_tiles"]().float()
    out = {"tokens": tokens, "sequences": packed.num_sequences}
    for name, call in calls.items():
        try:
            error = ((call().float() - ref).norm() / ref.norm()).item()
            ms = triton.testing.do_bench(call, warmup=50, rep=300, return_mode="median")
        except Exception as exc:  # noqa: BLE001 (record it; the end-to-end variants still run)
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            print(f"  attention {name}: {out[name]['error']}", flush=True)
            continue
        out[name] = {"ms": ms, "relative_difference_to_stream_tiles": error}
        print(f"  attention {lo}-{hi} aa {name:>26}: {ms:.3f} ms (difference to stream tiles {error:.2e})", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=int, default=65_536)
    parser.add_argument("--batches", type=int, default=4, help="batches of --budget tokens per workload")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", choices=["full", "tiny"], default="full", help="model written if --model is empty")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    args = parser.parse_args()
    base.DEVICE, base.DTYPE = args.device, torch.bfloat16 if args.device == "cuda" else torch.float32
    if not (args.model / "config.json").is_file():
        from virnucpro.devtools.random_esm2 import write_random_esm2

        t0 = time.perf_counter()
        write_random_esm2(args.model, size=args.size, seed=0)
        print(f"wrote random {args.size} ESM-2 in {time.perf_counter() - t0:.0f} s", flush=True)
    result = {
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__,
        "commit": os.environ.get("GIT_COMMIT", "unknown"), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "budget_tokens": args.budget, "variants": VARIANTS, "workloads": {},
        "notes": "random weights, full esm2_t36_3B_UR50D shapes; one bf16 model, variants switched in place",
    }  # fmt: skip

    def save():
        args.out.write_text(json.dumps(result, indent=1) + "\n")

    acc_seqs = sorted(base.proteins(48, 50, 256, 1) + base.proteins(95, 100, 128, 2) + base.proteins(300, 1000, 4, 3), key=len)
    ref = base.embed_in_chunks(base.fp32_reference(args.model), acc_seqs)  # frees the fp32 model on return
    model = load_esm2(args.model, args.device, base.DTYPE, fast=False).enable_compile()
    cfg = model.cfg
    result["params"] = params = cfg.num_parameters()
    result["gelu_epilogue"] = model.gelu_epilogue
    result["attention"] = model.describe_attention()
    result["variant_errors"] = {}
    variants = usable_variants(model, acc_seqs[:64], args.budget, result["variant_errors"])
    result["cosine_vs_fp32"] = accuracy(model, variants, ref, acc_seqs, args.budget)
    save()
    if args.device == "cuda":
        try:
            result["attention_kernels"] = attention_kernels(cfg, args.budget)
        except Exception as exc:  # noqa: BLE001 (a kernel that fails to build must not cost the whole call)
            result["attention_kernels"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            print(f"attention kernels: {result['attention_kernels']}", flush=True)
        result["gemm_ceiling"] = base.gemm_ceiling(cfg, args.budget)
        save()
    for name, (lo, hi, timed_variants) in WORKLOADS.items():
        count = args.batches * args.budget // (hi + 2)
        print(f"{name}: {count} proteins", flush=True)
        chosen = [v for v in timed_variants if v in variants]
        seqs = base.proteins(lo, hi, count, seed=lo)
        result["workloads"][name] = bench_workload(model, chosen, seqs, args.budget, args.repeats, params)
        save()
    result["summary"] = {
        name: {v: {"tokens_per_s": round(r["tokens_per_s"]), "gain_vs_compiled": round(r["gain_vs_compiled"], 4)}
               for v, r in rows.items()} for name, rows in result["workloads"].items()
    }  # fmt: skip
    print(json.dumps(result["summary"], indent=1), flush=True)
    save()


if __name__ == "__main__":
    main()
