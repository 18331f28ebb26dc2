#!/usr/bin/env python3
"""Where a Gemma 4 text prefill's GPU time goes, in docpipe's decode loop (gemma_generate.Decoder, 1 new token).

For a checkpoint's real architecture with random bf16 weights (as bench_gemma.py builds it), ``--rows`` text-only
rows of ``--prompt`` tokens (one prefill chunk of the engine: ``prefill_rows`` rows of a page's prompt length), per
variant (the experts' forward; the compiled text modules of gemma_fusion):
- ms a row (median of ``--reps`` timed prefills) against the matmul floor (2 x active parameters x tokens over the
  measured bf16 matmul rate);
- the kernels of one prefill grouped by kind (dense GEMM, experts' grouped GEMM, attention, elementwise, ...) and the
  top kernels by GPU time (torch.profiler).

    python scripts/profile_prefill.py --model 26b-a4b --rows 16 --prompt 1750 --variants index_add grouped grouped+fused
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

KINDS = [("experts grouped GEMM", ("GroupProblemShape", "GroupedGemm", "grouped", "Grouped")),
         ("attention", ("fmha", "sdpa", "flash", "attention", "Attention", "cudnn")),
         ("dense GEMM", ("gemm", "Gemm", "nvjet", "cutlass", "splitK", "sm90_xmma")),
         ("sort / index / scatter", ("sort", "Sort", "index", "scatter", "gather", "Index", "cumsum", "topk",
                                     "TopK")),
         ("copy / cast", ("copy", "Memcpy", "Memset", "cat", "fill")),
         ("elementwise / reduce", ("elementwise", "reduce", "triton", "softmax", "norm"))]


def kind_of(name: str) -> str:
    for kind, keys in KINDS:
        if any(k in name for k in keys):
            return kind
    return "other"


def index_add_forward(self, hidden_states, top_k_index, top_k_weights):
    """The experts' forward of the previous round (float32 index_add over routed rows), for comparison."""
    import torch

    from docpipe.engines.gemma.kernels.moe import _grouped_mm

    mm = _grouped_mm()
    n_tok, k = top_k_index.shape
    flat = top_k_index.reshape(-1)
    order = torch.argsort(flat, stable=True)
    counts = torch.zeros(self.num_experts, dtype=torch.long, device=flat.device).scatter_add_(
        0, flat, torch.ones_like(flat))
    offs = torch.cumsum(counts, 0, dtype=torch.int32)
    x = hidden_states[order // k].to(self.gate_up_proj.dtype)
    gate, up = mm(x, self.gate_up_proj.transpose(-2, -1), offs=offs).chunk(2, dim=-1)
    out = mm(self.act_fn(gate) * up, self.down_proj.transpose(-2, -1), offs=offs)
    out = out * top_k_weights.reshape(-1)[order].unsqueeze(-1).to(out.dtype)
    final = torch.zeros((n_tok, hidden_states.shape[-1]), dtype=torch.float32, device=hidden_states.device)
    final.index_add_(0, order // k, out.float())
    return final.to(hidden_states.dtype)


def set_variant(model, variant: str) -> None:
    """variant: experts forward ("grouped" | "index_add"), optionally "+fused" (gemma_fusion; stays installed)."""
    from docpipe.engines import gemma_fusion, gemma_moe

    experts, _, fused = variant.partition("+")
    if fused:
        gemma_fusion.install(model)
    fn = {"grouped": gemma_moe.grouped_experts_forward, "index_add": index_add_forward}[experts]
    for m in model.modules():
        if type(m).__name__ == "Gemma4TextExperts":
            m.forward = types.MethodType(fn, m)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="26b-a4b")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--prompt", type=int, default=1750)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=["grouped"],
                    help="experts forward: grouped, index_add; +fused: also gemma_fusion's compiled modules (stays "
                         "on for later variants, so put those last)")
    ap.add_argument("--top", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=0, help="the decoder's prefill_rows (0: all rows in one forward)")
    a = ap.parse_args()

    import torch
    from bench_gemma import _checkout_schemas, build, measure_card, param_groups
    from profile_decode import kernel_times

    from docpipe.engines.gemma.kernels.generate import Decoder
    from docpipe.engines.gemma.kernels.memory import kv_bytes_per_row

    _checkout_schemas()
    card = measure_card()
    model, proc = build(a.model, "grouped_mm")
    torch.set_grad_enabled(False)
    tc = model.config.get_text_config()
    g = param_groups(model)
    active = g["text"] + g["experts"] * ((tc.top_k_experts / tc.num_experts) if tc.enable_moe_block else 1.0)
    floor_ms = 2 * active * a.prompt / (card["bf16_TFLOPs"] * 1e12) * 1e3
    print(f"card {card['card']}: bf16 matmul {card['bf16_TFLOPs']:.0f} TFLOP/s, copy {card['copy_GBps']:.0f} GB/s; "
          f"torch {torch.__version__}; model {a.model}; {a.rows} rows x {a.prompt} tokens; active text params "
          f"{active / 1e9:.2f} B -> matmul floor {floor_ms:.1f} ms a row", flush=True)
    pad = proc.tokenizer.pad_token_id
    ids = torch.randint(1000, 200_000, (a.rows, a.prompt), device="cuda")
    mask = torch.ones_like(ids)
    mask[1::2, : a.prompt // 8] = 0  # left padding on half the rows, as a batch of unequal pages has
    inputs = {"input_ids": ids, "attention_mask": mask}
    summary = []
    for variant in a.variants:
        set_variant(model, variant)
        dec = Decoder(model, graphs=False, prefill_rows=a.chunk)
        t0 = time.perf_counter()
        dec.generate(inputs, 1, None, pad)  # warm-up (and compiling)
        dec.generate(inputs, 1, None, pad)
        warm_s = time.perf_counter() - t0

        def once() -> float:
            torch.cuda.synchronize()
            t = time.perf_counter()
            dec.generate(inputs, 1, None, pad)
            torch.cuda.synchronize()
            return time.perf_counter() - t

        ms = sorted(once() for _ in range(a.reps))[a.reps // 2] * 1e3 / a.rows
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        dec.generate(inputs, 1, None, pad)
        cache = kv_bytes_per_row(model, -(-(a.prompt + 1) // 64) * 64) * a.rows
        act_gib = (torch.cuda.max_memory_allocated() - base - cache) / 2**30
        per = a.chunk or a.rows
        kt = kernel_times(lambda: dec.generate(inputs, 1, None, pad))
        n = kt.pop("#kernels", 0)
        total = sum(kt.values())
        kinds: dict[str, float] = defaultdict(float)
        for k, v in kt.items():
            kinds[kind_of(k)] += v
        print(f"\n== {variant}: {ms:.1f} ms a row (floor {floor_ms:.1f}); kernel time {total / a.rows:.1f} ms "
              f"a row, {n:.0f} kernels; first two runs {warm_s:.1f} s; peak beside weights and cache "
              f"{act_gib:.2f} GiB ({act_gib / per:.3f} GiB a row of a {per}-row forward)", flush=True)
        for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]):
            print(f"  {v / a.rows:7.2f} ms a row  {100 * v / total:5.1f}%  {k}")
        print("  top kernels (ms a row):")
        for k, v in sorted(kt.items(), key=lambda kv: -kv[1])[: a.top]:
            print(f"  {v / a.rows:7.2f}  {100 * v / total:5.1f}%  [{kind_of(k)}] {k[:100]}")
        summary.append((variant, ms, total / a.rows, act_gib / per))
        torch.cuda.empty_cache()
    print("\n| model | rows x tokens | chunk | variant | ms a row | kernel ms a row | floor ms | activations GiB a row "
          "| card |\n|---|---|---|---|---|---|---|---|---|")
    for variant, ms, kms, gib in summary:
        print(f"| {a.model} | {a.rows} x {a.prompt} | {a.chunk or a.rows} | {variant} | {ms:.1f} | {kms:.1f} | "
              f"{floor_ms:.1f} | {gib:.3f} | {card['card']} |")


if __name__ == "__main__":
    main()
