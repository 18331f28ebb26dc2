"""The serve-anywhere engine: Gemma 4 (or any vision model) behind an OpenAI-compatible server.

vLLM, SGLang, llama.cpp, Ollama, LM Studio and ``transformers serve`` all speak ``/v1/chat/completions``; this is
also how a batch grows past one machine (many docpipe workers, one or many servers). Pages go out as JPEG data URLs
at the pixels the image-token budget uses, with the page's text layer when it has one; the answer is parsed,
checked against the schema, repaired once, and handed to the pipeline, which validates and stores it.

Concurrency: an asyncio loop in one background thread carries every HTTP request (``--concurrency`` in flight);
documents are opened and rendered in a single render thread (PyMuPDF is not thread-safe) and at most
2 x concurrency documents are in progress, so memory stays bounded however long the input list is. Ctrl-C
cancels what is in flight and hands back what is finished.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from ...errors import DocpipeError, EngineUnavailable, InputError
from ...models import EngineOutput, ErrorItem, Status
from ...schemas import SchemaInfo
from ..base import DocJob, Engine, EngineOptions, mark_unreadable
from .config import ServerConfig, load_config

T = TypeVar("T")
#: How servers say a prompt does not fit their context (vLLM, SGLang, llama.cpp, OpenAI's own wording).
_CONTEXT_FULL = re.compile(r"HTTP 4(00|13).*(max_model_len|max-model-len|maximum model length|maximum context length|"
                           r"context length|context window|prompt is too long|too many tokens|exceeds the context)",
                           re.I | re.S)
KIND = "openai"


class OpenAIEngine(Engine):
    kind = KIND

    def __init__(self, options: EngineOptions) -> None:
        super().__init__(options)
        self.cfg: ServerConfig = load_config(options)
        self._model: str | None = self.cfg.model
        self.requests_by_server: dict[str, int] = {}

    @classmethod
    def unavailable_reason(cls, options: EngineOptions) -> str | None:
        try:
            import httpx  # noqa: F401
        except ImportError:
            return "httpx is not installed (pip install httpx)"
        try:
            cfg = load_config(options)
        except EngineUnavailable as e:
            return str(e)
        if not cfg.base_urls:
            return ("no server configured: pass --base-url http://HOST:PORT/v1 (comma-separated for several), set "
                    "DOCPIPE_BASE_URL, or put base_url in docpipe.toml (see docs/serving.md)")
        return None

    @classmethod
    def check_server(cls, options: EngineOptions) -> tuple[bool, str]:
        """Ask each server for its models (``docpipe engines``): (usable, what it said), naming the model asked
        for when a server does not serve it."""
        import httpx

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
    def model_name(self) -> str | None:
        return self._model

    def run(self, jobs: Iterable[DocJob], schema: SchemaInfo) -> Iterator[EngineOutput]:
        runner = _Runner(self, schema)
        pending: dict[cf.Future[EngineOutput], DocJob] = {}
        it = iter(jobs)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < 2 * self.cfg.concurrency:
                    try:
                        job = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[runner.submit(job)] = job
                if not pending:
                    return
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    yield _result(fut, pending.pop(fut), self._model)
        except KeyboardInterrupt:
            for fut in pending:
                fut.cancel()  # in-flight requests are cancelled; their documents stay to do
            for fut, job in list(pending.items()):
                if fut.done() and not fut.cancelled():
                    del pending[fut]
                    yield _result(fut, job, self._model)
            raise
        finally:
            for fut in pending:
                fut.cancel()
            self.requests_by_server = runner.close()


def _result(fut: cf.Future[EngineOutput], job: DocJob, model: str | None) -> EngineOutput:
    try:
        return fut.result()
    except Exception as e:  # a bug, not the server: record it and go on
        return EngineOutput(source=job.source, status=Status.FAILED, engine=KIND, model=model,
                            errors=[ErrorItem("engine", f"internal error: {type(e).__name__}: {e}")])


@dataclass
class _Answer:
    """One page group's answer after at most one repair: data (None if no JSON object), raw text, problem."""

    data: dict[str, Any] | None
    raw: str
    thinking: str | None
    problem: str | None
    mode: str
    repaired: bool
    requests: int
    seconds: float


class _Runner:
    """The event-loop thread, the render thread and the server pool for one ``run``."""

    def __init__(self, engine: OpenAIEngine, schema: SchemaInfo) -> None:
        from .client import ServerPool
        from .pages import PromptSchema
        from ..vlm.prompting import render_spec_for_tokens

        self.engine = engine
        self.cfg = engine.cfg
        self.schema = schema
        self.prompt_schema = PromptSchema(schema)
        self.json_schema = self.prompt_schema.json_schema
        self.tokens = engine.options.image_tokens
        self.spec = render_spec_for_tokens(engine.options.image_tokens)
        self.thinking = engine.options.thinking
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="docpipe-http", daemon=True)
        self.thread.start()
        self.render = cf.ThreadPoolExecutor(1, thread_name_prefix="docpipe-render")

        async def make() -> ServerPool:
            return ServerPool(self.cfg)

        self.pool: ServerPool = asyncio.run_coroutine_threadsafe(make(), self.loop).result()
        self._model_lock: asyncio.Lock | None = None
        self._model_error: str | None = None

    def submit(self, job: DocJob) -> cf.Future[EngineOutput]:
        return asyncio.run_coroutine_threadsafe(self.document(job), self.loop)

    def close(self) -> dict[str, int]:
        """Stop everything; returns requests sent per server (for the benchmark and tests)."""
        counts = {e.url: e.requests for e in self.pool.endpoints}

        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.pool.aclose()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(timeout=10)
        except Exception:  # shutting down anyway
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()
        self.render.shutdown(wait=False, cancel_futures=True)
        return counts

    async def _in_render(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.render, fn, *args)

    async def model(self) -> str:
        """The model to ask for: --model, else the only/first one the server lists (looked up once)."""
        if self.engine._model:
            return self.engine._model
        if self._model_lock is None:
            self._model_lock = asyncio.Lock()
        async with self._model_lock:
            if not self.engine._model and self._model_error is None:
                try:
                    ids = await self.pool.list_models()
                    if ids:
                        self.engine._model = ids[0]
                    else:
                        self._model_error = "no --model given and the server lists no models"
                except DocpipeError as e:
                    self._model_error = f"no --model given and {e}"
        if self.engine._model:
            return self.engine._model
        from .client import ServerError

        err, self._model_error = self._model_error, None  # try again for the next document
        raise ServerError(err or "no model")

    async def document(self, job: DocJob) -> EngineOutput:
        """Read, send and check one document; server trouble becomes FAILED with the server's reason."""
        from .client import ServerError
        from .pages import PageStream

        t0 = time.perf_counter()
        out = EngineOutput(source=job.source, engine=KIND, model=self.engine._model)
        try:
            stream = await self._in_render(PageStream, job)
        except (DocpipeError, MemoryError) as e:
            return mark_unreadable(out, e)
        try:
            await self._extract_document(job, stream, out)
        except ServerError as e:
            out.status = Status.FAILED
            out.data = None
            out.errors.append(ErrorItem("engine", str(e)))
        except InputError as e:
            mark_unreadable(out, e)
        finally:
            await self._in_render(stream.close)
        out.timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return out

    async def _extract_document(self, job: DocJob, stream: Any, out: EngineOutput) -> None:
        from ..vlm.prompting import render_spec_for_tokens
        from .client import ServerError
        from .pages import extraction_messages, shrink_group, summary_messages

        lowered = ""
        model = await self.model()
        out.model = model
        total = stream.page_count
        per = self.cfg.pages_per_request
        answers: list[_Answer] = []
        texts: list[str] = []
        whole = None
        render_ms = encode_ms = 0.0
        first = 1
        while first <= total:
            group_tokens = self.tokens
            group = await self._in_render(stream.next_group, per, self.spec, self.cfg.image_format,
                                          self.cfg.jpeg_quality)
            if not group.infos:
                break
            render_ms += group.render_ms
            encode_ms += group.encode_ms
            out.pages.extend(group.infos)
            texts.extend(group.texts)
            t = time.perf_counter()
            messages = extraction_messages(self.prompt_schema, group, first, total)
            out.timings["build_ms"] = out.timings.get("build_ms", 0.0) + (time.perf_counter() - t) * 1000
            while True:
                try:
                    answers.append(await self._ask(messages, model))
                    break
                except ServerError as e:
                    lower = self._lower_budget(str(e), group_tokens)
                    if lower is None:
                        raise
                    lowered = f"image budget lowered to {lower} tokens a page: {e}"
                    group = await self._in_render(shrink_group, group, render_spec_for_tokens(lower).max_pixels,
                                                  self.cfg.image_format, self.cfg.jpeg_quality)
                    messages = extraction_messages(self.prompt_schema, group, first, total)
                    group_tokens = lower
            if first == 1 and len(group.infos) >= total:
                whole = group
            first += len(group.infos)
            del group, messages
        _settle(out, answers)
        if lowered:  # recorded with the result (docpipe show, extractions.errors)
            out.errors.append(ErrorItem("engine", lowered))
        out.timings.update(render_ms=round(render_ms, 2), encode_ms=round(encode_ms, 2),
                           server_ms=round(sum(a.seconds for a in answers) * 1000, 2),
                           requests=float(sum(a.requests for a in answers)))
        if job.summarize:
            out.summary = await self._summary(summary_messages(whole, texts, self.cfg.summary_words), model, out)

    def _lower_budget(self, error: str, tokens: int) -> int | None:
        """After a server said the prompt is longer than its context: the next smaller image budget, used for the
        rest of the run (said once on stderr); None when the error is something else or no budget is left."""
        from ..vlm.prompting import IMAGE_TOKEN_BUDGETS, render_spec_for_tokens

        if not _CONTEXT_FULL.search(error):
            return None
        smaller = [b for b in IMAGE_TOKEN_BUDGETS if b < tokens]
        if not smaller:
            return None
        if smaller[-1] < self.tokens:  # the first document to find the limit lowers it for all that follow
            self.tokens = smaller[-1]
            self.spec = render_spec_for_tokens(self.tokens)
            logging.getLogger("docpipe").warning(
                "the server's context is too small for %s image tokens a page; sending %s from now on "
                "(--image-tokens %s starts there)", tokens, self.tokens, self.tokens)
        return smaller[-1]

    async def _ask(self, messages: list[dict[str, Any]], model: str) -> _Answer:
        """Ask for the group's JSON; if it does not parse or validate, show the model the problem once."""
        from ..vlm.prompting import repair_instructions

        reply = await self.pool.chat(messages, model=model, schema=self.json_schema, schema_name=self.schema.name,
                                     thinking=self.thinking)
        thought, answer = _split(reply.content, reply.reasoning)
        data, problem = _check(answer, self.schema)
        result = _Answer(data, answer, thought, problem, reply.mode, False, reply.attempts, reply.seconds)
        if problem is None:
            return result
        fix = messages + [{"role": "assistant", "content": answer or "(empty answer)"},
                          {"role": "user", "content": repair_instructions(answer, problem)}]
        reply2 = await self.pool.chat(fix, model=model, schema=self.json_schema, schema_name=self.schema.name,
                                      thinking=self.thinking)
        thought2, answer2 = _split(reply2.content, reply2.reasoning)
        data2, problem2 = _check(answer2, self.schema)
        thinking = "\n\n".join(t for t in (thought, thought2) if t) or None
        if data2 is None and data is not None:  # the repair made it worse: keep the first, parseable answer
            data2, problem2, answer2 = data, problem, answer
        return _Answer(data2, answer2, thinking, problem2, reply2.mode, True,
                       reply.attempts + reply2.attempts, reply.seconds + reply2.seconds)

    async def _summary(self, messages: list[dict[str, Any]], model: str, out: EngineOutput) -> str | None:
        from .client import ServerError

        try:
            reply = await self.pool.chat(messages, model=model, thinking=self.thinking,
                                         max_tokens=max(256, self.cfg.summary_words * 4))
        except ServerError as e:
            out.errors.append(ErrorItem("engine", f"summary not written: {e}"))
            return None
        _, text = _split(reply.content, reply.reasoning)
        return text.strip() or None


def _split(content: str, reasoning: str | None) -> tuple[str | None, str]:
    """Thought text (a separate field, or inline markers) and the answer."""
    from ..vlm.prompting import strip_server_thinking

    inline, answer = strip_server_thinking(content or "")
    thoughts = [t.strip() for t in (reasoning, inline) if t and t.strip()]
    return ("\n\n".join(thoughts) or None), answer


def _check(answer: str, schema: SchemaInfo) -> tuple[dict[str, Any] | None, str | None]:
    """(data, problem): the JSON object if there is one, and what is wrong with it (None if it validates)."""
    from pydantic import ValidationError

    from ..vlm.prompting import parse_json_object

    try:
        data = parse_json_object(answer)
    except ValueError as e:
        return None, str(e)
    try:
        schema.model.model_validate(data)
    except ValidationError as e:
        errs = e.errors(include_url=False)
        parts = [f"{'.'.join(str(p) for p in x.get('loc', ())) or '(root)'}: {x.get('msg', '')}" for x in errs[:5]]
        more = f" (+{len(errs) - 5} more)" if len(errs) > 5 else ""
        return data, "does not match the schema: " + "; ".join(parts) + more
    return data, None


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Answers for page groups -> one: lists concatenated, other values from the first group that has them."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, list):
                merged.setdefault(key, [])
                if isinstance(merged[key], list):
                    merged[key] = merged[key] + value
            elif merged.get(key) is None:
                merged[key] = value
    return merged


def _settle(out: EngineOutput, answers: list[_Answer]) -> None:
    """Fill data / status / raw text / thinking / method from the groups' answers."""
    thoughts = [a.thinking for a in answers if a.thinking]
    out.thinking = "\n\n".join(thoughts) or None
    modes = sorted({a.mode for a in answers})
    out.method = "+".join(modes) + ("+repair" if any(a.repaired for a in answers) else "")
    raw = "\n\n".join(a.raw for a in answers) if len(answers) == 1 else \
        "\n\n".join(f"--- request {i} ---\n{a.raw}" for i, a in enumerate(answers, 1))
    unparsed = [a for a in answers if a.data is None]
    if unparsed or not answers:
        out.status = Status.INVALID
        out.raw_text = raw
        why = unparsed[0].problem if unparsed else "no pages"
        out.errors.append(ErrorItem("validate", f"{why} (still after one repair request)"))
        return
    out.data = merge([a.data for a in answers if a.data is not None])
    if any(a.problem for a in answers):
        out.raw_text = raw  # the pipeline's validation stores it as invalid with pydantic's errors
