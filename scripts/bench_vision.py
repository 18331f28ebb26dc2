#!/usr/bin/env python3
"""Vision tower alone: ms/page of Gemma 4's own get_image_features vs docpipe's trimmed runner (gemma_vision).

Why apart from bench_gemma.py: prefill is dominated by the vision tower, and this isolates it in seconds of GPU
time. Only the vision tower + ``embed_vision`` of the chosen checkpoint are built (real shapes, random bf16
weights). Pages are A4-shaped noise images rendered at the budget and run through the Gemma 4 image processor (at
1120 tokens: 9,828 real + 252 padding patches a page), or ``--pages samples``: pages of samples/ (mixed sizes).

Variants (``--variants``, each at every ``--chunk``: one call over ``chunk`` pages, ms/page = call time / chunk):
  baseline         the model's get_image_features with its padding mask (what docpipe ran before gemma_vision)
  trimmed          gemma_vision without padding and mask, SDPA's own backend choice
  compile          trimmed + torch.compile'd encoder layers, dynamic page/patch dims ("compile-static": per shape)
  X+B              any of them with SDPA pinned to backend B (flash | efficient | cudnn | math)
``--backends`` adds trimmed+B for each B at the smallest chunk (one page of 10k patches fills the GPU, so the
backend comparison needs no chunk sweep). Times are CUDA-event medians of ``--reps`` calls after ``--warmup``;
"first s" is the first call's wall time (includes compiling); TFLOP/s counts the FLOPs of the real patches only
(linear layers + attention + embed_vision), so it is comparable across variants; rel err is ||x - baseline|| /
||baseline|| of all soft tokens.

    python scripts/bench_vision.py --model 26b-a4b                      # ~2-3 min on an H100
    python scripts/bench_vision.py --model 26b-a4b --variants trimmed --chunk 16 --backends --profile trimmed
    python scripts/bench_vision.py --smoke                              # CPU check of this script, tiny config
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_gemma import ARCH  # noqa: E402

SMOKE_VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                    num_key_value_heads=2, head_dim=32, global_head_dim=32, pooling_kernel_size=3,
                    position_embedding_size=256, standardize=True)


def build(key: str, smoke: bool, device: str, dtype: Any) -> Any:
    """A module with ``vision_tower``, ``embed_vision``, ``config`` and Gemma4Model's own get_image_features."""
    import torch
    from transformers import Gemma4Config, Gemma4TextConfig, Gemma4VisionConfig
    from transformers.models.gemma4.modeling_gemma4 import Gemma4Model, Gemma4MultimodalEmbedder, Gemma4VisionModel

    text_kw, vision_kw, _ = ARCH[key]
    vision = Gemma4VisionConfig(**(SMOKE_VISION if smoke else vision_kw))
    text = Gemma4TextConfig(hidden_size=64 if smoke else text_kw["hidden_size"])
    cfg = Gemma4Config(text_config=text, vision_config=vision, audio_config=None)

    class VisionOnly(torch.nn.Module):
        get_image_features = Gemma4Model.get_image_features

        def __init__(self) -> None:
            super().__init__()
            self.config = cfg
            self.vision_tower = Gemma4VisionModel._from_config(vision, attn_implementation="sdpa", dtype=dtype)
            self.embed_vision = Gemma4MultimodalEmbedder(vision, text).to(dtype)

    torch.manual_seed(0)
    with torch.device(device):
        m = VisionOnly().eval()  # float32 buffers (RoPE frequencies) stay float32, as in a loaded checkpoint
    vt = m.vision_tower
    if vision.standardize:  # non-trivial statistics, so the standardize step is exercised
        vt.std_bias.normal_(0, 0.1)
        vt.std_scale.uniform_(0.9, 1.1)
    assert vt.config._attn_implementation == "sdpa", vt.config._attn_implementation
    return m


def page_images(kind: str, image_tokens: int, n: int) -> list:
    """n PIL pages rendered at the budget's pixels: A4-shaped noise, or samples/ pages (mixed sizes)."""
    import numpy as np
    from PIL import Image

    from docpipe.engines.vlm.prompting import render_spec_for_tokens

    spec = render_spec_for_tokens(image_tokens)
    if kind == "a4":
        z = spec.zoom_for(595.28, 841.89)
        w, h = math.ceil(595.28 * z), math.ceil(841.89 * z)
        rng = np.random.default_rng(0)
        return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(n)]
    from docpipe.discover import discover
    from docpipe.rasterize import open_document

    out: list = []
    srcs = sorted((s for s in discover([ROOT / "samples"]) if getattr(s, "kind", "") in ("pdf", "image")),
                  key=lambda s: str(s.path))
    while len(out) < n:
        for s in srcs:
            with open_document(s) as doc:
                out += [p.render(spec) for p in doc.pages()]
    return out[:n]


def vision_flops(vc: Any, text_hidden: int, patches: int) -> float:
    """Matmul FLOPs of one page with ``patches`` real patches: patch embedding, q/k/v/o, MLP, attention (QK^T and
    PV), embed_vision."""
    h, i, nh, nkv, hd = vc.hidden_size, vc.intermediate_size, vc.num_attention_heads, vc.num_key_value_heads, \
        vc.head_dim
    per_token = 2 * h * (2 * nh * hd + 2 * nkv * hd) + 2 * 3 * h * i
    layers = vc.num_hidden_layers * (patches * per_token + 4 * patches * patches * nh * hd)
    tokens = patches // vc.pooling_kernel_size ** 2
    return 2 * patches * 3 * vc.patch_size ** 2 * h + layers + 2 * tokens * h * text_hidden


def sdpa_choice(vc: Any, patches: int, padded: int, device: str, dtype: Any) -> str:
    """The backends SDPA picks for one page's attention, without mask (trimmed) and with the padding mask."""
    import torch
    from torch.nn.attention import SDPBackend

    try:
        q = torch.randn(1, vc.num_attention_heads, patches, vc.head_dim, device=device, dtype=dtype)
        free = SDPBackend(torch._fused_sdp_choice(q, q, q)).name
        qp = torch.randn(1, vc.num_attention_heads, padded, vc.head_dim, device=device, dtype=dtype)
        mask = torch.ones(1, 1, padded, padded, dtype=torch.bool, device=device)
        masked = SDPBackend(torch._fused_sdp_choice(qp, qp, qp, attn_mask=mask)).name
        return f"SDPA picks {free} without mask, {masked} with the padding mask"
    except Exception as e:  # a private API: report, don't fail
        return f"SDPA choice unknown ({type(e).__name__})"


class Timer:
    def __init__(self, device: str) -> None:
        self.cuda = device == "cuda"

    def sync(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()

    def __call__(self, fn: Callable[[], Any], warmup: int, reps: int) -> tuple[float, float, Any]:
        """(median ms, first call s, first output)."""
        import torch

        self.sync()
        t = time.perf_counter()
        out = fn()
        self.sync()
        first = time.perf_counter() - t
        for _ in range(warmup - 1):
            fn()
        times = []
        for _ in range(reps):
            if self.cuda:
                ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
                ev[0].record()
                fn()
                ev[1].record()
                torch.cuda.synchronize()
                times.append(ev[0].elapsed_time(ev[1]))
            else:
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e3)
        return statistics.median(times), first, out


def variant_fn(name: str, model: Any, chunk: int, compile_backend: str) -> Callable[[Any, Any], Any]:
    """The callable a variant name stands for (see the module doc)."""
    from docpipe.engines.gemma.kernels.vision import VisionRunner, image_features, sdpa_context

    kind, _, backend = name.partition("+")
    if kind == "baseline":
        def base(pv: Any, pos: Any) -> Any:
            with sdpa_context(backend or None):
                return model.get_image_features(pv, pos, return_dict=True)
        return base
    modes = {"trimmed": False, "compile": "dynamic", "compile-static": "static"}
    if kind not in modes:
        raise SystemExit(f"unknown variant {name!r}")
    runner = VisionRunner(model, chunk, modes[kind], backend or None, compile_backend=compile_backend)
    return lambda pv, pos: image_features(runner, pv, pos)


def top_kernels(fn: Callable[[], Any], device: str, n: int = 15) -> str:
    """The n kernels (CPU: ops) with the most self time over one call."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        fn()
        Timer(device).sync()
    want = DeviceType.CUDA if cuda else DeviceType.CPU
    events = [e for e in prof.key_averages() if e.device_type == want]
    t = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    total = sum(t(e) for e in events) or 1
    lines = [f"{'ms':>9} {'share':>6} {'calls':>6}  kernel"]
    for e in sorted(events, key=t, reverse=True)[:n]:
        lines.append(f"{t(e) / 1e3:9.2f} {t(e) / total:6.1%} {e.count:6d}  {e.key[:110]}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="26b-a4b", choices=sorted(ARCH))
    ap.add_argument("--image-tokens", type=int, default=1120)
    ap.add_argument("--chunk", type=int, nargs="+", help="pages per vision-tower call (default 4 8 16; smoke 2 3)")
    ap.add_argument("--variants", nargs="+", default=["baseline", "trimmed", "compile"])
    ap.add_argument("--backends", nargs="*", default=None,
                    help="trimmed+B for each, at the smallest chunk (default flash efficient cudnn; on a CPU "
                         "math flash; none: --backends with no value)")
    ap.add_argument("--pages", choices=["a4", "samples"], default="a4")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; smoke: eager)")
    ap.add_argument("--profile", metavar="VARIANT", help="also print the top 15 kernels of one call of VARIANT")
    ap.add_argument("--smoke", action="store_true", help="tiny config, 70 tokens, CPU if no GPU: checks the script")
    a = ap.parse_args()
    import torch
    import transformers
    from transformers import Gemma4ImageProcessorPil

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.smoke:
        a.image_tokens, a.reps = 70, min(a.reps, 2)
    a.chunk = a.chunk or ([2, 3] if a.smoke else [4, 8, 16])
    if a.backends is None:
        a.backends = ["flash", "efficient", "cudnn"] if device == "cuda" else ["math", "flash"]
    compile_backend = a.compile_backend or ("eager" if a.smoke and device == "cpu" else "inductor")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.set_grad_enabled(False)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    t0 = time.perf_counter()
    model = build(a.model, a.smoke, device, dtype)
    vc = model.config.vision_config
    n_pages = max(a.chunk)
    proc = Gemma4ImageProcessorPil(max_soft_tokens=a.image_tokens, patch_size=vc.patch_size,
                                   pooling_kernel_size=vc.pooling_kernel_size)
    enc = proc(page_images(a.pages, a.image_tokens, n_pages), return_tensors="pt", max_soft_tokens=a.image_tokens)
    pv = enc["pixel_values"].to(device, dtype)
    pos = enc["image_position_ids"].to(device)
    real = (pos != -1).all(-1).sum(-1).tolist()
    text_hidden = model.config.text_config.hidden_size
    flops = [vision_flops(vc, text_hidden, n) for n in real]
    head = [f"device: {name}; torch {torch.__version__}; transformers {transformers.__version__}; {dtype}",
            f"model: {'smoke' if a.smoke else a.model} vision tower ({vc.num_hidden_layers} layers, hidden "
            f"{vc.hidden_size}, {vc.num_attention_heads} heads x {vc.head_dim}); {a.image_tokens} image tokens; "
            f"pages: {a.pages}, real patches {sorted(set(real))} of {pos.shape[1]}; "
            f"{sum(flops) / len(flops) / 1e12:.3f} TFLOP a page; compile backend {compile_backend}",
            sdpa_choice(vc, real[0], pos.shape[1], device, dtype),
            f"setup {time.perf_counter() - t0:.0f} s"]
    print("\n".join(head), flush=True)
    timer = Timer(device)
    plan = [(v, c) for v in a.variants for c in a.chunk] + [(f"trimmed+{b}", min(a.chunk)) for b in a.backends]
    refs: dict[int, Any] = {}
    base_ms: dict[int, float] = {}
    rows = []
    traced = None
    for v, c in plan:
        if v.startswith("compile") and v != traced:  # a new compiled variant traces afresh (its SDPA setting);
            torch._dynamo.reset()  # the same one keeps its graphs across chunk sizes, as in a run
            traced = v
        fn = variant_fn(v, model, c, compile_backend)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        try:
            ms, first, out = timer(lambda: fn(pv[:c], pos[:c]), a.warmup, a.reps)
        except Exception as e:  # e.g. a backend that cannot run these shapes: report and go on
            rows.append(f"| {v} | {c} | failed: {type(e).__name__}: {str(e).splitlines()[0][:80]} |")
            print(rows[-1], flush=True)
            continue
        feats = torch.cat(out.pooler_output).float()
        if v == "baseline":
            refs[c], base_ms[c] = feats, ms
        err = f"{((feats - refs[c]).norm() / refs[c].norm()).item():.1e}" if c in refs else "-"
        vs = f"{base_ms[c] / ms:.2f}x" if c in base_ms else "-"
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0
        tflops = sum(flops[:c]) / (ms / 1e3) / 1e12
        rows.append(f"| {v} | {c} | {ms / c:.1f} | {tflops:.3g} | {vs} | {err} | {first:.1f} | {peak:.1f} |")
        print(rows[-1], flush=True)
        del out, feats
    table = ["| variant | chunk | ms/page | TFLOP/s | vs baseline | rel err | first s | peak GiB |",
             "|---|---|---|---|---|---|---|---|", *rows]
    text = "\n".join(head + [""] + table)
    if a.profile:
        c = max(a.chunk)
        if a.profile.startswith("compile") and a.profile != traced:
            torch._dynamo.reset()
        fn = variant_fn(a.profile, model, c, compile_backend)
        fn(pv[:c], pos[:c])  # warm (and compile)
        prof = top_kernels(lambda: fn(pv[:c], pos[:c]), device)
        text += f"\n\ntop kernels, {a.profile}, chunk {c}:\n{prof}"
    print("\n" + text, flush=True)
    if os.environ.get("OUT"):
        out_dir = Path(os.environ["OUT"])
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench_vision.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
