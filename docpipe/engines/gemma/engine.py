"""The in-process Gemma 4 engine: the VLM layer (``vlm.engine``) over ``GemmaBackend``, with Gemma's own batch
scheduler (``scheduler``) and, with ``prep_workers`` > 1, pages prepared in worker processes (``prep``).

Module map: ``backend`` loads the model and generates one batch; ``scheduler`` forms batches across documents and
splits them on GPU out-of-memory; ``prep`` prepares pages in processes; ``inputs`` builds token ids and pixel
tensors; ``decoding`` holds the JSON grammar; ``settings`` the tuning surface; ``kernels/`` the GPU code paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..base import DocJob, EngineOptions
from ..vlm.backend import Plan
from ..vlm.engine import VlmEngine
from ..vlm.feed import Feed
from .backend import GemmaBackend, GemmaStats
from .models import choose_model
from .scheduler import GROW_AFTER, BatchScheduler
from .settings import quantize_setting


class GemmaEngine(VlmEngine):
    """Gemma 4 through transformers, in this process."""

    kind = "gemma"
    backend: GemmaBackend

    def __init__(self, options: EngineOptions, backend: GemmaBackend | None = None, *,
                 grow_after: int = GROW_AFTER) -> None:
        super().__init__(options, backend)
        self.grow_after = grow_after

    @classmethod
    def make_backend(cls, options: EngineOptions) -> GemmaBackend:
        return GemmaBackend(options)

    @classmethod
    def unavailable_reason(cls, options: EngineOptions) -> str | None:
        choice, _, why = choose_model(options.model, quantize_setting(options))
        return None if choice else why

    @classmethod
    def from_loaded(cls, model: Any, processor: Any, options: EngineOptions, **kw: Any) -> GemmaEngine:
        """An engine around a model and processor already in memory (benchmarks build random-weight models)."""
        return cls(options, GemmaBackend.from_loaded(model, processor, options), **kw)

    @property
    def stats(self) -> GemmaStats:
        return self.backend.stats

    def make_feed(self, jobs: Iterator[DocJob], plan: Plan) -> Feed:
        if self.backend.prep_workers > 1:
            from .prep import PoolFeed

            return PoolFeed(jobs, plan, self.backend)
        return Feed(jobs, plan)

    def driver(self) -> BatchScheduler:
        return BatchScheduler(self, self.grow_after)
