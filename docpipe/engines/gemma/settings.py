"""The Gemma engine's settings: one typed field per knob, its default, and the check before any weights load.

Why a module of its own: the settings are the engine's tuning surface (``[gemma]`` in ``docpipe.toml``, the
``DOCPIPE_GEMMA`` JSON variable, ``docpipe.ingest(batch_size=...)``, ``bench_gemma.py --set``); the engine reads
them once. Why each default is what it is, with the measurements: docs/performance.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...errors import EngineUnavailable
from .kernels.generate import DECODE_KERNELS
from .kernels.kv_fp8 import CHOICES as KV_CHOICES
from .quantize import CHOICES as QUANTIZE_CHOICES

if TYPE_CHECKING:
    from ..base import EngineOptions


class GemmaSettings(BaseModel):
    """Settings of the gemma engine; every field is optional and has a measured default."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int | None = Field(None, description="Requests per batch; None: 4 on CPU, on CUDA what free memory "
                                   "holds.")
    max_new_tokens: int = Field(2048, description="Answer budget of one extraction request, in tokens.")
    answer_segment: int = Field(512, description="New tokens a batch decodes at most before a longer answer goes on "
                                "in a later batch; 0: the whole budget at once.")
    thinking_tokens: int = Field(1024, description="Thought budget with --thinking, in tokens.")
    summary_tokens: int = Field(384, description="Token budget of a --summarize answer.")
    summary_words: int = Field(200, description="Words a summary is asked to have.")
    max_pages_in_memory: int | None = Field(None, description="Rendered pages held at once; None: 2 x batch_size + 8.")
    max_context_tokens: int | None = Field(None, description="Context a page group may fill; None: the model's "
                                           "window.")
    page_text: bool = Field(True, description="Give the page's text layer beside its image when the layer is usable.")
    page_text_chars: int = Field(4000, description="Characters of text layer given per page at most.")
    grammar: bool = Field(True, description="Constrain answers to the schema's JSON (off only to measure speed).")
    repair: bool = Field(True, description="Ask once more when an answer does not validate.")
    min_new_tokens: int = Field(0, description="Fixed answer length, for benchmarks with the grammar off.")
    decode: str = Field("loop", description="Decoder: loop (docpipe's, one CUDA graph per step) or generate "
                        "(transformers', the slower reference).")
    decode_compile: bool | str = Field(False, description="torch.compile the decode step: false, true (one graph) "
                                       "or layers (each decoder layer); opt-in.")
    decode_attention: str = Field("auto", description="Kernel of a decode step's attention: auto, sdpa or matmul.")
    prefill_rows: int | None = Field(None, description="Rows per prefill forward; 0: all; None: planned on CUDA, "
                                     "16 elsewhere.")
    prefill_attention: str = Field("auto", description="Prefill attention: flex (block-sparse), sdpa, or auto (flex "
                                   "on CUDA).")
    shared_prefix: bool = Field(True, description="Give the instructions, fields and JSON Schema first (in the system "
                                "turn) and prefill them once for all rows of a batch; false: page images first, every "
                                "row prefills its whole prompt.")
    vision_chunk: int = Field(16, description="Pages per vision-tower call inside a batch; 0: the model's own path.")
    vision_ahead: bool = Field(True, description="Encode pages already rasterized while a batch waits for the rest.")
    vision_overlap: bool | str = Field("auto", description="Encode the next batch's pages during a decode on a second "
                                       "stream; auto: mixture-of-experts models on CUDA.")
    vision_compile: bool | str = Field(True, description="Compile the vision tower on CUDA: true/dynamic, static or "
                                       "false.")
    text_compile: bool = Field(True, description="Fuse the text model's norms, MLPs, router and RoPE on CUDA.")
    vision_sdpa_backend: str | None = Field(None, description="SDPA backend of the vision tower: flash, efficient, "
                                            "cudnn, math; None: PyTorch chooses.")
    batch_wait_s: float = Field(1.0, description="Seconds a partial batch waits for pages before it runs.")
    prep_workers: int = Field(1, description="Processes that render pages and cut them into patches; 1: the "
                                "rasterizing thread.")
    moe_grouped: bool = Field(True, description="Grouped-GEMM experts forward on CUDA for mixture-of-experts models.")
    quantize: str = Field("auto", description="Weights at load time: none (bf16), fp8, int8, int4, or auto (bf16 "
                          "where its weights take at most half the GPU, else fp8 where the GPU has fp8 matmuls, else "
                          "the most precise mode that fits; quantize.py).")
    kv_cache: str = Field("auto", description="How decode steps keep keys and values: bf16 (as computed), fp8 (one "
                          "byte: half the cache a step reads, about twice the rows; GPUs of compute capability 8.9+) "
                          "or auto (fp8 on such a GPU, else bf16); kernels/kv_fp8.py.")
    prefill_bf16: bool = Field(True, description="fp8 and int8 weights: prefills (and int8 Linears in decode "
                               "steps too) multiply by each layer's weight turned back into bf16 (a layer at a time), "
                               "fp8 decode steps keep the quantized kernels; false: the quantized kernels for both. "
                               "int4 always prefills through bf16 weights.")

    @model_validator(mode="after")
    def _one_of_choices(self) -> GemmaSettings:
        for key, allowed in CHOICES.items():  # refused before minutes of loading weights, not after
            value = getattr(self, key)
            if value not in allowed or (isinstance(value, bool) and not any(a is value for a in allowed)):
                raise ValueError(f"{key} must be {', '.join(repr(a) for a in allowed[:-1])} or "
                                 f"{allowed[-1]!r}, not {value!r}")
        return self


#: settings that take one of a few values
CHOICES: dict[str, tuple[Any, ...]] = {"decode": ("loop", "generate"), "prefill_attention": ("auto", "flex", "sdpa"),
                                       "decode_attention": DECODE_KERNELS,
                                       "vision_overlap": (False, True, "auto"), "quantize": QUANTIZE_CHOICES,
                                       "kv_cache": KV_CHOICES}
#: every setting's default, by name
DEFAULTS: dict[str, Any] = GemmaSettings().model_dump()
#: JSON object of settings, for tuning without flags, e.g. DOCPIPE_GEMMA='{"batch_size": 32}'
SETTINGS_ENV = "DOCPIPE_GEMMA"


def from_env() -> GemmaSettings:
    """The settings in ``DOCPIPE_GEMMA`` (defaults for the rest); EngineUnavailable names what is wrong."""
    env = os.environ.get(SETTINGS_ENV, "").strip()
    try:
        values = json.loads(env) if env else {}
    except json.JSONDecodeError as e:
        raise EngineUnavailable(f"{SETTINGS_ENV} is not a JSON object: {e.msg}") from e
    if not isinstance(values, dict):
        raise EngineUnavailable(f"{SETTINGS_ENV} is not a JSON object")
    return _validated(values, SETTINGS_ENV)


def engine_settings(options: EngineOptions | Mapping[str, Any]) -> dict[str, Any]:
    """The effective settings as a dict: the typed ``gemma`` settings an EngineOptions carries (from ``Settings``:
    flag > env > toml) or else ``DOCPIPE_GEMMA``, overridden by ``EngineOptions.extra`` (scripts) or a plain
    mapping of overrides."""
    if isinstance(options, Mapping):
        base, extra = from_env(), options
    else:
        typed = options.settings.get("gemma")
        base = typed if isinstance(typed, GemmaSettings) else from_env() if typed is None else \
            _validated(dict(typed), "gemma settings")
        extra = options.extra
    overrides = {k: v for k, v in extra.items() if k in GemmaSettings.model_fields and v is not None}
    return _validated({**base.model_dump(exclude_unset=True), **overrides}, "gemma settings").model_dump()


def _validated(values: Mapping[str, Any], where: str) -> GemmaSettings:
    try:
        return GemmaSettings.model_validate(values)
    except ValidationError as e:
        unknown = sorted(str(err["loc"][0]) for err in e.errors() if err["type"] == "extra_forbidden")
        if unknown:
            raise EngineUnavailable(f"{where} has unknown keys {unknown}; known: {sorted(DEFAULTS)}") from None
        err = e.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        raise EngineUnavailable(msg if err["type"] == "value_error" else f"{where}: {err['loc'][0]}: {msg}") from None


def quantize_setting(options: EngineOptions | Mapping[str, Any]) -> str:
    """The ``quantize`` setting, for ``--engine auto`` to know whether a model fits before an engine is made;
    "none" when the settings do not validate (the engine refuses them, with the reason, when it is made)."""
    try:
        return str(engine_settings(options)["quantize"])
    except EngineUnavailable:
        return "none"


def vision_overlap_on(setting: Any, moe: bool, device: str) -> bool:
    """Whether the next batch's pages are encoded during a decode: ``vision_overlap`` true or false as set; "auto"
    where it was measured to pay, a mixture-of-experts model on CUDA."""
    return moe and device == "cuda" if setting == "auto" else bool(setting)
