#!/usr/bin/env python3
"""GPU throughput of docpipe's Gemma engine with the real architecture of a checkpoint and random bf16 weights.

Why random weights: no download, yet every matrix has the real shape, so time and memory are those of the real
model (only the text it writes is nonsense). The run goes through ``GemmaEngine.run`` end to end: real PDF/image
pages from samples/ rendered at the budget, the rasterizing thread, batching, vision tower, generate().

Per configuration it runs the same pages twice, with 1 and with N new tokens a page (fixed length: grammar off,
EOS ignored), and splits generate time into prefill and decode. It also measures the card's copy bandwidth and
bf16 matmul rate and computes a roofline: prefill FLOPs / matmul rate + decode bytes (weights touched + KV cache
read per step) / bandwidth. Optionally a run with the grammar on (real stopping) and a torch.profiler table.

    python scripts/bench_gemma.py --model 26b-a4b --image-tokens 1120 560 --batch 32 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))



def _checkout_schemas() -> None:
    """Run from a plain checkout (no pip install): map schemas/ to docpipe.builtin_schemas as setup does."""
    import importlib.util

    try:
        importlib.import_module("docpipe.builtin_schemas")
    except ModuleNotFoundError:
        spec = importlib.util.spec_from_file_location("docpipe.builtin_schemas", ROOT / "schemas" / "__init__.py",
                                                      submodule_search_locations=[str(ROOT / "schemas")])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["docpipe.builtin_schemas"] = mod
        spec.loader.exec_module(mod)


_ROPE = {"full_attention": {"rope_theta": 1_000_000.0, "rope_type": "proportional", "partial_rotary_factor": 0.25},
         "sliding_attention": {"rope_theta": 10_000.0, "rope_type": "default"}}
_SMALL_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=16, num_attention_heads=12,
                     num_key_value_heads=12, head_dim=64, global_head_dim=64, default_output_length=280,
                     pooling_kernel_size=3, use_clipped_linears=True)
_LARGE_VISION = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                     num_key_value_heads=16, head_dim=72, global_head_dim=72, default_output_length=280,
                     pooling_kernel_size=3, use_clipped_linears=False, standardize=True)
_L6 = ["sliding_attention"] * 5 + ["full_attention"]
#: text configs of the four checkpoints (transformers 5.5.0 convert_gemma4_weights.py _VARIANTS)
ARCH = {
    "e2b": (dict(hidden_size=1536, hidden_size_per_layer_input=256, intermediate_size=6144, num_hidden_layers=35,
                 layer_types=(["sliding_attention"] * 4 + ["full_attention"]) * 7, num_attention_heads=8,
                 num_key_value_heads=1, attention_k_eq_v=False, use_bidirectional_attention=None,
                 num_kv_shared_layers=20, use_double_wide_mlp=True, max_position_embeddings=131072),
            _SMALL_VISION, True),
    "e4b": (dict(hidden_size=2560, hidden_size_per_layer_input=256, intermediate_size=10240, num_hidden_layers=42,
                 layer_types=_L6 * 7, num_attention_heads=8, num_key_value_heads=2, global_head_dim=512,
                 attention_k_eq_v=False, use_bidirectional_attention=None, num_kv_shared_layers=18,
                 max_position_embeddings=131072),
            _SMALL_VISION, True),
    "31b": (dict(hidden_size=5376, hidden_size_per_layer_input=0, intermediate_size=21504, num_hidden_layers=60,
                 layer_types=_L6 * 10, num_attention_heads=32, num_key_value_heads=16, num_global_key_value_heads=4,
                 attention_k_eq_v=True, use_bidirectional_attention="vision", num_kv_shared_layers=0,
                 sliding_window=1024, max_position_embeddings=262144),
            _LARGE_VISION, False),
    "26b-a4b": (dict(hidden_size=2816, hidden_size_per_layer_input=0, intermediate_size=2112, num_hidden_layers=30,
                     layer_types=_L6 * 5, num_attention_heads=16, num_key_value_heads=8,
                     num_global_key_value_heads=2, attention_k_eq_v=True, use_bidirectional_attention="vision",
                     num_kv_shared_layers=0, enable_moe_block=True, num_experts=128, moe_intermediate_size=704,
                     top_k_experts=8, sliding_window=1024, max_position_embeddings=262144),
                _LARGE_VISION, False),
}
VOCAB = 262_144


def config(key: str, tok):
    """The Gemma4Config of checkpoint ``key`` with ``tok``'s special token ids."""
    from transformers import Gemma4AudioConfig, Gemma4Config, Gemma4TextConfig, Gemma4VisionConfig

    ids = tok.convert_tokens_to_ids
    text_kw, vision_kw, audio = ARCH[key]
    text = Gemma4TextConfig(vocab_size=VOCAB, vocab_size_per_layer_input=VOCAB, final_logit_softcapping=30.0,
                            rope_parameters=_ROPE, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                            eos_token_id=[tok.eos_token_id, ids("<turn|>")], **text_kw)
    cfg = Gemma4Config(text_config=text, vision_config=Gemma4VisionConfig(**vision_kw),
                       audio_config=Gemma4AudioConfig() if audio else None,
                       image_token_id=ids("<|image|>"), boi_token_id=ids("<|image>"), eoi_token_id=ids("<image|>"),
                       video_token_id=ids("<|video|>"), audio_token_id=ids("<|audio|>"),
                       boa_token_id=ids("<|audio>"), eoa_token_index=ids("<audio|>"))
    return cfg


def build(key: str, experts: str):
    """(model on cuda in bf16 with random weights, processor with an in-code tokenizer)."""
    import torch
    from gemma_tiny import build_processor, build_tokenizer
    from transformers import Gemma4ForConditionalGeneration

    tok = build_tokenizer()
    cfg = config(key, tok)
    text = cfg.text_config
    torch.manual_seed(0)
    kw = dict(dtype=torch.bfloat16, attn_implementation="sdpa")
    with torch.device("cuda"):
        try:
            model = Gemma4ForConditionalGeneration._from_config(cfg, experts_implementation=experts, **kw)
        except TypeError:
            model = Gemma4ForConditionalGeneration._from_config(cfg, **kw)
    model.eval()
    model.generation_config.eos_token_id = text.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, build_processor(tok)


# -- the card's two ceilings ------------------------------------------------------------------------------------
def measure_card() -> dict:
    import torch

    def timed(fn, reps=20):
        fn()
        torch.cuda.synchronize()
        ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
        ts = []
        for _ in range(reps):
            ev[0].record()
            fn()
            ev[1].record()
            torch.cuda.synchronize()
            ts.append(ev[0].elapsed_time(ev[1]) / 1000)
        return sorted(ts)[len(ts) // 2]

    n = 1 << 30  # 2 GiB bf16 per buffer
    a = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    b = torch.empty_like(a)
    bw = 2 * a.numel() * 2 / timed(lambda: b.copy_(a))  # bytes read + written
    m = 8192
    x = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    y = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    mm = 2 * m**3 / timed(lambda: x @ y)
    a = b = x = y = None  # free before the model is built
    torch.cuda.empty_cache()
    return {"copy_GBps": bw / 1e9, "bf16_TFLOPs": mm / 1e12, "card": torch.cuda.get_device_name(0)}


# -- roofline from the config -----------------------------------------------------------------------------------
def param_groups(model) -> dict:
    import torch

    g = {"vision": 0, "audio": 0, "experts": 0, "embed": 0, "ple": 0, "text": 0}
    # quantized weights kept as buffers (docpipe's int4 Linear and experts: two values a byte) count as parameters
    stored = [(name, t.numel() * (2 if t.dtype == torch.uint8 else 1)) for name, t in model.named_buffers()
              if name.endswith((".q", "_q"))]
    for name, n in [(name, p.numel()) for name, p in model.named_parameters()] + stored:
        if "vision" in name:
            g["vision"] += n
        elif "audio" in name:
            g["audio"] += n
        elif ".experts." in name:
            g["experts"] += n
        elif "embed_tokens_per_layer" in name:
            g["ple"] += n
        elif "embed_tokens" in name:
            g["embed"] += n
        else:
            g["text"] += n
    return g


def kv_read_row(model):
    """K and V bytes one row's decode step reads, as a function of the context (gemma_memory.KVRow over the widths
    read): every layer's attention reads a cache, a KV-shared layer (E models) that of the last layer of its type
    that stores one. Before the eighth round the roofline counted the cache stored (KVRow.of), which for E4B's 18
    shared layers of 42 is 57% of what a step reads."""
    from docpipe.engines.gemma.kernels.memory import KVRow, attention_shapes

    last: dict = {}
    width = {"sliding": 0, "full": 0}
    for kind, _, kw, own in attention_shapes(model):
        if own:
            last[kind] = kw
        width["sliding" if kind == "sliding_attention" else "full"] += last.get(kind, 0)
    return KVRow(int(model.config.get_text_config().sliding_window), width["sliding"], width["full"])


def roofline(model, card: dict, prompt_tokens: float, patches: float, batch: int, new_tokens: int,
             quant: str = "none", kv_bytes: int = 2) -> dict:
    from docpipe.engines.gemma.kernels.memory import attention_shapes

    tc = model.config.get_text_config()
    vc = model.config.vision_config
    g = param_groups(model)
    k_frac = (tc.top_k_experts / tc.num_experts) if tc.enable_moe_block else 1.0
    active = g["text"] + g["experts"] * k_frac
    # prefill FLOPs of one page: text matmuls + causal attention (sliding capped) + vision matmuls + attention
    attn = 0.0
    for t, qw, _, _ in attention_shapes(model):
        span = min(prompt_tokens, tc.sliding_window) if t == "sliding_attention" else prompt_tokens / 2
        attn += 4 * prompt_tokens * span * qw
    vis = 2 * g["vision"] * patches + 4 * patches**2 * vc.hidden_size * vc.num_hidden_layers
    prefill_flops = 2 * active * prompt_tokens + attn + vis
    # decode bytes of one step for the batch: non-expert weights + lm_head + experts touched + KV read
    touched = 1 - (1 - k_frac) ** batch if tc.enable_moe_block else 1.0
    from docpipe.engines.gemma.quantize import WEIGHT_BYTES

    # the text layers' and experts' weights in the mode's bytes (norms and the router counted so too: <0.1%)
    weights = WEIGHT_BYTES[quant] * (g["text"] + g["experts"] * touched) + 2 * g["embed"]
    read = kv_read_row(model)
    kv = sum(read(int(prompt_tokens + s)) for s in range(0, new_tokens, 16)) * 16 / new_tokens * kv_bytes / 2
    step_bytes = weights + batch * kv
    t_prefill = prefill_flops / (card["bf16_TFLOPs"] * 1e12)
    t_decode = new_tokens * step_bytes / (card["copy_GBps"] * 1e9) / batch
    return {"prefill_TFLOP_page": prefill_flops / 1e12, "vision_TFLOP_page": vis / 1e12,
            "decode_GB_step": step_bytes / 1e9, "weights_GB_step": weights / 1e9, "kv_GB_step": batch * kv / 1e9,
            "roof_prefill_ms_page": t_prefill * 1e3, "roof_decode_ms_page": t_decode * 1e3,
            "roof_pages_s": 1 / (t_prefill + t_decode), "params_B": {k: v / 1e9 for k, v in g.items()}}


# -- runs through the engine ------------------------------------------------------------------------------------
def jobs_for(n_pages: int) -> list:
    """Document jobs from samples/ (PDFs and images), repeated until n_pages pages."""
    from docpipe.discover import discover
    from docpipe.engines import DocJob
    from docpipe.rasterize import open_document

    srcs = [s for s in discover([ROOT / "samples"]) if getattr(s, "kind", "") in ("pdf", "image")]
    counted = []
    for s in sorted(srcs, key=lambda s: str(s.path)):
        with open_document(s) as d:
            counted.append((s, d.page_count))
    jobs, pages, i = [], 0, 0
    while pages < n_pages:
        s, n = counted[i % len(counted)]
        if pages + n <= n_pages:
            jobs.append(DocJob(source=s, schema_ref="invoice"))
            pages += n
        i += 1
        if i > 10 * len(counted) + n_pages:
            break
    return jobs


VISION_CHUNK = 16
MOE_GROUPED = True
SETTINGS: dict = {}  # engine settings from --set


def run_engine(model, proc, image_tokens: int, batch: int, new_tokens: int, jobs: list, grammar: bool,
               decode: str = "loop") -> dict:
    """One engine run over jobs. decode: "loop" (docpipe's CUDA-graph loop) or "generate" (transformers'
    generate(), eager)."""
    import torch

    from docpipe.engines import EngineOptions
    from docpipe.engines.gemma.engine import GemmaEngine
    from docpipe.engines.gemma.settings import GemmaSettings
    from docpipe.schemas import resolve

    extra = {"batch_size": batch, "page_text": False, "repair": False, "grammar": grammar,
             "max_new_tokens": new_tokens, "min_new_tokens": 0 if grammar else new_tokens,
             "max_pages_in_memory": 2 * batch + 8, "batch_wait_s": 20.0,
             "answer_segment": 0,  # fixed-length answers in one pass: the step counts assume it
             "decode": decode,
             "vision_chunk": VISION_CHUNK, "moe_grouped": MOE_GROUPED, **SETTINGS}
    eng = GemmaEngine.from_loaded(model, proc, EngineOptions(image_tokens=image_tokens,
                                                             settings={"gemma": GemmaSettings(**extra)}))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    outs = list(eng.run(jobs, resolve("invoice")))
    torch.cuda.synchronize()
    wall = time.perf_counter() - t
    pages = sum(len(o.pages) for o in outs)
    ok = sum(1 for o in outs if o.data is not None)
    failed = [{"doc": str(o.source.path.name), "raw": (o.raw_text or "")[:600],
               "errors": [str(e) for e in o.errors][:3]} for o in outs if o.data is None]
    steps = {"graph": 0, "eager": 0}
    decoder = eng.backend.decoder
    if decoder is not None:
        steps = {"graph": decoder.stats["graph_steps"], "eager": decoder.stats["eager_steps"]}
    return {"wall_s": wall, "pages": pages, "docs": len(outs), "docs_with_data": ok, "failed": failed,
            "graph_steps": steps["graph"], "eager_steps": steps["eager"],
            "peak_GiB": torch.cuda.max_memory_allocated() / 2**30,
            "reserved_GiB": torch.cuda.max_memory_reserved() / 2**30, **eng.stats.as_dict()}


def planned_batch(model, proc, image_tokens: int, new_tokens: int) -> int:
    """The batch the engine plans by itself for this model and card (gemma_memory.plan), as ``--batch 0`` asks."""
    from docpipe.engines import EngineOptions
    from docpipe.engines.gemma.engine import GemmaEngine
    from docpipe.engines.gemma.settings import GemmaSettings

    extra = {"max_new_tokens": new_tokens, "answer_segment": 0, "vision_chunk": VISION_CHUNK, **SETTINGS}
    eng = GemmaEngine.from_loaded(model, proc, EngineOptions(image_tokens=image_tokens,
                                                             settings={"gemma": GemmaSettings(**extra)}))
    rows = eng.stats.planned_rows
    eng.close()
    return rows


def memory_at_peak(snapshot: dict, top: int = 14) -> str:
    """The blocks alive when a recorded run's allocations peaked, summed by where they were made (the innermost
    docpipe frame and the innermost frame outside it): what a batch's memory holds beside the weights."""
    trace = [e for e in snapshot["device_traces"][0] if e["action"] in ("alloc", "free_completed")]
    sizes, cur, peak, at = {}, 0, 0, -1
    for i, e in enumerate(trace):  # first pass: when the peak came (blocks made before recording are left out)
        if e["action"] == "alloc":
            sizes[e["addr"]] = e["size"]
            cur += e["size"]
        else:
            cur -= sizes.pop(e["addr"], 0)
        if cur > peak:
            peak, at = cur, i
    live: dict = {}
    for e in trace[: at + 1]:
        if e["action"] == "alloc":
            live[e["addr"]] = e
        else:
            live.pop(e["addr"], None)
    groups: dict = {}
    for e in live.values():
        frames = e.get("frames") or []
        mine = next((f for f in frames if "docpipe" in f["filename"]), None)
        other = next((f for f in frames if "docpipe" not in f["filename"]), None)
        key = " <- ".join(f"{Path(f['filename']).name}:{f['line']} {f['name']}" for f in (other, mine) if f)
        n, b = groups.get(key, (0, 0))
        groups[key] = (n + 1, b + e["size"])
    lines = [f"peak of blocks made during the run: {peak / 2**30:.2f} GiB (event {at} of {len(trace)})",
             "| GiB | blocks | made at (innermost outside docpipe <- innermost in docpipe) |", "|---|---|---|"]
    for key, (n, b) in sorted(groups.items(), key=lambda kv: -kv[1][1])[:top]:
        lines.append(f"| {b / 2**30:.2f} | {n} | {key or '?'} |")
    return "\n".join(lines)


def profile_run(model, proc, image_tokens: int, batch: int, new_tokens: int, out_dir: Path) -> str:
    """Top kernels by GPU time over one batch (new_tokens=1: prefill; more: prefill + decode steps)."""
    from torch.profiler import ProfilerActivity, profile

    jobs = jobs_for(batch)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run_engine(model, proc, image_tokens, batch, new_tokens, jobs, grammar=False)
    # kernels by their own GPU time (an aten op's total would count its kernels twice)
    table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=70)
    (out_dir / f"profile_{image_tokens}_{batch}_{new_tokens}.txt").write_text(table)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="26b-a4b", choices=sorted(ARCH))
    ap.add_argument("--image-tokens", type=int, nargs="+", default=[1120])
    ap.add_argument("--batch", type=int, nargs="+", default=[32], help="rows per batch; 0: the engine's plan")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--batches-per-run", type=int, default=2, help="pages per run = batch x this")
    ap.add_argument("--experts", default="grouped_mm")
    ap.add_argument("--grammar-run", action="store_true", help="also one run with constrained JSON (real stops)")
    ap.add_argument("--decode", nargs="+", choices=["loop", "generate"], default=["loop"],
                    help="loop: docpipe's decode loop (one CUDA graph a batch); generate: transformers' generate(), "
                         "eager, only with the first --quantize mode (the plain-transformers reference). When "
                         "decode_compile or vision_compile is on (vision_compile is by default), an untimed first "
                         "run compiles before the timed ones")
    ap.add_argument("--grammar-only", action="store_true", help="only the grammar run (no timing rows)")
    ap.add_argument("--profile", action="store_true", help="first a torch.profiler table of one batch's prefill "
                    "(1 new token) and of prefill + 16 decode steps, written to --out")
    ap.add_argument("--profile-only", action="store_true", help="only the --profile tables, no timed rows")
    ap.add_argument("--vision-chunk", type=int, default=16, help="pages per vision-tower call")
    ap.add_argument("--moe", choices=["docpipe", "transformers"], default="docpipe",
                    help="experts forward: docpipe's grouped GEMMs or transformers' --experts implementation")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON",
                    help="engine settings (gemma_settings.DEFAULTS keys), e.g. decode_compile=true vision_compile=true")
    ap.add_argument("--clock-only", action="store_true", help="no 1-token runs: the prefill's ms a page is the "
                    "stage clock's GPU time in the timed run (not the 1-token run's wall time), which halves a "
                    "configuration's runs (long, steady-state runs)")
    ap.add_argument("--flex-wide", action="store_true", help="the global layers' 512-wide heads through flex too "
                    "(gemma_flex.MAX_CUDA_HEAD = 512; by default they stay with SDPA)")
    ap.add_argument("--memory-trace", action="store_true", help="record the timed runs' allocations and print "
                    "what was alive at their peak, by where it was made")
    ap.add_argument("--quantize", nargs="+", default=["none"], choices=["none", "fp8", "int8", "int4"],
                    help="weights as the engine's --quantize stores them (quantize.py); one model build per mode")
    ap.add_argument("--cap-gib", type=float, default=0, help="after building and quantizing, let the process use at "
                    "most this much of the card (torch.cuda.set_per_process_memory_fraction): a 24 GB card is 22.3")
    ap.add_argument("--generate-batch", type=int, default=32, help="rows of the --decode generate runs (transformers' "
                    "generate() runs out of memory at the loop's planned rows); with --clock-only, pages/s only")
    ap.add_argument("--variants", nargs="+", type=json.loads, default=[{}], metavar="JSON",
                    help="timed rows once per JSON object of engine settings over --set's, e.g. '{}' "
                         "'{\"shared_prefix\": false}'")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench_out")))
    a = ap.parse_args()
    SETTINGS.update({k: json.loads(v) for k, v in (kv.split("=", 1) for kv in a.set)})
    from docpipe.engines.gemma.kernels.memory import allocator_defaults

    allocator_defaults()  # the engine's allocator settings, before the model is built (PYTORCH_CUDA_ALLOC_CONF wins)
    import torch

    _checkout_schemas()
    if a.flex_wide:
        from docpipe.engines.gemma.kernels import flex as gemma_flex

        gemma_flex.MAX_CUDA_HEAD = 512
    global VISION_CHUNK, MOE_GROUPED
    VISION_CHUNK, MOE_GROUPED = a.vision_chunk, a.moe == "docpipe"
    a.out.mkdir(parents=True, exist_ok=True)
    card = measure_card()
    print(f"card: {card['card']}  copy {card['copy_GBps']:.0f} GB/s  bf16 matmul {card['bf16_TFLOPs']:.0f} TFLOP/s  "
          f"allocator {os.environ.get('PYTORCH_CUDA_ALLOC_CONF') or os.environ.get('PYTORCH_ALLOC_CONF')}", flush=True)
    results = []
    for i, quant in enumerate(a.quantize):
        if i:  # generate() is the plain-transformers reference: one mode measures it
            a.decode = [d for d in a.decode if d != "generate"] or a.decode
        model = proc = None
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(1.0)
        t = time.perf_counter()
        model, proc = build(a.model, a.experts)
        if quant != "none":
            from docpipe.engines.gemma.quantize import quantize_model

            quantize_model(model, quant)
            gc.collect()
            torch.cuda.empty_cache()
        print(f"built {a.model} ({quant}) in {time.perf_counter() - t:.0f} s; "
              f"{torch.cuda.memory_allocated() / 2**30:.1f} GiB of weights", flush=True)
        if a.cap_gib:
            from docpipe.engines.gemma.kernels.memory import cap_memory

            cap_memory("cuda", a.cap_gib * 2**30)
        run_engine(model, proc, a.image_tokens[0], 4, 4, jobs_for(4), grammar=False)  # warm-up: kernels, cuBLAS
        runs(a, model, proc, card, quant, results)
    table(results)


def runs(a, model, proc, card: dict, quant: str, results: list) -> None:
    """The timed rows of one built (and quantized) model, once per --variants entry (its settings over --set's);
    transformers' generate() (--decode generate) only with the first. A row that fails is printed, and the next
    one runs."""
    import copy
    import traceback

    base = dict(SETTINGS)
    for k, variant in enumerate(a.variants):
        SETTINGS.clear()
        SETTINGS.update(base, **variant)
        av = copy.copy(a)
        if k:
            av.decode = [d for d in a.decode if d != "generate"]
            av.profile = av.profile_only = False
        try:
            _runs(av, model, proc, card, quant, results)
        except Exception as e:  # noqa: BLE001  (a bench: say what broke, measure the rest)
            traceback.print_exc()
            results.append({"model": a.model, "settings": dict(SETTINGS), "error": f"{type(e).__name__}: {e}"[:300]})
    SETTINGS.clear()
    SETTINGS.update(base)


def _runs(a, model, proc, card: dict, quant: str, results: list) -> None:
    import torch

    weights_gib = torch.cuda.memory_allocated() / 2**30
    if a.profile or a.profile_only:
        for n in (1, 17):
            print(f"profile, {n} new tokens:\n" + profile_run(model, proc, a.image_tokens[0], a.batch[0], n,
                                                                 a.out)[:6000], flush=True)
        if a.profile_only:
            return
    for it in a.image_tokens:
        for b in a.batch:
            if b == 0:
                b = planned_batch(model, proc, it, a.new_tokens)
                print(f"--batch 0: the engine plans {b} rows", flush=True)
            jobs = jobs_for(b * a.batches_per_run)
            if a.grammar_only:
                t = time.perf_counter()
                g = run_engine(model, proc, it, b, a.new_tokens, jobs, grammar=True)
                row = {"model": a.model, "image_tokens": it, "batch": b, "card": card["card"], "grammar": True,
                       "pages": g["pages"], "grammar_pages_s": g["pages"] / g["wall_s"],
                       "grammar_new_tokens": g["new_tokens"] / g["rows"],
                       "grammar_valid_docs": f"{g['docs_with_data']}/{g['docs']}", "failed": g["failed"],
                       "wall_s": time.perf_counter() - t}
                results.append(row)
                print(json.dumps(row, default=str), flush=True)
                (a.out / f"grammar_{a.model}.json").write_text(json.dumps(results, indent=1, default=str))
                continue
            for mode in a.decode:
                row = {"model": a.model, "image_tokens": it, "batch": b, "card": card["card"], "moe": a.moe,
                       "decode": mode, "settings": dict(SETTINGS), "quantize": quant, "cap_gib": a.cap_gib,
                       "weights_GiB": weights_gib}
                if mode == "generate" and a.clock_only:  # transformers' generate(): wall time only
                    try:
                        g = run_engine(model, proc, it, a.generate_batch, a.new_tokens, jobs_for(a.generate_batch),
                                       grammar=False, decode=mode)
                    except torch.OutOfMemoryError as e:
                        row["error"] = f"OOM: {str(e)[:120]}"
                        print(row, flush=True)
                        torch.cuda.empty_cache()
                        continue
                    row.update(batch=a.generate_batch, pages=g["pages"], pages_s=g["pages"] / g["wall_s"],
                               wall_s=g["wall_s"], wait_s=g["wait_s"], peak_GiB=g["peak_GiB"], generate_only=True)
                    results.append(row)
                    print(json.dumps(row, default=str), flush=True)
                    continue
                try:
                    from docpipe.engines.gemma.settings import engine_settings

                    eff = engine_settings(SETTINGS)
                    if eff["decode_compile"] or eff["vision_compile"] or eff["prefill_attention"] != "sdpa":
                        # compile (and CUDA-graph recording) for this shape, untimed; the 1-token run too, since
                        # its shorter cache is a new shape for the full layers' attention (flex recompiles)
                        cold = run_engine(model, proc, it, b, a.new_tokens, jobs, grammar=False, decode=mode)
                        if not a.clock_only:
                            run_engine(model, proc, it, b, 1, jobs, grammar=False, decode=mode)
                        row.update(cold_wall_s=cold["wall_s"], cold_generate_s=cold["generate_s"])
                    pre = None if a.clock_only else run_engine(model, proc, it, b, 1, jobs, grammar=False,
                                                               decode=mode)
                    if a.memory_trace:
                        torch.cuda.memory._record_memory_history(max_entries=500_000, stacks="python")
                    full = run_engine(model, proc, it, b, a.new_tokens, jobs, grammar=False, decode=mode)
                    if a.memory_trace:
                        print(memory_at_peak(torch.cuda.memory._snapshot()), flush=True)
                        torch.cuda.memory._record_memory_history(enabled=None)
                except torch.OutOfMemoryError as e:
                    row["error"] = f"OOM: {str(e)[:120]}"
                    print(row, flush=True)
                    torch.cuda.empty_cache()
                    continue
                pages = full["pages"]
                if pre is None:  # --clock-only: the prefill is the stage clock's GPU time in the full run
                    pre = full
                    pre_s = full["prefill_s"] + full.get("vision_ahead_s", 0.0)
                    decode_s, first_tokens = full["decode_s"], full["rows"]
                else:  # the 1-token run's wall time; pages encoded ahead are GPU time outside generate()
                    pre_s = pre["generate_s"] + pre.get("vision_ahead_s", 0.0)
                    decode_s, first_tokens = full["generate_s"] - pre["generate_s"], pre["new_tokens"]
                decode_s = max(decode_s, 1e-9)
                prompt = pre["prefill_tokens"] / pre["rows"]
                row.update(pages=pages, pages_s=pages / full["wall_s"], wall_s=full["wall_s"],
                           prefill_tok_s=pre["prefill_tokens"] / pre_s,
                           prefill_ms_page=1e3 * pre_s / pages,
                           decode_tok_s=(full["new_tokens"] - first_tokens) / decode_s,
                           # the clock's decode time where there is one, not the difference of two runs' walls
                           # (a prefill that compiled a new shape in one run made that difference 31% low for 31B)
                           decode_ms_step=1e3 * (full.get("decode_s") or decode_s)
                           / (full["batches"] * (a.new_tokens - 1)),
                           peak_GiB=max(pre["peak_GiB"], full["peak_GiB"]), reserved_GiB=full["reserved_GiB"],
                           prompt_tokens=prompt,
                           engine_batches=full["batches"], peak_batch=full["peak_batch"],
                           planned_rows=full["planned_rows"], prefill_rows=full["prefill_rows"],
                           oom_splits=full["oom_splits"] + (pre["oom_splits"] if pre is not full else 0),
                           wait_s=full["wait_s"], prefix_tokens_page=full.get("prefix_tokens", 0) / pages,
                           graph_steps=full["graph_steps"], eager_steps=full["eager_steps"],
                           clock_only=a.clock_only)
                if "prefill_s" in pre:  # the decode loop's stage clock (CUDA events): where the prefill went
                    ahead_s = pre.get("vision_ahead_s", 0.0)
                    row.update(vision_ms_page=1e3 * (pre.get("vision_s", 0.0) + ahead_s) / pages,
                               vision_ahead_ms_page=1e3 * ahead_s / pages,
                               text_prefill_ms_page=1e3 * (pre["prefill_s"] - pre.get("vision_s", 0.0)) / pages,
                               decode_ms_page=1e3 * full.get("decode_s", 0.0) / pages)
                row["kv_cache"] = full.get("kv_cache", "bf16")
                row.update(roofline(model, card, prompt, it * 9, b, a.new_tokens, quant,
                                    1 if row["kv_cache"] == "fp8" else 2))
                row["of_roofline"] = row["pages_s"] / row["roof_pages_s"]
                results.append(row)
                print(json.dumps(row, default=str), flush=True)
                (a.out / f"bench_{a.model}.json").write_text(json.dumps(results, indent=1, default=str))
                if a.grammar_run:
                    g = run_engine(model, proc, it, b, a.new_tokens, jobs, grammar=True, decode=mode)
                    row.update(grammar_pages_s=g["pages"] / g["wall_s"],
                               grammar_new_tokens=g["new_tokens"] / g["rows"],
                               grammar_valid_docs=f"{g['docs_with_data']}/{g['docs']}", failed=g["failed"])
                    print(json.dumps(row, default=str), flush=True)
                    (a.out / f"bench_{a.model}.json").write_text(json.dumps(results, indent=1, default=str))


def table(results: list) -> None:
    print("\n| model | card | quantize (cap GiB) | weights GiB | decode | image tokens | batch | pages/s | "
          "prefill ms/page (vision + text) | decode ms/page | prefill tok/s | decode tok/s | decode ms/step | "
          "peak GiB | roofline pages/s | of roofline | wall s (waiting for pages) | shared prefix tokens/page | "
          "settings |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r or "pages_s" not in r:
            continue
        cap = f" ({r['cap_gib']:g})" if r["cap_gib"] else ""
        kv = " + fp8 KV" if r.get("kv_cache") == "fp8" else ""
        head = (f"| {r['model']} | {r['card']} | {r['quantize']}{kv}{cap} | {r['weights_GiB']:.1f} | {r['decode']} | "
                f"{r['image_tokens']} | {r['batch']} | {r['pages_s']:.2f} |")
        if r.get("generate_only"):
            print(f"{head} | | | | | | {r['peak_GiB']:.1f} | | | {r['wall_s']:.1f} ({r['wait_s']:.1f}) | | "
                  f"{json.dumps(r['settings'])} |")
            continue
        split = (f" ({r['vision_ms_page']:.0f} + {r['text_prefill_ms_page']:.0f})" if "vision_ms_page" in r else "")
        print(f"{head} {r['prefill_ms_page']:.0f}{split} | {r.get('decode_ms_page', float('nan')):.0f} | "
              f"{r['prefill_tok_s']:.0f} | {r['decode_tok_s']:.0f} | {r['decode_ms_step']:.0f} | "
              f"{r['peak_GiB']:.1f} | {r['roof_pages_s']:.1f} | {100 * r['of_roofline']:.0f}% | "
              f"{r['wall_s']:.1f} ({r['wait_s']:.1f}) | {r.get('prefix_tokens_page', 0):.0f} | "
              f"{json.dumps(r['settings'])} |")


if __name__ == "__main__":
    main()
