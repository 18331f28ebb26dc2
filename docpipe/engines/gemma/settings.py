"""The Gemma engine's settings: what each one does, its default, and the check before any weights load.

Why a module of its own: the settings are the engine's tuning surface (``DOCPIPE_GEMMA``, ``EngineOptions.extra``,
``bench_gemma.py --set``), and each carries the measurement that chose its default; the engine reads them once.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ...errors import EngineUnavailable
from .kernels.generate import DECODE_KERNELS
from .quantize import CHOICES as QUANTIZE_CHOICES

#: defaults for ``EngineOptions.extra`` keys (all optional)
DEFAULTS: dict[str, Any] = {
    "batch_size": None,  # requests per batch; None: 4 on CPU, on CUDA what the free memory holds (gemma_memory)
    "max_new_tokens": 2048,  # answer budget of one extraction request
    # new tokens a batch decodes at most; a request still writing then goes on in a later batch (its prompt and
    # answer so far prefilled again, the grammar resumed), so the KV cache and the batch size are planned for this
    # many, not for the whole budget (JSON answers ran ~57 tokens on average, and 2,048 reserved a row cost 26B-A4B
    # ~12% of its rows on an H100); with --thinking the thought budget is added to it; 0: the whole budget at once
    "answer_segment": 512,
    "thinking_tokens": 1024,  # thought budget when --thinking
    "summary_tokens": 384,
    "summary_words": 200,
    "max_pages_in_memory": None,  # None: 2 x batch_size + 8
    "max_context_tokens": None,  # None: the model's window
    "page_text": True,  # give the text layer beside the image when the layer is usable
    "page_text_chars": 4000,
    "grammar": True,  # constrained JSON (off only for throughput measurements)
    "repair": True,
    "min_new_tokens": 0,  # fixed output length for benchmarks (with grammar off)
    # how a batch is decoded: "loop" = docpipe's own loop (gemma_generate: static cache with ring-buffer sliding
    # windows, grouped-query attention; on CUDA the whole step is one CUDA graph replayed per token);
    # "generate" = transformers' generate() (eager; 3-6x slower decode on an H200, kept as a reference)
    "decode": "loop",
    # loop only: torch.compile the one-token forward (for the first batch shape, then once more with dynamic
    # shapes). true: as one graph; on an H100 two batch shapes compiled for over 3.5 (E4B) and 4.5 (26B-A4B)
    # minutes. "layers": each kind of decoder layer, its attention eager (compile_layers; on a CPU 86 s against
    # 294 s, bench_compile.py). Opt-in: neither form's speed is measured on a GPU yet. Without it the step is
    # still one CUDA graph with text_compile's fused modules inside (E4B, H100: 12.5 ms a step at 111-128 rows).
    "decode_compile": False,
    # loop only: the kernel of a decode step's attention (gemma_generate.decode_attention). "sdpa": SDPA over
    # grouped queries; "matmul": two batched GEMMs around a float32 softmax; "auto": matmul for a layer of 256-wide
    # heads whose cache holds 300 MB or more (26B-A4B's sliding layers at 72 rows on an H100: 249 against 349 µs)
    "decode_attention": "auto",
    # loop only: rows per prefill forward (bounds prefill memory in big batches); 0: all; None: planned on CUDA
    # (gemma_memory.plan: 16 for MoE; fewer for a dense model whose batch memory binds, so more rows fit), 16 else
    "prefill_rows": None,
    # loop only: attention of the prefill. "flex": the dense mask transformers builds (sliding windows, image blocks,
    # padding, the cache's empty tail) cut into 128 x 128 blocks, empty ones skipped (gemma_flex; text prefill on an
    # H100: 26B-A4B 75 -> 60, 31B 260 -> 229 ms a page); "sdpa": SDPA with the dense mask, which computes every
    # block; "auto": flex on CUDA, sdpa elsewhere (flex's CPU path is an unfused reference)
    "prefill_attention": "auto",
    "vision_chunk": 16,  # pages per vision-tower call inside a batch (bounds prefill memory); 0: model's own path
    # while a batch waits for pages, the vision tower encodes the pages already there, instead of idling; the
    # batch's prefill then takes their features (at most a batch's pages are held, ~9 MB a page for 26B-A4B)
    "vision_ahead": True,
    # with vision_ahead: during a batch's decode, the pages waiting for the next batch are encoded too, on a second
    # CUDA stream, so the tower's compute runs beside the memory-bound decode steps (one chunk in flight at a time).
    # "auto": on for mixture-of-experts models on CUDA (26B-A4B on an H100, 91-102 rows: 4.41 -> 4.77 pages/s at
    # 1120 tokens, 6.55 -> 6.91 at 560; its decode steps slow from 29 to 40 ms, the tower's time is hidden); off for
    # the dense models, whose steps slow by as much as the tower saves (an H200: E4B 10.63 -> 10.48, 31B 2.05 -> 2.07)
    "vision_overlap": "auto",
    # vision tower on CUDA (gemma_vision): padding patches trimmed, so SDPA runs without a mask (1.3-1.5x).
    # Compiling its layers (false | "dynamic" | "static"; true = "dynamic") gave 2.2x (26B-A4B) and 2.7x (E4B) on an
    # H200 for ~12-18 s of compiling once per process, little beside loading the weights: on by default.
    "vision_compile": True,
    # text model on CUDA (gemma_fusion): RMSNorm, MLP, router and RoPE compiled into fused kernels (elementwise and
    # cast kernels were half of a text prefill on an H100: 70 -> 46 ms a row, 26B-A4B); 4-16 s once per process
    "text_compile": True,
    "vision_sdpa_backend": None,  # None: PyTorch chooses; "flash" | "efficient" | "cudnn" | "math" (benchmarks)
    # how long a partial batch waits for the rasterizing thread before it runs; time the GPU spends encoding its
    # pages meanwhile (vision_ahead) does not count, so a run's first batch fills as long as the GPU has work
    "batch_wait_s": 1.0,
    # processes that render pages and cut them into patches (gemma_prep). Opt-in: no gain measured on 2 cores,
    # not yet measured on a GPU host. 1 keeps it all in the rasterizing thread; the page-memory bound
    # (max_pages_in_memory) holds either way.
    "prep_workers": 1,
    "moe_grouped": True,  # docpipe's grouped-GEMM experts forward on CUDA (gemma_moe)
    # weights at load time (quantize.py): "none" (bf16), "fp8", "int8", "int4", or "auto": bf16 where it fits the
    # card with room for a batch, else the most precise mode that does (a 24 GB card: int4 for 26B-A4B and 31B)
    "quantize": "auto",
}
#: settings that take one of a few values
CHOICES: dict[str, tuple[Any, ...]] = {"decode": ("loop", "generate"), "prefill_attention": ("auto", "flex", "sdpa"),
                                       "decode_attention": DECODE_KERNELS,
                                       "vision_overlap": (False, True, "auto"), "quantize": QUANTIZE_CHOICES}
#: JSON object of DEFAULTS keys, for tuning without flags, e.g. DOCPIPE_GEMMA='{"batch_size": 32}'
SETTINGS_ENV = "DOCPIPE_GEMMA"


def engine_settings(extra: dict[str, Any]) -> dict[str, Any]:
    """DEFAULTS, overridden by the DOCPIPE_GEMMA environment variable, overridden by EngineOptions.extra."""
    env = os.environ.get(SETTINGS_ENV, "").strip()
    try:
        from_env = json.loads(env) if env else {}
    except json.JSONDecodeError as e:
        raise EngineUnavailable(f"{SETTINGS_ENV} is not a JSON object: {e.msg}") from e
    unknown = set(from_env) - set(DEFAULTS)
    if not isinstance(from_env, dict) or unknown:
        raise EngineUnavailable(f"{SETTINGS_ENV} has unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **from_env, **{k: v for k, v in extra.items() if k in DEFAULTS and v is not None}}
    for key, allowed in CHOICES.items():  # refused before minutes of loading weights, not after
        if cfg[key] not in allowed:
            raise EngineUnavailable(f"{key} must be {', '.join(repr(a) for a in allowed[:-1])} or "
                                    f"{allowed[-1]!r}, not {cfg[key]!r}")
    return cfg


def quantize_setting(extra: dict[str, Any]) -> str:
    """The ``quantize`` setting (EngineOptions.extra over DOCPIPE_GEMMA over the default) without checking the other
    settings: what ``--engine auto`` needs to know whether a model fits before an engine is made."""
    value = extra.get("quantize")
    if value is None:
        try:
            env = json.loads(os.environ.get(SETTINGS_ENV, "").strip() or "{}")
        except json.JSONDecodeError:
            env = {}
        value = env.get("quantize") if isinstance(env, dict) else None
    return str(value or DEFAULTS["quantize"])


def vision_overlap_on(setting: Any, moe: bool, device: str) -> bool:
    """Whether the next batch's pages are encoded during a decode: ``vision_overlap`` true or false as set; "auto"
    where it was measured to pay, a mixture-of-experts model on CUDA."""
    return moe and device == "cuda" if setting == "auto" else bool(setting)
