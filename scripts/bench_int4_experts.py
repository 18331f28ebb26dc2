#!/usr/bin/env python3
"""One layer's int4 experts at 26B-A4B's shapes, at a decode step's rows: kernels/int4_mm.py's Triton kernel (reads
the packed weights) against turning the layer back into bf16 and a grouped GEMM (what every row count took before).

Why apart from bench_gemma.py: a decode step of 26B-A4B in int4 is two of these per layer, 30 layers; this times
them in seconds without building the model. GB/s counts the int4 weights and scales of the experts that got rows
(what bounds the step); "err" is the largest difference from the bf16 path, relative to its largest value.
Routing is uniform at random, 8 experts a token, like a random-weight model's router.

    python scripts/bench_int4_experts.py --tokens 9 72 256 --block-n 32 64 128
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[9, 72, 256], help="decode rows (tokens) a step")
    ap.add_argument("--top-k", type=int, default=8)
    ap.add_argument("--block-n", type=int, nargs="+", default=[64])
    ap.add_argument("--warps", type=int, nargs="+", default=[4])
    a = ap.parse_args()
    import torch

    from docpipe.engines.gemma.kernels import int4_mm
    from docpipe.engines.gemma.kernels.moe import _grouped_mm
    from docpipe.engines.gemma.kernels.quantized import _dequant_fn, quantize_3d

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


if __name__ == "__main__":
    main()
