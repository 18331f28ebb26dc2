#!/usr/bin/env python3
"""One decode step's attention alone, at the shapes of each Gemma 4 checkpoint: which kernel reads the cache fastest.

Why apart from bench_gemma.py: a decode step's attention reads every row's cached keys and values once; that is
memory-bound work whose floor is bytes / copy rate. The profile of a whole step (profile_decode.py) showed the
512-wide global heads in PyTorch's memory-efficient SDPA kernel at ~4x that floor. This times the candidates in
seconds, without building a model:

  sdpa     SDPA over the grouped queries, (batch, kv heads, group, dim), with a boolean mask: what
           ``gemma_generate.decode_attention`` runs by default
  matmul   gemma_generate.grouped_matmul_attention: scores = q @ K^T (one batched GEMM, float32 out), masked
           softmax, @ V (a second GEMM): each key and value read once by cuBLAS
  matmul-bf16  the same with the scores rounded to bf16 by the first GEMM (for comparison)
  mmsplitN matmul with the P @ V GEMM split along the keys into N GEMMs, summed in float32 (CUDA: bmm out_dtype)
  fp8      kernels/kv_fp8.attention: keys and values cached in fp8 (e4m3), one Triton kernel that reads each
           byte once (``kv_cache="fp8"``); fp8-bn32 / fp8-w8: 32-slot tiles / 8 warps for the 256-wide heads.
           Its max diff includes the rounding of keys and values to fp8
  flex     compiled flex attention (its decoding kernel splits the keys across blocks), GQA, the boolean mask as a
           BlockMask (gemma_flex.block_mask); compiles once per shape

(Flash decoding with stock kernels, each row's keys cut into chunks run as extra heads of the memory-efficient or
cuDNN op and merged by log-sum-exp, was timed here too and dropped with its engine setting: 2x slower than SDPA at
31B's 11-16 rows; docs/history/benchmarks-2026-11.md, seventh round.)

Shapes: per model and layer type, (kv heads, query heads per kv head, head dim, cached positions): the full layers
hold the prompt + half the answer, the sliding ones their window. Times are CUDA-event medians; GB/s counts the
keys and values read (what bounds the step).

    python scripts/bench_decode_attention.py --batch 11 72 128 --context 1400
    python scripts/bench_decode_attention.py --smoke        # CPU check of this script
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_gemma import ARCH  # noqa: E402


def shapes(model: str, context: int) -> list[tuple[str, int, int, int, int]]:
    """(layer type, kv heads, group, head dim, cached positions) of a checkpoint's two kinds of layer."""
    kw = ARCH[model][0]  # Gemma4TextConfig's defaults for what a checkpoint does not set
    hq, hkv = kw["num_attention_heads"], kw["num_key_value_heads"]
    kv_full = (kw.get("num_global_key_value_heads") if kw.get("attention_k_eq_v") else None) or hkv
    return [("sliding", hkv, hq // hkv, kw.get("head_dim", 256), min(context, kw.get("sliding_window", 512))),
            ("full", kv_full, hq // kv_full, kw.get("global_head_dim", 512), context)]


def variants() -> dict:
    import torch
    import torch.nn.functional as F

    from docpipe.engines.gemma.kernels.generate import grouped_matmul_attention

    def sdpa(q, k, v, mask, scale):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)

    def matmul_bf16(q, k, v, mask, scale):  # scores rounded to bf16 by the GEMM (SDPA's math backend does this)
        s = torch.matmul(q, k.transpose(-1, -2)).float() * scale
        p = s.masked_fill_(~mask, float("-inf")).softmax(-1).to(v.dtype)
        return torch.matmul(p, v)

    def matmul_split(parts: int):
        """matmul with the P @ V GEMM split along the keys into ``parts`` GEMMs summed in float32 (its reduction
        over 1-2k keys otherwise runs in few blocks at small batch; the softmax is global, so the sum is exact)."""
        def fn(q, k, v, mask, scale):
            b, h, g, d = q.shape
            n = k.shape[2]
            f32 = {"out_dtype": torch.float32} if q.is_cuda else {}
            s = torch.bmm(q.reshape(b * h, g, d), k.reshape(b * h, n, d).transpose(1, 2), **f32).float()
            p = s.view(b, h, g, n).mul_(scale).masked_fill_(~mask, float("-inf")).softmax(-1).to(v.dtype)
            pc = p.view(b * h, g, parts, n // parts).transpose(1, 2).reshape(b * h * parts, g, n // parts)
            o = torch.bmm(pc, v.reshape(b * h * parts, n // parts, d), **f32).float()
            return o.view(b, h, parts, g, d).sum(2).to(v.dtype)
        return fn

    masks: dict = {}

    def flex(q, k, v, mask, scale):  # flex's decoding kernel (splits the keys), GQA, the mask as a BlockMask
        from docpipe.engines.gemma.kernels.flex import _flex, block_mask

        b, h, g, d = q.shape
        if masks.get("of") is not mask:
            masks.update({"of": mask, "bm": block_mask(mask)})
        out = _flex(q.device.type, q.is_cuda)(q.reshape(b, h * g, 1, d), k, v, block_mask=masks["bm"], scale=scale,
                                              enable_gqa=True)
        return out.view(b, h, g, d)

    def fp8(block: int | None = None, warps: int | None = None):
        """kv_fp8.attention over fp8 keys and values, with the 256-wide heads' tile or warps changed for the call."""
        from docpipe.engines.gemma.kernels import kv_fp8

        def fn(q, k, v, mask, scale):
            saved = kv_fp8.BLOCK_N[256], kv_fp8.NUM_WARPS[256]
            kv_fp8.BLOCK_N[256], kv_fp8.NUM_WARPS[256] = block or saved[0], warps or saved[1]
            try:
                return kv_fp8.attention(q, k, v, mask, scale)
            finally:
                kv_fp8.BLOCK_N[256], kv_fp8.NUM_WARPS[256] = saved
        return fn

    return {"sdpa": sdpa, "matmul": grouped_matmul_attention, "matmul-bf16": matmul_bf16, "flex": flex,
            "mmsplit2": matmul_split(2), "mmsplit4": matmul_split(4), "mmsplit8": matmul_split(8),
            "fp8": fp8(), "fp8-bn32": fp8(32), "fp8-w8": fp8(None, 8)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["e4b", "26b-a4b", "31b"], choices=sorted(ARCH))
    ap.add_argument("--batch", type=int, nargs="+", default=[11, 72, 128])
    ap.add_argument("--context", type=int, default=1400, help="positions a full layer's cache holds")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--variants", nargs="+", help="only these (default: all)")
    ap.add_argument("--smoke", action="store_true", help="CPU, float32, 2 reps: checks the script, times nothing")
    a = ap.parse_args()

    import torch

    dev = "cpu" if a.smoke else "cuda"
    dtype = torch.float32 if a.smoke else torch.bfloat16
    if a.smoke:
        a.batch, a.reps, a.context = [2], 2, 128
    fns = {k: f for k, f in variants().items() if not a.variants or k in a.variants}
    print(f"variants: {', '.join(fns)}")

    def timed(fn) -> float:
        if dev == "cpu":
            fn()
            return float("nan")
        fn()
        torch.cuda.synchronize()
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2 * a.reps)]
        for i in range(a.reps):
            ev[2 * i].record()
            fn()
            ev[2 * i + 1].record()
        torch.cuda.synchronize()
        ts = sorted(ev[2 * i].elapsed_time(ev[2 * i + 1]) for i in range(a.reps))
        return ts[len(ts) // 2] * 1e3  # µs

    card = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    print(f"device: {card}; torch {torch.__version__}; context {a.context}")
    print("\n| model | layer | batch | kv heads x group x dim | positions | MB read | "
          + " | ".join(f"{n} µs (GB/s; max diff)" for n in fns) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(fns))
    for model in a.models:
        for kind, hkv, g, d, n in shapes(model, a.context):
            for b in a.batch:
                torch.manual_seed(0)
                q = torch.randn(b, hkv, g, d, device=dev, dtype=dtype)
                k = torch.randn(b, hkv, n, d, device=dev, dtype=dtype)
                v = torch.randn(b, hkv, n, d, device=dev, dtype=dtype)
                mask = torch.rand(b, 1, 1, n, device=dev) < 0.95  # padding and not-yet-written slots
                mask[..., 0] = True
                scale = d ** -0.5
                mb = 2 * k.numel() * k.element_size() / 1e6
                ref = variants()["sdpa"](q.float(), k.float(), v.float(), mask, scale)
                k8 = v8 = None
                if any(name.startswith("fp8") for name in fns):
                    from docpipe.engines.gemma.kernels.kv_fp8 import to_fp8

                    k8, v8 = to_fp8(k), to_fp8(v)
                cells = []
                for name, fn in fns.items():
                    kv, read = ((k8, v8), mb / 2) if name.startswith("fp8") else ((k, v), mb)
                    try:
                        us = timed(lambda fn=fn, kv=kv: fn(q, *kv, mask, scale))
                        diff = (fn(q, *kv, mask, scale).float() - ref).abs().max().item()
                    except Exception as e:  # e.g. a flex kernel that does not fit the card's shared memory
                        cells.append(f"failed: {type(e).__name__}")
                        print(f"{name}: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
                        continue
                    cells.append(f"{us:.0f} ({read / us * 1e3:.0f}; {diff:.0e})" if us == us else f"- ({diff:.0e})")
                print(f"| {model} | {kind} | {b} | {hkv} x {g} x {d} | {n} | {mb:.0f} | " + " | ".join(cells)
                      + " |", flush=True)
                q = k = v = k8 = v8 = ref = None  # free before the next shape


if __name__ == "__main__":
    main()
