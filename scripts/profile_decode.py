#!/usr/bin/env python3
"""Where a Gemma 4 decode step's GPU time goes, in docpipe's decode loop (gemma_generate.Decoder).

For a checkpoint's real architecture with random bf16 weights (as bench_gemma.py builds it), a text-only batch of
``--prompt`` tokens a row (a decode step's cost depends on the cache lengths, not on whether the prompt held image
tokens), per decode-attention variant:
- graph step: ms per decode step with the step replayed as a CUDA graph (what the engine runs), from two timed
  runs (1 and 1 + ``--steps`` new tokens);
- kernels: the top CUDA kernels of ``--profile-steps`` eager steps (torch.profiler; the difference between a run
  with those steps and a prefill-only run, so prefill kernels cancel out), per step.

    python scripts/profile_decode.py --model e4b --batch 32 --prompt 1750 --attention sdpa docpipe
    python scripts/profile_decode.py --model e4b --batch 128 --prompt 1300 --attention docpipe:sdpa docpipe:matmul
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))


def kernel_times(fn) -> dict[str, float]:
    """{CUDA kernel name: total ms} over one call of fn."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    out: dict[str, float] = defaultdict(float)
    for e in prof.events():
        if e.device_type.name == "CUDA":
            out[e.name] += e.device_time / 1000 if hasattr(e, "device_time") else e.cuda_time / 1000
            out["#kernels"] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="e4b")
    ap.add_argument("--batch", type=int, nargs="+", default=[32])
    ap.add_argument("--prompt", type=int, default=1750)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--profile-steps", type=int, default=8)
    ap.add_argument("--attention", nargs="+", default=["sdpa", "docpipe"],
                    help="sdpa: transformers' attention; docpipe: the grouped decode attention, its kernel chosen "
                         "by 'auto'; docpipe:KERNEL pins it (gemma_generate.DECODE_KERNELS)")
    ap.add_argument("--top", type=int, default=18)
    ap.add_argument("--compile", action="store_true", help="also each variant with the compiled step")
    ap.add_argument("--no-fusion", action="store_true", help="leave out the engine's fused text modules "
                    "(gemma_fusion, the engine's text_compile, on by default)")
    a = ap.parse_args()

    import torch
    from bench_gemma import _checkout_schemas, build

    from docpipe.engines.gemma.kernels.generate import Decoder
    from docpipe.engines.gemma.kernels.moe import install

    _checkout_schemas()
    model, proc = build(a.model, "grouped_mm")
    install(model)
    if not a.no_fusion:  # as the engine runs on CUDA (text_compile); without it the step is ~1.8x slower (E4B)
        from docpipe.engines.gemma.kernels.fusion import install as install_fusion

        install_fusion(model)
    torch.set_grad_enabled(False)
    pad = proc.tokenizer.pad_token_id
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; model {a.model}; "
          f"prompt {a.prompt} tokens; {a.steps} timed steps; fused text modules {not a.no_fusion}", flush=True)
    for b in a.batch:
        ids = torch.randint(1000, 200_000, (b, a.prompt), device="cuda")
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        for att, comp in [(x, c) for x in a.attention for c in ([False, True] if a.compile else [False])]:
            kind, _, kernel = att.partition(":")
            dec = Decoder(model, graphs=True, attention=kind, compile=comp, decode_kernel=kernel or "auto")

            def run(n: int) -> float:
                torch.cuda.synchronize()
                t = time.perf_counter()
                dec.generate(inputs, n, None, pad)
                torch.cuda.synchronize()
                return time.perf_counter() - t

            t0 = time.perf_counter()
            run(3)  # warm-up (and compile)
            warm = time.perf_counter() - t0
            t1, tn = min(run(1) for _ in range(2)), min(run(1 + a.steps) for _ in range(2))
            step_ms = 1000 * (tn - t1) / a.steps
            print(f"\nbatch {b}, attention {att}, compiled {comp}: graph step {step_ms:.2f} ms "
                  f"({b / step_ms * 1000:.0f} tokens/s), prefill-only run {t1 * 1000:.0f} ms, first run "
                  f"{warm:.1f} s", flush=True)
            eager = Decoder(model, graphs=False, attention=kind, compile=comp, decode_kernel=kernel or "auto")
            base = kernel_times(lambda: eager.generate(inputs, 1, None, pad))
            full = kernel_times(lambda: eager.generate(inputs, 1 + a.profile_steps, None, pad))
            per = {k: (full[k] - base.get(k, 0.0)) / a.profile_steps for k in full}
            launches = per.pop("#kernels", 0)
            total = sum(v for v in per.values() if v > 0)
            print(f"eager step: {total:.2f} ms of kernel time and {launches:.0f} kernels a step; "
                  "top kernels (ms a step):")
            for k, v in sorted(per.items(), key=lambda kv: -kv[1])[: a.top]:
                print(f"  {v:7.3f}  {100 * v / total:5.1f}%  {k[:110]}")
            dec = eager = None
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
