#!/usr/bin/env python3
"""Does docpipe's fast path compute the same model as transformers, at full size on the GPU? And how far does each
--quantize mode move the answer?

For a checkpoint's real architecture with random bf16 weights (scripts/bench_gemma.py's configs), the same pages
from samples/ (one page a row, the extraction prompt, left-padded like a batch) go through:
1. transformers' own forward (eager modules, SDPA), before docpipe installs anything: the reference;
2. docpipe's engine (GemmaEngine.from_loaded: vision runner, fused norms/MLP/RoPE, grouped experts, flex prefill,
   the decode loop's prefill): its first-token logits, read by a logits processor through the public decode API;
3. the same after ``quantize_model`` in each mode (the model rebuilt from the same seed each time).
It prints, per row, the cosine of the float32 logits against the reference (bf16 must be >= 0.999), the relative L2
error and whether the top token agrees. ``--fp32-ref`` and ``--eager-experts-ref`` (MoE) add transformers against
itself, the floor no bf16 path can beat: on 26B-A4B a rounding difference flips routed experts, so its eager
experts land under the bar from its own grouped GEMM (docs/performance.md). Random weights: these are the
arithmetic's errors, not the model's quality.

``--condition`` (on by default) first gives the random weights tamer scales where transformers' initialisation
leaves ones (a harness choice, not a trained model's values): q_norm/k_norm weights of head_dim**-0.25 (attention
logits of unit variance instead of sqrt(head_dim), which makes every softmax one-hot) and the decoder layers'
post-norms 0.2 (each layer adds a fifth of the residual's scale instead of as much again). Without it the
full-size models amplify rounding so much that transformers' own bf16 and float32 forwards agree only to a cosine
of ~0.5, and no implementation can pass the bar (``--post-norm`` sets the second scale).

Whether the check could tell a wrong answer from a right one: pages share most of their prompt, so with random
weights their last-token logits are close (cosine 0.9998 between pages on E4B cut to 4 layers with post-norms of 1,
0.99997 with 0.1, where each layer adds little to the token's own embedding). The cosine between pages is printed
as a control, and each row's error against the distance from its reference to the nearest other page's ("vs
pages": below 1, the row is nearer its own page's answer than any other's).

``--kv-steps N`` also decodes N tokens with the fp8 KV cache (``kv_cache``), fed the bf16 cache's tokens, and
compares each step's logits with the bf16 cache's: what storing keys and values in one byte costs.

    python scripts/check_gemma_numerics.py --model 26b-a4b --pages 8 --modes none fp8 int8 int4
    python scripts/check_gemma_numerics.py --model 31b --pages 8 --modes none --steps 0 --kv-steps 16
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

#: cosine a bf16 row must reach against transformers' forward (issue 19)
BF16_MIN_COSINE = 0.999


def page_inputs(proc, n_pages: int, image_tokens: int, device: str, dtype):
    """(inputs for a forward, pages per row): one sample page a row, the engine's extraction prompt."""
    from bench_gemma import jobs_for

    from docpipe.engines.gemma.inputs import PromptBuilder, collate
    from docpipe.engines.vlm.prompting import SYSTEM_PROMPT, extraction_instructions
    from docpipe.rasterize import open_document
    from docpipe.schemas import resolve

    prompts = PromptBuilder(proc)
    spec = prompts.render_spec(image_tokens)
    schema = resolve("invoice")
    rows = []
    for job in jobs_for(n_pages):
        with open_document(job.source) as d:
            for page in d.pages():
                if len(rows) == n_pages:
                    break
                px = prompts.pixels(page.render(spec), image_tokens, dtype)
                instr = extraction_instructions(schema, [""], 1)  # page text off, as in bench_gemma
                msgs = [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
                        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instr}]}]
                rows.append((prompts.encode(msgs, [], [px]), [px]))
    rows.sort(key=lambda r: len(r[0]))
    return collate(rows, proc.tokenizer.pad_token_id, prompts.image_id, device, dtype), [1] * len(rows)


def reference_logits(model, inputs) -> Any:
    """transformers' forward, positions from the padding mask as generate() makes them."""
    import torch

    mask = inputs["attention_mask"]
    pos = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    with torch.no_grad():
        out = model(**inputs, position_ids=pos, use_cache=False, logits_to_keep=1)
    return out.logits[:, -1].float()


@contextmanager
def eager_experts(model):
    """transformers' eager experts (one expert at a time) for the block, then the implementation the model had."""
    before = getattr(model.config, "_experts_implementation", None) or "grouped_mm"
    model.set_experts_implementation("eager")
    try:
        yield
    finally:
        model.set_experts_implementation(before)


def reference_logits_fp32(model, inputs) -> Any:
    """``reference_logits`` of a model already in float32; if the experts' grouped GEMM has no float32 kernel on this
    card, through transformers' eager experts (the same arithmetic, one expert at a time)."""
    inputs32 = {k: v.float() if v.is_floating_point() else v for k, v in inputs.items()}
    try:
        return reference_logits(model, inputs32)
    except (RuntimeError, NotImplementedError) as e:
        if not hasattr(model, "set_experts_implementation"):
            raise
        print(f"float32 reference: {type(e).__name__}: {str(e)[:160]}; again with eager experts", flush=True)
        with eager_experts(model):
            return reference_logits(model, inputs32)


def docpipe_logits(model, proc, inputs, row_pages, image_tokens: int, steps: int,
                   settings: dict) -> tuple[Any, float]:
    """(first-token logits of docpipe's engine path (the decode loop's prefill), read through a logits processor;
    GPU ms of one decode step at these rows, from a second fixed-length run of ``steps`` tokens (0: not timed))."""
    from docpipe.engines import EngineOptions
    from docpipe.engines.gemma.engine import GemmaEngine

    eng = GemmaEngine.from_loaded(model, proc, EngineOptions(
        image_tokens=image_tokens, extra={"page_text": False, "grammar": False, **settings}))
    seen = []

    def capture(ids, scores):
        seen.append(scores.float().clone())
        return scores

    b = eng.backend
    b.decoder.generate(inputs, 1, b.stops, b.pad_id, processor=capture, row_pages=row_pages)
    step_ms = float("nan")
    if steps:  # the first run compiles; each run records its CUDA graph: the steps alone are two lengths' difference
        took = {}
        for n in (steps, steps, 2 * steps):
            b.decoder.clock.settle()
            b.decoder.generate(inputs, n, None, b.pad_id, row_pages=row_pages)
            took[n] = b.decoder.clock.settle().get("decode", 0.0)
        step_ms = 1e3 * (took[2 * steps] - took[steps]) / steps
    eng.close()
    return seen[0], step_ms


def decode_logits(model, proc, inputs, row_pages, image_tokens: int, steps: int, settings: dict,
                  forced: Any = None) -> tuple[Any, Any]:
    """(float32 logits of each of ``steps`` tokens of docpipe's decode loop, (steps, rows, vocab) on the host; the
    tokens (rows, steps)). ``forced``: tokens to feed instead of the loop's own picks, so that two runs (a bf16 and
    an fp8 KV cache) are compared on the same inputs at every step."""
    import torch

    from docpipe.engines import EngineOptions
    from docpipe.engines.gemma.engine import GemmaEngine

    eng = GemmaEngine.from_loaded(model, proc, EngineOptions(
        image_tokens=image_tokens, extra={"page_text": False, "grammar": False, **settings}))
    seen = []

    def capture(ids, scores):
        seen.append(scores.float().cpu())
        if forced is None:
            return scores
        only = torch.full_like(scores, float("-inf"))
        only[torch.arange(len(only)), forced[:, len(seen) - 1].to(scores.device)] = 0
        return only

    b = eng.backend
    tokens = b.decoder.generate(inputs, steps, None, b.pad_id, processor=capture, row_pages=row_pages)
    eng.close()
    return torch.stack(seen), tokens


def compare(got, ref) -> dict:
    import torch

    cos = torch.nn.functional.cosine_similarity(got, ref, dim=-1)
    rel = (got - ref).norm(dim=-1) / ref.norm(dim=-1)
    top = (got.argmax(-1) == ref.argmax(-1)).float()
    out = {"cos_min": float(cos.min()), "cos_mean": float(cos.mean()), "rel_l2_max": float(rel.max()),
           "top1_agree": float(top.mean()), "finite": bool(torch.isfinite(got).all())}
    if len(ref) > 1:  # each row's error against the distance to the nearest other page's reference: < 1 tells apart
        apart = torch.cdist(ref, ref).fill_diagonal_(float("inf")).min(-1).values
        out["err_vs_pages_max"] = float(((got - ref).norm(dim=-1) / apart).max())
    return out


#: post-norm weight given by --condition: each layer's update is this fraction of the residual's RMS
POST_NORM_SCALE = 0.2


def condition(model: Any, post: float = POST_NORM_SCALE) -> None:
    """Give random weights tamer scales where the initialisation leaves ones (see the module's docstring)."""
    import torch

    with torch.no_grad():
        for name, mod in model.named_modules():
            weight = getattr(mod, "weight", None)
            last = name.rsplit(".", 1)[-1]
            if weight is None:
                continue
            if last in ("q_norm", "k_norm"):
                weight.fill_(weight.shape[0] ** -0.25)
            elif ".layers." in name and last.startswith("post_") and "norm" in last:
                weight.fill_(post)


def build_any(key: str, conditioned: bool = False, layers: int = 0, post: float = POST_NORM_SCALE):
    """bench_gemma's full-size model on the GPU, or "tiny-dense" / "tiny-moe" / "tiny-e" on the CPU (tests/gemma_tiny:
    a dry run of this script without a GPU), or with ``layers`` the checkpoint's widths cut to that many layers, in
    bf16 on the CPU; ``conditioned``: through ``condition``."""
    if key.startswith("tiny-"):
        from gemma_tiny import build_model, build_processor, build_tokenizer

        tok = build_tokenizer()
        model, proc = build_model(tok, key.split("-", 1)[1]), build_processor(tok)
    elif layers:
        import torch
        from bench_shared_prefix import build_cpu

        model, proc = build_cpu(key, layers)
        model.to(torch.bfloat16)
    else:
        from bench_gemma import build

        model, proc = build(key, "grouped_mm")
    if conditioned:
        condition(model, post)
    return model, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=["26b-a4b"])
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--image-tokens", type=int, default=1120)
    ap.add_argument("--modes", nargs="+", default=["none", "fp8", "int8", "int4"])
    ap.add_argument("--steps", type=int, default=48, help="decode steps timed per mode at these rows (0: none)")
    ap.add_argument("--variants", nargs="*", default=[], metavar="JSON",
                    help='engine settings for extra bf16 runs, e.g. \'{"prefill_attention": "sdpa"}\'')
    ap.add_argument("--fp32-ref", action="store_true", help="also transformers' forward in float32 (noise floor)")
    ap.add_argument("--eager-experts-ref", action="store_true",
                    help="MoE models: also transformers' bf16 forward with its eager experts (one expert at a time) "
                         "against its grouped GEMM: how far a reordering of bf16 sums alone moves these logits")
    ap.add_argument("--kv-steps", type=int, default=0,
                    help="bf16 weights: also this many decode steps with an fp8 KV cache, fed the bf16 cache's "
                         "tokens, each step's logits against the bf16 cache's (0: not run)")
    ap.add_argument("--layers", type=int, default=0,
                    help="CPU dry run: the checkpoint's widths cut to this many layers, bf16 (0: full size, GPU)")
    ap.add_argument("--post-norm", type=float, default=POST_NORM_SCALE,
                    help="--condition's weight for the layers' post-norms")
    ap.add_argument("--condition", action=argparse.BooleanOptionalAction, default=True,
                    help="give the random weights tamer norm scales (default; see the docstring)")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "numerics_out")))
    a = ap.parse_args()
    from bench_gemma import _checkout_schemas

    _checkout_schemas()  # before the tokenizer is trained on the schemas' prompts
    from docpipe.engines.gemma.kernels.memory import allocator_defaults

    allocator_defaults()
    import torch

    from docpipe.engines.gemma.quantize import quantize_model

    a.out.mkdir(parents=True, exist_ok=True)
    results = []
    card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    print(f"card: {card}; torch {torch.__version__}", flush=True)
    for key in a.model:
        ref = ref32 = None
        for mode in a.modes:
            t = time.perf_counter()
            model, proc = build_any(key, a.condition, a.layers, a.post_norm)
            inputs, row_pages = page_inputs(proc, a.pages, a.image_tokens, model.device, model.dtype)
            if ref is None:  # transformers' forward on the untouched bf16 model
                ref = reference_logits(model, inputs)
                if len(ref) > 1:  # different pages must still give different logits, or the bar means nothing
                    cos = torch.nn.functional.cosine_similarity(ref[:, None], ref[None], dim=-1)
                    off = cos[~torch.eye(len(ref), dtype=torch.bool, device=cos.device)]
                    row = {"model": key, "mode": "between different pages (control)", "conditioned": a.condition,
                           "cos_max": float(off.max()), "cos_mean": float(off.mean())}
                    results.append(row)
                    print(json.dumps(row), flush=True)
                if a.fp32_ref:  # the same forward in float32: how far bf16 rounding alone moves these logits
                    dtype = model.dtype  # bf16 on the GPU; the tiny CPU models are float32 and stay so
                    model.float()  # 26B-A4B's 96 GiB in float32 needs an H200; 31B's 115 GiB does not fit one
                    ref32 = reference_logits_fp32(model, inputs)
                    model.to(dtype)
                    row = {"model": key, "mode": "transformers bf16 vs float32", **compare(ref, ref32)}
                    results.append(row)
                    print(json.dumps(row), flush=True)
                if a.eager_experts_ref and getattr(model.config.get_text_config(), "enable_moe_block", False):
                    with eager_experts(model):
                        eager = reference_logits(model, inputs)
                    row = {"model": key, "mode": "transformers bf16, eager experts vs grouped GEMM",
                           **compare(eager, ref)}
                    results.append(row)
                    print(json.dumps(row), flush=True)
            before = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
            if mode != "none":
                quantize_model(model, mode)
            gc.collect()
            torch.cuda.empty_cache()
            weights = (sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
                       if not torch.cuda.is_available() else torch.cuda.memory_allocated()) / 2**30
            del before
            row = {"model": key, "mode": mode, "rows": int(inputs["input_ids"].shape[0]),
                   "prompt_tokens": int(inputs["input_ids"].shape[1]), "weights_GiB": weights}
            for settings in ({}, {"text_compile": False}):  # the second only if the first fails (diagnosis)
                try:
                    got, step_ms = docpipe_logits(model, proc, inputs, row_pages, a.image_tokens, a.steps, settings)
                    row.update(**compare(got, ref), decode_ms_step=step_ms, settings=settings,
                               s=time.perf_counter() - t)
                    if ref32 is not None:  # against float32 too: as near as transformers' own bf16 forward?
                        row.update({f"fp32_{k}": v for k, v in compare(got, ref32).items()
                                    if k in ("cos_min", "cos_mean", "err_vs_pages_max")})
                    if mode == "none":  # each of docpipe's kernels turned off in turn: which one moves the logits
                        for variant in a.variants:  # on a fresh build: docpipe's kernels stay installed
                            off = json.loads(variant)
                            vm, vp = build_any(key, a.condition, a.layers, a.post_norm)
                            vgot, _ = docpipe_logits(vm, vp, inputs, row_pages, a.image_tokens, 0, off)
                            vm = vp = None
                            v = {"model": key, "mode": f"none, {variant}", **compare(vgot, ref)}
                            results.append(v)
                            print(json.dumps(v), flush=True)
                    break
                except Exception as e:  # one mode failing must not hide the others' numbers
                    import traceback

                    traceback.print_exc()
                    key = "error_" + next(iter(settings)) if settings else "error"
                    row[key] = f"{type(e).__name__}: {str(e)[:300]}"
                    torch.cuda.empty_cache()
            if mode == "none" and a.kv_steps > 1:  # the fp8 KV cache against the bf16 one, step by step
                try:
                    plain, tokens = decode_logits(model, proc, inputs, row_pages, a.image_tokens, a.kv_steps,
                                                  {"kv_cache": "bf16"})
                    fp8, _ = decode_logits(model, proc, inputs, row_pages, a.image_tokens, a.kv_steps,
                                           {"kv_cache": "fp8"}, forced=tokens)
                    # step 0 is the prefill's (the same cache-free logits); the steps after it read the cache
                    kv = {"model": key, "mode": f"fp8 KV cache vs bf16 cache, decode steps 2-{a.kv_steps}",
                          **compare(fp8[1:].flatten(0, 1), plain[1:].flatten(0, 1))}
                    kv.pop("err_vs_pages_max", None)  # rows of one page at several steps: no other page to be near
                except Exception as e:  # noqa: BLE001  (a check: say what broke, report the rest)
                    kv = {"model": key, "mode": "fp8 KV cache", "error": f"{type(e).__name__}: {str(e)[:300]}"}
                results.append(kv)
                print(json.dumps(kv), flush=True)
            if mode == "none" and "cos_min" in row:
                row["pass"] = row["cos_min"] >= BF16_MIN_COSINE
                floors = [r["cos_min"] for r in results if r["model"] == key and r["mode"].startswith("transformers")]
                if floors:  # transformers against itself: how near any bf16 path can come on these weights
                    row["floor_cos_min"] = min(floors)
            results.append(row)
            print(json.dumps(row), flush=True)
            (a.out / "numerics.json").write_text(json.dumps(results, indent=1))
            model = proc = inputs = None
            gc.collect()
            torch.cuda.empty_cache()
    print("\n| model | mode | rows x tokens | weights GiB | cosine min (mean) vs transformers bf16 | "
          "rel. L2 max | error vs pages | top-1 agrees | decode ms/step at these rows |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "cos_max" in r:
            print(f"| {r['model']} | {r['mode']}, conditioned: {r['conditioned']} | | | max {r['cos_max']:.5f} "
                  f"({r['cos_mean']:.5f}) | | | | |")
            continue
        if "cos_min" not in r:
            print(f"| {r['model']} | {r['mode']} | error: {r.get('error', '?')[:80]} | | | | | | |")
            continue
        if "rows" not in r:  # a variant or the float32 reference
            print(f"| {r['model']} | {r['mode']} | | | {r['cos_min']:.5f} ({r['cos_mean']:.5f}) | "
                  f"{r['rel_l2_max']:.4f} | {r.get('err_vs_pages_max', float('nan')):.3f} | "
                  f"{100 * r['top1_agree']:.0f}% | |")
            continue
        print(f"| {r['model']} | {r['mode']} | {r['rows']} x {r['prompt_tokens']} | {r['weights_GiB']:.1f} | "
              f"{r['cos_min']:.5f} ({r['cos_mean']:.5f}) | {r['rel_l2_max']:.4f} | "
              f"{r.get('err_vs_pages_max', float('nan')):.3f} | {100 * r['top1_agree']:.0f}% | "
              f"{r['decode_ms_step']:.1f} |")
        if "fp32_cos_min" in r:
            print(f"| {r['model']} | {r['mode']}, against float32 | | | {r['fp32_cos_min']:.5f} "
                  f"({r['fp32_cos_mean']:.5f}) | | {r.get('fp32_err_vs_pages_max', float('nan')):.3f} | | |")


if __name__ == "__main__":
    main()
