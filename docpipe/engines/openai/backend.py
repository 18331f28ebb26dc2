"""The OpenAI-compatible server backend: vLLM, SGLang, llama.cpp, Ollama, LM Studio and ``transformers serve`` all
speak ``/v1/chat/completions``; this is also how a batch grows past one machine (many docpipe workers, one or many
servers). Pages go out as data URLs at the pixels of the image-token budget, with their text layer when usable.

An asyncio loop in one background thread carries every HTTP request; the fan-out driver keeps ``--concurrency``
generate() calls in flight, one request each. Server trouble (after retries) fails the document with the server's
reason; a failed summary is noted and the document kept.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

from ...errors import DocpipeError, EngineUnavailable
from ...models import ErrorItem
from ...schemas import SchemaInfo
from ..base import EngineOptions
from ..vlm.backend import Plan
from ..vlm.messages import chat_messages, data_url
from ..vlm.prompting import render_spec_for_tokens
from ..vlm.types import Prompt, Reply, Request
from .config import ServerConfig, load_config

#: page text beyond this many characters per request is left out of the prompt (the images carry the page)
MAX_TEXT_CHARS = 60_000


#: How servers say a prompt does not fit their context (vLLM, SGLang, llama.cpp, OpenAI's own wording).
_CONTEXT_FULL = re.compile(r"HTTP 4(00|13).*(max_model_len|max-model-len|maximum model length|maximum context length|"
                           r"context length|context window|prompt is too long|too many tokens|exceeds the context)",
                           re.I | re.S)


def shrink(url: str, max_pixels: int, fmt: str, quality: int) -> str:
    """A data-URL image scaled down to at most ``max_pixels`` (a server's context refused the larger one)."""
    import base64
    import io

    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as img:
        scale = min(1.0, (max_pixels / (img.width * img.height)) ** 0.5)
        small = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))),
                           Image.Resampling.LANCZOS) if scale < 1 else img.copy()
    return data_url(small, fmt, quality)


class OpenAIBackend:
    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.problem: str | None = None
        try:
            self.cfg: ServerConfig = load_config(options)
        except EngineUnavailable as e:
            self.cfg, self.problem = ServerConfig(), str(e)
        self._model: str | None = self.cfg.model
        self.requests_by_server: dict[str, int] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pool: Any = None
        self._model_lock: asyncio.Lock | None = None
        self._model_error: str | None = None

    @property
    def model_name(self) -> str | None:
        return self._model

    def check(self) -> str | None:
        try:
            import httpx  # noqa: F401
        except ImportError:
            return "httpx is not installed (pip install httpx)"
        if self.problem:
            return self.problem
        if not self.cfg.base_urls:
            return ("no server configured: pass --base-url http://HOST:PORT/v1 (comma-separated for several), set "
                    "DOCPIPE_BASE_URL, or put base_url in docpipe.toml (see docs/serving.md)")
        return None

    def start(self, schema: SchemaInfo, thinking: bool) -> Plan:
        if self.problem:
            raise EngineUnavailable(self.problem)
        from .client import ServerPool

        self.schema_name, self.json_schema = schema.name, schema.json_schema
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, name="docpipe-http", daemon=True)
            self.thread.start()

            async def make() -> ServerPool:
                return ServerPool(self.cfg)

            self.pool = asyncio.run_coroutine_threadsafe(make(), self.loop).result()
        cfg, per = self.cfg, max(1, self.cfg.pages_per_request)
        self.tokens = self.options.image_tokens  # lowered for the rest of the run when a server's context is full
        self.plan = Plan(spec=render_spec_for_tokens(self.tokens),
                         prepare=lambda img: (data_url(img, cfg.image_format, cfg.jpeg_quality), self.tokens),
                         group_pages=per, pages_in_memory=2 * cfg.concurrency * per + per,
                         answer_tokens=cfg.max_tokens, summary_tokens=max(256, cfg.summary_words * 4),
                         summary_words=cfg.summary_words, page_text_chars=MAX_TEXT_CHARS // per,
                         lanes=cfg.concurrency, batch=1)
        return self.plan

    def generate(self, requests: list[Request]) -> list[Reply]:
        assert self.loop is not None

        async def all_of() -> list[Reply]:
            return list(await asyncio.gather(*(self._one(r) for r in requests)))

        return asyncio.run_coroutine_threadsafe(all_of(), self.loop).result()

    async def _one(self, req: Request) -> Reply:
        from .client import ServerError

        prompt, tokens = req.prompt, self.tokens
        while True:
            try:
                model = await self._model_name()
                reply = await self.pool.chat(chat_messages(prompt), model=model,
                                             schema=self.json_schema if req.json else None,
                                             schema_name=self.schema_name, thinking=req.think, max_tokens=req.max_new)
                break
            except ServerError as e:
                lower = self._lower_budget(str(e), tokens) if prompt.images else None
                if lower is None:
                    return Reply(req, None, error=str(e))
                pixels = render_spec_for_tokens(lower).max_pixels
                images = await asyncio.get_running_loop().run_in_executor(
                    None, lambda urls=prompt.images, px=pixels: [
                        shrink(u, px, self.cfg.image_format, self.cfg.jpeg_quality) for u in urls])
                prompt, tokens = Prompt(prompt.messages, prompt.texts, images), lower
                req.doc.errors.append(ErrorItem("engine", f"image budget lowered to {lower} tokens a page: {e}"))
        return Reply(req, reply.content, reply.reasoning, mode=reply.mode, seconds=reply.seconds,
                     attempts=reply.attempts)

    def _lower_budget(self, error: str, tokens: int) -> int | None:
        """After a server said a prompt is longer than its context: the next smaller image budget, which later
        pages are rendered at too (said once, on the "docpipe" logger); None for other errors or at the floor."""
        from ..vlm.prompting import IMAGE_TOKEN_BUDGETS

        if not _CONTEXT_FULL.search(error):
            return None
        smaller = [b for b in IMAGE_TOKEN_BUDGETS if b < tokens]
        if not smaller:
            return None
        if smaller[-1] < self.tokens:  # the first request to find the limit lowers it for all that follow
            self.tokens = smaller[-1]
            self.plan.spec = render_spec_for_tokens(self.tokens)
            logging.getLogger("docpipe").warning(
                "the server's context is too small for %s image tokens a page; sending %s from now on "
                "(--image-tokens %s starts there)", tokens, self.tokens, self.tokens)
        return smaller[-1]

    async def _model_name(self) -> str:
        """The model to ask for: --model, else the only/first one the server lists (looked up once)."""
        if self._model:
            return self._model
        if self._model_lock is None:
            self._model_lock = asyncio.Lock()
        async with self._model_lock:
            if not self._model and self._model_error is None:
                try:
                    ids = await self.pool.list_models()
                    if ids:
                        self._model = ids[0]
                    else:
                        self._model_error = "no --model given and the server lists no models"
                except DocpipeError as e:
                    self._model_error = f"no --model given and {e}"
        if self._model:
            return self._model
        from .client import ServerError

        err, self._model_error = self._model_error, None  # try again for the next request
        raise ServerError(err or "no model")

    def close(self) -> None:
        """Stop the loop; keeps the requests sent per server (for the benchmark and tests)."""
        if self.loop is None:
            return
        loop, self.loop = self.loop, None
        self.requests_by_server = {e.url: e.requests for e in self.pool.endpoints}

        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.pool.aclose()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        except Exception:  # shutting down anyway
            pass
        loop.call_soon_threadsafe(loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            loop.close()
