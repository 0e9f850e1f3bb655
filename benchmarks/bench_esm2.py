"""ESM-2 3B throughput and accuracy on one GPU: our packed encoder vs transformers' EsmModel.

One command runs everything, alternating candidates and the baseline, and writes one JSON:
  python benchmarks/bench_esm2.py --model /tmp/esm2-full --out results.json [--variants ...]
- workloads: proteins of 150-bp reads (48-50 aa), of 300-bp chunks (95-100 aa) and of the contigs'
  500-bp chunks (160-166 aa), random residues;
- baseline: transformers EsmModel, bf16, SDPA attention, length-sorted padded batches of 65,536 tokens;
- ours: packed batches of <= 65,536 tokens, in each variant given (eager, compiled, compiled with
  exact erf GELU instead of the GPU default, cuBLASLt's GELU epilogue, ...);
- accuracy: cosine per sequence of each candidate's mean embedding vs our fp32 eager path (which
  tests/models/test_esm2.py pins to transformers' fp32 eager EsmModel);
- a GEMM-only ceiling (the four weight matmuls per layer) and a kernel-time profile of one batch
  per compiled variant.
Random weights: throughput does not depend on the values (write them with `python -m
virnucpro.devtools random-models DIR --size full`, or let this script write DIR/esm2).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

import torch

from virnucpro.engine.batching import token_budget_batches
from virnucpro.models.esm2_loader import load_esm2
from virnucpro.tokenize.esm_alphabet import encode_protein, encode_proteins

AMINO = "LAGVSERTIDPKQNFYMHWC"
WORKLOADS = {"read150_48-50aa": (48, 50), "chunk300_95-100aa": (95, 100), "contig500_160-166aa": (160, 166)}
VARIANTS = {  # ours: eager; compiled with torch varlen attention / our Triton kernel / auto per batch
    # (fc1's GELU: the loader's choice, cuBLASLt's epilogue on CUDA bf16, unless gelu_epilogue says)
    "eager": {"fast": False},
    "compiled-varlen": {"fast": True, "mode": "default", "fused_attention": False},
    "compiled-triton-attn": {"fast": True, "mode": "default", "fused_attention": True},
    "compiled": {"fast": True, "mode": "default", "fused_attention": None},
    "compiled-max-autotune": {"fast": True, "mode": "max-autotune-no-cudagraphs", "fused_attention": None},
    "compiled-erf-gelu": {"fast": True, "mode": "default", "fused_attention": None, "gelu_epilogue": False},
}


def proteins(lo: int, hi: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(AMINO, k=rng.randint(lo, hi))) for _ in range(count)]


DTYPE = torch.bfloat16
DEVICE = "cuda"  # --device cpu runs the same code on the tiny model: a smoke test before GPU time


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def timed(fn) -> tuple[float, float]:
    """(seconds, peak GiB) of fn() with the device synchronised around it."""
    sync()
    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    fn()
    sync()
    peak = torch.cuda.max_memory_allocated() / 2**30 if DEVICE == "cuda" else 0.0
    return time.perf_counter() - start, peak


class Ours:
    def __init__(self, model_dir, variant: str, budget: int):
        options = VARIANTS[variant]
        self.model = load_esm2(model_dir, DEVICE, DTYPE, fast=False)
        if "gelu_epilogue" in options:
            self.model.use_gelu_epilogue(options["gelu_epilogue"])
        if options["fast"]:
            self.model.enable_compile(mode=options["mode"], fused_attention=options["fused_attention"])
        self.budget = budget

    def batches(self, seqs):
        return [
            encode_proteins(b.items)
            for b in token_budget_batches(seqs, lambda p: len(p) + 2, self.budget)
        ]

    def run(self, batches):
        return [self.model.embed(b) for b in batches]


class Baseline:
    """transformers EsmModel bf16 + SDPA on length-sorted padded batches of <= budget tokens."""

    def __init__(self, model_dir, budget: int):
        from transformers import EsmModel

        self.model = EsmModel.from_pretrained(
            model_dir, dtype=DTYPE, attn_implementation="sdpa", add_pooling_layer=False
        ).to(DEVICE).eval()
        self.budget = budget

    def batches(self, seqs):
        out, order, i = [], sorted(seqs, key=len), 0
        while i < len(order):
            j = i + 1  # grow while rows x (longest + 2) fits the budget (order is sorted)
            while j < len(order) and (j + 1 - i) * (len(order[j]) + 2) <= self.budget:
                j += 1
            group = [torch.from_numpy(encode_protein(p)) for p in order[i:j]]
            ids = torch.nn.utils.rnn.pad_sequence(group, batch_first=True, padding_value=1)
            ids = ids.pin_memory() if DEVICE == "cuda" else ids
            out.append((ids, torch.tensor([len(g) for g in group])))
            i = j
        return out

    @torch.inference_mode()
    def run(self, batches):
        means = []
        for ids, lengths in batches:
            ids, lengths = ids.to(DEVICE, non_blocking=True), lengths.to(DEVICE, non_blocking=True)
            positions = torch.arange(ids.shape[1], device=DEVICE)
            mask = positions < lengths[:, None]
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            residues = ((positions >= 1) & (positions < lengths[:, None] - 1)).unsqueeze(-1)
            means.append((hidden.float() * residues).sum(1) / (lengths[:, None] - 2))
        return means


def throughput(name, seconds, peak, tokens, seqs, params):
    return {
        "candidate": name, "seconds_median": statistics.median(seconds), "seconds_all": seconds,
        "tokens": tokens, "sequences": seqs, "tokens_per_s": tokens / statistics.median(seconds),
        "seq_per_s": seqs / statistics.median(seconds),
        "tflops": 2 * params * tokens / statistics.median(seconds) / 1e12, "peak_gib": peak,
    }  # fmt: skip


def bench_workload(candidates, seqs, repeats, params):
    tokens = sum(len(p) + 2 for p in seqs)
    prepared = {name: c.batches(seqs) for name, c in candidates.items()}
    for name, c in candidates.items():  # warm up: compile, cuBLAS handles, allocator
        t0 = time.perf_counter()
        c.run(prepared[name])
        sync()
        print(f"  warm-up {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    times = {name: [] for name in candidates}
    peaks = {}
    for _ in range(repeats):
        for name, c in candidates.items():
            seconds, peaks[name] = timed(lambda c=c, name=name: c.run(prepared[name]))
            times[name].append(seconds)
    rows = {n: throughput(n, times[n], peaks[n], tokens, len(seqs), params) for n in candidates}
    for row in rows.values():
        row["ratio_vs_baseline"] = rows["baseline"]["seconds_median"] / row["seconds_median"]
        print(f"  {row['candidate']:>24}: {row['tokens_per_s']:>9,.0f} tok/s {row['seq_per_s']:>7,.0f} seq/s "
              f"{row['tflops']:6.1f} TFLOP/s peak {row['peak_gib']:5.1f} GiB x{row['ratio_vs_baseline']:.2f}", flush=True)
    return rows


def fp32_reference(model_dir):
    """Our fp32 eager ESM-2 on the GPU with TF32 off: the accuracy reference."""
    torch.backends.cuda.matmul.allow_tf32 = False
    return load_esm2(model_dir, DEVICE, torch.float32, fast=False)


def embed_in_chunks(model, seqs, size: int = 64):
    """Mean embeddings of `seqs` in input order, `size` proteins per call."""
    return torch.cat([model.embed(encode_proteins(seqs[i : i + size])) for i in range(0, len(seqs), size)])


def accuracy(model_dir, candidates, seqs):
    """Cosine per sequence vs our fp32 eager path on the GPU (TF32 off)."""
    seqs = sorted(seqs, key=len)  # every candidate batches by sorted length: outputs stay in this order
    ref = embed_in_chunks(fp32_reference(model_dir), seqs)
    out = {}
    for name, c in candidates.items():
        cos = torch.nn.functional.cosine_similarity(torch.cat(c.run(c.batches(seqs))).float(), ref, dim=-1)
        out[name] = {"min": cos.min().item(), "mean": cos.mean().item(), "n": len(seqs)}
        print(f"  cosine {name:>24}: min {out[name]['min']:.6f} mean {out[name]['mean']:.6f}", flush=True)
    return out


def gemm_ceiling(cfg, tokens: int) -> dict:
    """tokens/s if only the four weight matmuls of every layer ran (bf16, cuBLAS)."""
    d, f = cfg.hidden_size, cfg.ffn_size
    x = torch.randn(tokens, d, device=DEVICE, dtype=DTYPE)
    h = torch.randn(tokens, f, device=DEVICE, dtype=DTYPE)
    ws = [torch.randn(n, k, device=DEVICE, dtype=DTYPE) / 50 for n, k in ((3 * d, d), (d, d), (f, d), (d, f))]

    def layer_stack():
        for _ in range(cfg.num_layers):
            torch.nn.functional.linear(x, ws[0]); torch.nn.functional.linear(x, ws[1])
            torch.nn.functional.linear(x, ws[2]); torch.nn.functional.linear(h, ws[3])

    layer_stack()
    seconds = statistics.median(timed(layer_stack)[0] for _ in range(3))
    return {"tokens_per_s": tokens / seconds, "tflops": 2 * tokens * cfg.num_layers * (4 * d * d + 2 * d * f) / seconds / 1e12}


def kernel_profile(candidate, batch) -> dict:
    """Share of GPU kernel time by kind for one batch, and the wall time around it."""
    from torch.profiler import ProfilerActivity, profile

    candidate.run([batch])
    sync()
    with profile(activities=[ProfilerActivity.CUDA if DEVICE == "cuda" else ProfilerActivity.CPU]) as prof:
        wall = timed(lambda: candidate.run([batch]))[0]
    kinds: dict[str, float] = {}
    for evt in prof.key_averages():
        us = evt.device_time_total if hasattr(evt, "device_time_total") else evt.cuda_time_total
        if us <= 0:
            continue
        name = evt.key.lower()
        kind = ("triton-matmul" if "triton_tem" in name
                else "matmul" if any(s in name for s in ("gemm", "nvjet", "xmma", "cutlass", "sm90"))
                else "attention" if "flash" in name or "attention" in name
                else "gelu" if "triton" in name and "gelu" in name
                else "residual+layernorm" if "triton" in name and "layer_norm" in name
                else "fused-triton" if "triton" in name else "other")  # fmt: skip
        kinds[kind] = kinds.get(kind, 0.0) + us / 1e6
    top = sorted(prof.key_averages(), key=lambda e: -getattr(e, "device_time_total", 0))[:12]
    total = sum(kinds.values())
    return {"wall_s": wall, "kernel_s": kinds, "kernel_total_s": total,
            "kernel_share": {k: v / total for k, v in kinds.items()},
            "top": [(e.key[:90], getattr(e, "device_time_total", 0) / 1e6) for e in top]}  # fmt: skip


def attention_sweep(cfg, tokens: int) -> dict:
    """Milliseconds per call of the packed Triton kernel per tile/launch config, for ESM-2
    (rotary, ~51-token proteins) and DNABERT-S shapes (ALiBi, 12 heads of 64, ~33-token frames)."""
    import triton.testing

    from virnucpro.models.dnabert import alibi_slopes
    from virnucpro.models.packed_attention import (
        KERNEL_CONFIG,
        packed_attention,
        sequence_bounds,
    )

    configs = [{"BLOCK_M": m, "BLOCK_N": n, "num_warps": w, "num_stages": st}
               for m in (64, 128) for n in (32, 64) for w in (4, 8) for st in (2, 3)]  # fmt: skip
    cases = {"esm2_rotary_51": (cfg.num_heads, cfg.head_dim, 51), "dnabert_alibi_33": (12, 64, 33)}
    out = {"default": KERNEL_CONFIG}
    for case, (heads, head_dim, seqlen) in cases.items():
        qkv = torch.randn(tokens, 3 * heads * head_dim, device=DEVICE, dtype=DTYPE)
        cu = torch.arange(0, tokens + 1, seqlen, device=DEVICE, dtype=torch.int32)
        cu = torch.cat((cu, torch.tensor([tokens], device=DEVICE, dtype=torch.int32))).unique()
        start, end = sequence_bounds(cu, tokens)
        angles = (torch.arange(tokens, device=DEVICE) - start)[:, None].float() * torch.rand(head_dim // 2, device=DEVICE)
        extra = ({"rotary": (angles.cos(), angles.sin())} if case.startswith("esm2")
                 else {"alibi_slopes": torch.tensor(alibi_slopes(heads), device=DEVICE)})  # fmt: skip
        rows = []
        for config in configs:
            try:
                ms = triton.testing.do_bench(
                    lambda config=config: packed_attention(qkv, start, end, heads, 0.125, config=config, **extra)  # noqa: B023 (called at once)
                )
            except Exception as exc:  # noqa: BLE001 (a config can exceed shared memory or registers: record and go on)
                ms = None
                print(f"  {case} {config}: {type(exc).__name__}", flush=True)
            rows.append({**config, "ms": ms})
        rows.sort(key=lambda r: r["ms"] if r["ms"] is not None else 1e9)
        out[case] = rows
        print(f"attention sweep {case}: best {rows[0]}, default {[r for r in rows if all(r[k] == v for k, v in KERNEL_CONFIG.items())]}", flush=True)
    return out


def fp8_probe(model_dir, seqs, ref_model=None) -> dict:
    """Would FP8 weight matmuls keep the embeddings? Cosine per sequence of an ESM-2 whose four
    linear layers run as e4m3 rowwise-scaled matmuls (torch._scaled_mm, bf16 out), vs fp32; and
    the four-matmul stack's speed in fp8 vs bf16 (the most FP8 could give)."""
    import types

    import virnucpro.models.esm2 as esm2_module

    e4m3 = torch.float8_e4m3fn
    fmax = torch.finfo(e4m3).max

    def quantize_rows(t):
        scale = t.float().abs().amax(-1, keepdim=True).clamp(min=1e-12) / fmax
        return (t.float() / scale).to(e4m3), scale

    cache = {}

    def fp8_linear(x, w, b=None):
        key = w.data_ptr()
        if key not in cache:
            cache[key] = quantize_rows(w)
        wq, ws = cache[key]
        xq, xs = quantize_rows(x.reshape(-1, x.shape[-1]))
        y = torch._scaled_mm(xq, wq.t(), scale_a=xs, scale_b=ws.t(), out_dtype=torch.bfloat16)
        y = y if b is None else y + b
        return y.reshape(*x.shape[:-1], -1)

    shim = types.SimpleNamespace(**{k: getattr(torch.nn.functional, k) for k in dir(torch.nn.functional) if not k.startswith("__")})
    shim.linear = fp8_linear
    ref = embed_in_chunks(fp32_reference(model_dir), seqs)
    model = load_esm2(model_dir, DEVICE, DTYPE, fast=False).use_gelu_epilogue(False)  # fc1 through the shim too
    real_f = esm2_module.F
    esm2_module.F = shim
    try:
        got = embed_in_chunks(model, seqs)
    finally:
        esm2_module.F = real_f
    cos = torch.nn.functional.cosine_similarity(got, ref, dim=-1)
    cfg, tokens = model.cfg, 65_536
    d, f = cfg.hidden_size, cfg.ffn_size
    shapes = ((3 * d, d), (d, d), (f, d), (d, f))
    xs = {k: torch.randn(tokens, k, device=DEVICE, dtype=DTYPE) for k in (d, f)}
    ws = [torch.randn(n, k, device=DEVICE, dtype=DTYPE) / 50 for n, k in shapes]
    xq = {k: quantize_rows(x) for k, x in xs.items()}
    wq = [quantize_rows(w) for w in ws]

    def stack(fp8: bool):
        for _ in range(cfg.num_layers):
            for (n, k), w, (wqq, wsc) in zip(shapes, ws, wq):
                if fp8:
                    torch._scaled_mm(xq[k][0], wqq.t(), scale_a=xq[k][1], scale_b=wsc.t(), out_dtype=torch.bfloat16)
                else:
                    torch.nn.functional.linear(xs[k], w)

    seconds = {}
    for name, fp8 in (("bf16", False), ("fp8", True)):
        stack(fp8)
        seconds[name] = statistics.median(timed(lambda fp8=fp8: stack(fp8))[0] for _ in range(3))
    result = {"cosine_vs_fp32": {"min": cos.min().item(), "mean": cos.mean().item(), "n": len(seqs)},
              "gemm_stack_seconds": seconds, "gemm_stack_speedup": seconds["bf16"] / seconds["fp8"],
              "gemm_stack_tokens_per_s": {k: tokens / v for k, v in seconds.items()}}  # fmt: skip
    print(f"fp8 probe: {result}", flush=True)
    return result


def summary(result: dict) -> dict:
    """Per workload: tokens/s of each variant, the GELU epilogue's gain over exact erf GELU (same
    call), and the default compiled variant against the GEMM-only ceiling."""
    out = {}
    ceiling = result["gemm_ceiling"]["tokens_per_s"]
    for name, rows in result["workloads"].items():
        tps = {c: round(r["tokens_per_s"]) for c, r in rows.items()}
        entry = {"tokens_per_s": tps}
        if "ours-compiled" in rows and "ours-compiled-erf-gelu" in rows:
            entry["gelu_epilogue_gain"] = tps["ours-compiled"] / tps["ours-compiled-erf-gelu"]
        if "ours-compiled" in rows:
            entry["compiled_over_gemm_ceiling"] = tps["ours-compiled"] / ceiling
        out[name] = entry
    return out


COPY_TB_S = 4.3  # device-to-device copy on these H200s, bytes read + written (device README, KINDS.md)


def gap_to_goal(result: dict, cfg, goal: float = 110_000, workload: str = "read150_48-50aa",
                candidate: str = "ours-compiled") -> dict:
    """What stands between `candidate` and `goal` tokens/s: its time per budget-sized batch split
    by kernel kind (this run's profile), and the byte floor of the two memory-bound kinds at
    COPY_TB_S (each tensor read or written once: attention reads q|k|v and writes its output,
    bf16; each of the two residual + LayerNorm kernels per layer reads the fp32 residual and a
    bf16 matmul output and writes both again)."""
    tokens, (d, layers) = result["budget_tokens"], (cfg.hidden_size, cfg.num_layers)
    now = tokens / result["workloads"][workload][candidate]["tokens_per_s"]
    share = result["profile"][candidate]["kernel_share"]
    floors = {"attention": 8 * tokens * d * layers, "residual+layernorm": 24 * tokens * d * layers}
    kinds = {k: {"seconds": share.get(k, 0.0) * now, "byte_floor_seconds": b / COPY_TB_S / 1e12}
             for k, b in floors.items()}  # fmt: skip
    headroom = sum(max(v["seconds"] - v["byte_floor_seconds"], 0.0) for v in kinds.values())
    return {
        "goal_tokens_per_s": goal, "tokens_per_s": tokens / now, "batch_tokens": tokens,
        "seconds_per_batch": now, "seconds_per_batch_at_goal": tokens / goal,
        "cut_needed_seconds": now - tokens / goal, "kernel_seconds_by_kind": {k: v * now for k, v in share.items()},
        "memory_bound_kinds": kinds, "headroom_to_byte_floors_seconds": headroom,
        "tokens_per_s_if_both_at_byte_floor": tokens / (now - headroom),
        "gemm_only_ceiling_tokens_per_s": result["gemm_ceiling"]["tokens_per_s"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--variants", nargs="+", default=["eager", "compiled-varlen", "compiled-triton-attn"], choices=list(VARIANTS)
    )
    parser.add_argument("--budget", type=int, default=65_536)
    parser.add_argument("--batches", type=int, default=4, help="batches of --budget tokens per workload")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", choices=["full", "tiny"], default="full", help="model written if --model is empty")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--attention-sweep", action="store_true", help="time the Triton kernel's tile configs")
    parser.add_argument("--fp8-probe", action="store_true", help="FP8 matmul accuracy and GEMM speed")
    parser.add_argument("--skip-workloads", action="store_true", help="only the sweep/probe (no baseline)")
    args = parser.parse_args()
    global DEVICE, DTYPE
    DEVICE, DTYPE = args.device, torch.bfloat16 if args.device == "cuda" else torch.float32
    if not (args.model / "config.json").is_file():
        from virnucpro.devtools.random_esm2 import write_random_esm2

        t0 = time.perf_counter()
        write_random_esm2(args.model, size=args.size, seed=0)
        print(f"wrote random {args.size} ESM-2 in {time.perf_counter() - t0:.0f} s", flush=True)
    result = {
        "gpu": torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu", "torch": torch.__version__,
        "commit": os.environ.get("GIT_COMMIT", "unknown"), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "budget_tokens": args.budget, "workloads": {}, "notes": "random weights, full esm2_t36_3B_UR50D shapes",
    }  # fmt: skip

    def save():
        args.out.write_text(json.dumps(result, indent=1) + "\n")

    if args.attention_sweep or args.fp8_probe:
        from virnucpro.models.esm2 import ESM2Config

        raw = json.loads((args.model / "config.json").read_text())
        cfg = ESM2Config(raw["num_hidden_layers"], raw["hidden_size"], raw["num_attention_heads"], raw["intermediate_size"])
        if args.attention_sweep:
            result["attention_sweep"] = attention_sweep(cfg, args.budget)
            save()
        if args.fp8_probe:
            probe_seqs = proteins(48, 50, 256, 1) + proteins(95, 100, 128, 2)
            result["fp8_probe"] = fp8_probe(args.model, probe_seqs)
            save()
    if args.skip_workloads:
        return
    candidates = {"baseline": Baseline(args.model, args.budget)}
    for variant in args.variants:
        candidates[f"ours-{variant}"] = Ours(args.model, variant, args.budget)
    cfg = candidates[f"ours-{args.variants[0]}"].model.cfg
    result["attention_backend_at_51_tokens"] = {
        v: candidates[f"ours-{v}"].model.attention_backend(mean_tokens=51) for v in args.variants
    }
    result["gelu_epilogue"] = {v: candidates[f"ours-{v}"].model.gelu_epilogue for v in args.variants}
    result["params"] = params = cfg.num_parameters()
    result["gemm_ceiling"] = gemm_ceiling(cfg, args.budget)
    result["gemm_ceiling_2x_budget"] = gemm_ceiling(cfg, 2 * args.budget)
    print(f"GEMM-only ceiling: {result['gemm_ceiling']}", flush=True)
    save()
    for name, (lo, hi) in WORKLOADS.items():
        count = args.batches * args.budget // (hi + 2)
        print(f"{name}: {count} proteins", flush=True)
        result["workloads"][name] = bench_workload(candidates, proteins(lo, hi, count, seed=lo), args.repeats, params)
        result["summary"] = summary(result)
        save()
    acc_seqs = proteins(48, 50, 256, 1) + proteins(95, 100, 256, 2) + proteins(160, 166, 128, 4) + proteins(300, 1000, 8, 3)
    result["cosine_vs_fp32"] = accuracy(args.model, candidates, acc_seqs)
    save()
    profiled = [f"ours-{v}" for v in args.variants if VARIANTS[v]["fast"]] or [f"ours-{args.variants[-1]}"]
    batch = candidates[profiled[0]].batches(proteins(48, 50, args.budget // 51, 9))[0]
    result["profile"] = {name: kernel_profile(candidates[name], batch) for name in profiled}
    print(json.dumps({n: p["kernel_share"] for n, p in result["profile"].items()}, indent=1), flush=True)
    if "ours-compiled" in result["profile"] and DEVICE == "cuda":
        result["gap_to_110k"] = gap_to_goal(result, cfg)
        print(f"gap to 110k: {result['gap_to_110k']}", flush=True)
    save()


if __name__ == "__main__":
    main()
