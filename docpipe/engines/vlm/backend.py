"""The seam between the VLM layer and a model runtime: a small Protocol and the plan a backend hands back.

A backend only turns prompts into text. Everything the vision-language engines do alike (rendering at the token
budget, page grouping, prompts, parse and repair, the merge of page groups, summaries, bounded concurrency) lives
in ``VlmEngine``; Gemma in-process, OpenAI-compatible servers and vLLM implement this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ...models import EngineOutput
from ...rasterize import RenderSpec
from ...schemas import SchemaInfo
from .types import Reply, Request


@dataclass
class Plan:
    """How a backend wants a run shaped, fixed when it starts: page rendering and encoding, group sizes, budgets."""

    spec: RenderSpec  # how pages are rendered (the pixels the image-token budget uses)
    prepare: Callable[[Any], tuple[Any, int]]  # rendered page image -> (page payload, prompt tokens it costs)
    count: Callable[[str], int] = lambda text: len(text) // 3  # prompt tokens of a text
    group_tokens: int = 10**9  # prompt tokens for pages (and their text) in one request
    group_pages: int = 8  # pages in one request at most
    pages_in_memory: int = 32  # pages rendered and not answered yet, at most
    answer_tokens: int = 2048  # new tokens of an extraction answer
    summary_tokens: int = 384
    summary_words: int = 200
    page_text: bool = True  # send a page's usable text layer beside its image
    page_text_chars: int = 4000  # per page
    repair: bool = True  # one repair request for an answer that does not parse or validate
    lanes: int = 1  # generate() calls in flight at once (the fan-out driver)
    batch: int = 1  # requests per generate() call at most (the fan-out driver)
    shared_first: bool = False  # extraction prompts give what they share before the pages (messages.extraction)


@runtime_checkable
class Backend(Protocol):
    """A model runtime. ``generate`` may be called from several threads at once when the plan has lanes > 1."""

    @property
    def model_name(self) -> str | None:
        """The model that answers (stored with each extraction)."""

    def check(self) -> str | None:
        """None if the backend can run here, else one line saying why not (missing package, weights, server)."""

    def start(self, schema: SchemaInfo, thinking: bool) -> Plan:
        """Load what a run needs (weights, a grammar for the schema, an HTTP pool) and say how to shape it."""

    def generate(self, requests: list[Request]) -> list[Reply]:
        """One reply per request, in any order."""

    def close(self) -> None:
        """Release the model, GPU memory, connections."""


class Driver(Protocol):
    """What sends a run's requests to the backend and hands replies back to the engine: ``fanout.FanOut`` (bounded
    concurrency) or a backend's own scheduler (Gemma's batches)."""

    def run(self) -> Iterator[EngineOutput]:
        """The run's finished documents, as they finish."""
