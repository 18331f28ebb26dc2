"""vLLM's in-process ``LLM`` class as a backend of the VLM layer: page groups batched by vLLM's own scheduler, the
answer held to the schema by vLLM's structured outputs (guided JSON). Everything else (pages, groups, prompts,
repair, merge, summaries) is ``VlmEngine``'s, as for the Gemma and server engines.

Options (``[engines.vllm]`` in docpipe.toml, ``--set NAME=VALUE`` with ``--engine vllm``, or
``EngineOptions.extra``): ``pages_per_request`` (8), ``vllm_batch`` (requests per ``LLM.chat`` call, 64)
and ``vllm_args`` (keyword arguments for ``vllm.LLM``, e.g. ``{"gpu_memory_utilization": 0.85}``).
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

from ...schemas import SchemaInfo
from ..base import EngineOptions
from ..vlm.backend import Plan
from ..vlm.engine import VlmEngine
from ..vlm.messages import chat_messages, data_url
from ..vlm.prompting import render_spec_for_tokens
from ..vlm.types import Reply, Request


def json_params(schema: dict[str, Any] | None, max_tokens: int, keep_special: bool) -> Any:
    """Greedy sampling, held to ``schema`` when given (vLLM >= 0.12 calls it structured_outputs, older versions
    guided_decoding)."""
    from vllm import SamplingParams

    kw: dict[str, Any] = {"temperature": 0.0, "max_tokens": max_tokens, "skip_special_tokens": not keep_special}
    if schema is not None:
        try:
            from vllm.sampling_params import StructuredOutputsParams

            kw["structured_outputs"] = StructuredOutputsParams(json=schema)
        except ImportError:
            from vllm.sampling_params import GuidedDecodingParams

            kw["guided_decoding"] = GuidedDecodingParams(json=schema)
    return SamplingParams(**kw)


class VllmBackend:
    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.llm: Any = None
        self.settings = {**(options.settings.get("vllm") or {}), **options.extra}
        self.pages = int(self.settings.get("pages_per_request") or 8)

    @property
    def model_name(self) -> str | None:
        return self.options.model

    def check(self) -> str | None:
        if importlib.util.find_spec("vllm") is None:
            return "vllm is not installed (pip install vllm)"
        if not self.options.model:
            return "pass --model (a checkpoint id or folder that vLLM can load)"
        return None

    def start(self, schema: SchemaInfo, thinking: bool) -> Plan:
        if self.llm is None:
            from vllm import LLM

            args = {"limit_mm_per_prompt": {"image": self.pages}, **(self.settings.get("vllm_args") or {})}
            self.llm = LLM(model=self.options.model, **args)
        self.json_schema = schema.json_schema
        tokens = self.options.image_tokens
        batch = int(self.settings.get("vllm_batch") or 64)
        return Plan(spec=render_spec_for_tokens(tokens), prepare=lambda img: (data_url(img), tokens),
                    group_pages=self.pages, pages_in_memory=2 * batch * self.pages, batch=batch)

    def generate(self, requests: list[Request]) -> list[Reply]:
        """One ``LLM.chat`` call per thinking setting (a chat-template argument), all requests of it at once."""
        replies = []
        for think in (False, True):
            part = [r for r in requests if r.think == think]
            if not part:
                continue
            t = time.perf_counter()
            params = [json_params(self.json_schema if r.json else None, r.max_new, think) for r in part]
            outs = self.llm.chat([chat_messages(r.prompt) for r in part], params, use_tqdm=False,
                                 chat_template_kwargs={"enable_thinking": think})
            dt = (time.perf_counter() - t) / len(part)
            for r, o in zip(part, outs):
                replies.append(Reply(r, o.outputs[0].text, mode="guided-json" if r.json else "text", seconds=dt))
        return replies

    def close(self) -> None:
        self.llm = None


class VllmEngine(VlmEngine):
    """The VLM layer over vLLM's ``LLM`` class, in this process."""

    kind = "vllm"

    @classmethod
    def make_backend(cls, options: EngineOptions) -> VllmBackend:
        return VllmBackend(options)
