"""The serve-anywhere engine: Gemma 4 (or any vision model) behind an OpenAI-compatible server (``backend``)."""

from __future__ import annotations

from ..base import EngineOptions
from ..vlm.engine import VlmEngine
from .backend import OpenAIBackend

KIND = "openai"


class OpenAIEngine(VlmEngine):
    """The VLM layer over OpenAIBackend: one chat completion per page group, ``--concurrency`` in flight."""

    kind = KIND

    @classmethod
    def make_backend(cls, options: EngineOptions) -> OpenAIBackend:
        return OpenAIBackend(options)

    @property
    def requests_by_server(self) -> dict[str, int]:
        return getattr(self.backend, "requests_by_server", {})
