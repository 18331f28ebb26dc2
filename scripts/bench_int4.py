#!/usr/bin/env python3
"""int4 products alone, at the checkpoints' shapes: kernels/int4_mm.py's Triton kernels (they read the packed
weights) against turning the weight back into bf16 and one GEMM (cuBLAS; a grouped GEMM for experts).

Why apart from bench_gemma.py: it times one layer's products in seconds without building a model, at each row
count, so the rows where Int4Linear switches to the bf16 path (``BF16_FROM_ROWS["int4_linear"]``) can be read off.
Experts: 26B-A4B's two expert weights at a decode step's tokens (8 experts each, routed uniformly at random like a
random-weight model's router). Linear: 31B's MLP and 26B-A4B's attention widths at 1 to 1,024 rows. GB/s counts the
int4 weights and scales read (experts: those that got rows); "err" is the largest difference from the bf16 path,
relative to its largest value.

    python scripts/bench_int4.py --tokens 9 72 256 --rows 1 9 64 256 512 1024
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: 26B-A4B: (name, experts, out, in) of the two expert weights
SHAPES = [("gate_up", 128, 2 * 704, 2816), ("down", 128, 2816, 704)]
#: (name, out, in) of Linear layers: 31B's MLP, 26B-A4B's query projection
LINEARS = [("31b up", 21504, 5376), ("31b down", 5376, 21504), ("26b-a4b q", 8192, 2816)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[9, 72, 256], help="decode rows (tokens) a step")
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--block-n", type=int, nargs="+", default=[64])
    ap.add_argument("--warps", type=int, nargs="+", default=[4])
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 9, 64, 256, 512, 1024], help="Linear rows")
    ap.add_argument("--per-sm", type=int, nargs="+", default=[0],
                    help="Linear: programs per multiprocessor the K split aims for (0: int4_mm.PROGRAMS_PER_SM)")
    a = ap.parse_args()
    import torch

    from docpipe.engines.gemma.kernels import int4_mm
    from docpipe.engines.gemma.kernels.moe import _grouped_mm
    from docpipe.engines.gemma.kernels.quantized import Int4Linear, _dequant_fn, quantize_3d

    dev = "cuda"
    print(f"card: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; host {platform.node()}", flush=True)

    def timed(fn, reps: int = 50) -> float:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2 * reps)]
        for i in range(reps):
            ev[2 * i].record()
            fn()
            ev[2 * i + 1].record()
        torch.cuda.synchronize()
        return sorted(ev[2 * i].elapsed_time(ev[2 * i + 1]) for i in range(reps))[reps // 2]

    print("| weight | tokens | routed rows | experts with rows | block n | warps | kernel ms | GB/s | "
          "bf16 path ms | speed-up | err |\n|---|---|---|---|---|---|---|---|---|---|---|")
    torch.manual_seed(0)
    for name, e, n, k in SHAPES:
        stored = quantize_3d(torch.randn(e, n, k, device=dev, dtype=torch.bfloat16), "int4")
        q, s = stored["q"], stored["s"]
        for tokens in a.tokens:
            idx = torch.stack([torch.randperm(e, device=dev)[:a.top_k] for _ in range(tokens)]).reshape(-1)
            counts = torch.bincount(idx, minlength=e)
            offs = torch.cumsum(counts, 0, dtype=torch.int32)
            x = torch.randn(idx.numel(), k, device=dev, dtype=torch.bfloat16)
            touched = int((counts > 0).sum())
            nbytes = touched * (q[0].numel() + s[0].numel() * s.element_size())

            def bf16_path():
                w = _dequant_fn("cuda")(q, s, "int4", torch.bfloat16)
                return _grouped_mm()(x, w.transpose(-2, -1), offs=offs)

            ref = bf16_path()
            base = timed(bf16_path)
            for bn in a.block_n:
                for warps in a.warps:
                    int4_mm.BLOCK_N, int4_mm.NUM_WARPS = bn, warps
                    got = int4_mm.int4_grouped_mm(x, q, s, offs)
                    err = float((got.float() - ref.float()).abs().max() / ref.float().abs().max())
                    ms = timed(lambda: int4_mm.int4_grouped_mm(x, q, s, offs))
                    print(f"| {name} | {tokens} | {idx.numel()} | {touched} | {bn} | {warps} | {ms:.3f} | "
                          f"{nbytes / ms / 1e6:.0f} | {base:.3f} | {base / ms:.1f}x | {err:.1e} |", flush=True)
    int4_mm.BLOCK_N, int4_mm.NUM_WARPS = 64, 4
    print("\n| Linear | rows | programs per SM | kernel ms | GB/s | bf16 path ms | speed-up | err |\n"
          "|---|---|---|---|---|---|---|---|")
    default_per_sm = int4_mm.PROGRAMS_PER_SM
    for name, n, k in LINEARS:
        layer = Int4Linear.of(torch.nn.Linear(k, n, bias=False, device=dev, dtype=torch.bfloat16))
        nbytes = layer.q.numel() + layer.s.numel() * 2
        for rows in a.rows:
            x = torch.randn(rows, k, device=dev, dtype=torch.bfloat16)

            def bf16_path():
                return torch.nn.functional.linear(x, int4_mm.dequantize(layer.q, layer.s, torch.bfloat16))

            ref = bf16_path().float()
            base = timed(bf16_path)
            for per_sm in a.per_sm:
                int4_mm.PROGRAMS_PER_SM = per_sm or default_per_sm
                got = int4_mm.int4_linear(x, layer.q, layer.s)
                err = float((got.float() - ref).abs().max() / ref.abs().max())
                ms = timed(lambda: int4_mm.int4_linear(x, layer.q, layer.s))
                print(f"| {name} | {rows} | {int4_mm.PROGRAMS_PER_SM} | {ms:.3f} | {nbytes / ms / 1e6:.0f} | "
                      f"{base:.3f} | {base / ms:.1f}x | {err:.1e} |", flush=True)


if __name__ == "__main__":
    main()
