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

    @classmethod
    def check_server(cls, options: EngineOptions) -> tuple[bool, str]:
        """Ask each server for its models (``docpipe engines``): (usable, what it said), naming the model asked
        for when a server does not serve it."""
        import httpx

        from .config import load_config

        cfg = load_config(options)
        headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        said = []
        for url in cfg.base_urls:
            try:
                r = httpx.get(f"{url}/models", headers=headers, timeout=min(5.0, cfg.connect_timeout_s),
                              trust_env=False)
                r.raise_for_status()
                ids = [m["id"] for m in r.json().get("data", []) if isinstance(m, dict) and "id" in m]
            except (httpx.HTTPError, ValueError, AttributeError) as e:
                return False, f"{url} does not answer: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if cfg.model and cfg.model not in ids:
                return False, f"{url} does not serve model {cfg.model!r} (it serves: {', '.join(ids) or 'none'})"
            said.append(f"{url} serves {', '.join(ids) or 'no models'}")
        return True, "; ".join(said)

    @property
    def requests_by_server(self) -> dict[str, int]:
        return getattr(self.backend, "requests_by_server", {})
