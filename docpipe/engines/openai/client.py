"""Talking to OpenAI-compatible servers: load balancing, retries, and learning what each server accepts.

Servers differ: vLLM, llama.cpp, Ollama and LM Studio enforce a ``json_schema`` response format, some only know
``json_object``, some refuse unknown fields such as ``chat_template_kwargs``. Each endpoint starts optimistic
and steps down once when refused (HTTP 400 naming the field), remembering it for the rest of the run, so a refusal
costs one request per server, not one per document. Transient trouble (429, 5xx, connection errors, timeouts) is
retried with exponential backoff and jitter, honouring ``Retry-After``, preferably on another server.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass, field
from typing import Any

from ...errors import EngineError
from .config import ServerConfig

#: Structured-output modes, most to least constrained.
MODES = ("json_schema", "json_object", "prompt")
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class ServerError(EngineError):
    """A request failed for good (after retries, or refused outright); the message is the server's reason."""


@dataclass
class Reply:
    """One chat completion: the answer text, the thought text the server separated out, and how it was asked."""

    content: str
    reasoning: str | None
    mode: str
    endpoint: str
    attempts: int
    seconds: float


@dataclass
class Endpoint:
    """One server URL and what has been learnt about it during this run."""

    url: str
    in_flight: int = 0
    mode: str = MODES[0]
    dropped: set[str] = field(default_factory=set)  # optional request fields this server refused
    cool_until: float = 0.0
    requests: int = 0
    confirmed: bool = False  # a structured request has succeeded: the mode is known
    probe: asyncio.Lock = field(default_factory=asyncio.Lock)  # one request finds the mode; the rest wait


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(resp: Any) -> str:
    """The server's own words: ``{"error": {"message": ..}}``, ``{"detail": ..}`` or the body's start."""
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or "").strip()[:300]
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err
        return str(err)[:300]
    return str(body)[:300]


class ServerPool:
    """Several base URLs behind one ``chat`` call: least in-flight wins, at most ``concurrency`` requests out."""

    def __init__(self, cfg: ServerConfig) -> None:
        import httpx

        self.cfg = cfg
        self.endpoints = [Endpoint(u) for u in cfg.base_urls]
        self._sem = asyncio.Semaphore(cfg.concurrency)
        headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        limits = httpx.Limits(max_connections=cfg.concurrency + 2, max_keepalive_connections=cfg.concurrency + 2)
        timeout = httpx.Timeout(cfg.timeout_s, connect=cfg.connect_timeout_s)
        self._http = httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout, trust_env=False)
        self._rr = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    def _pick(self) -> Endpoint:
        """Least in-flight among servers not cooling down (round-robin on ties); else the one that cools first."""
        now = time.monotonic()
        ready = [e for e in self.endpoints if e.cool_until <= now] or \
            [min(self.endpoints, key=lambda e: e.cool_until)]
        self._rr += 1
        n = len(self.endpoints)
        return min(ready, key=lambda e: (e.in_flight, (self.endpoints.index(e) - self._rr) % n))

    async def list_models(self) -> list[str]:
        """Model ids the first reachable server lists (to default ``--model`` when one model is served)."""
        import httpx

        last = "no server"
        for ep in self.endpoints:
            try:
                r = await self._http.get(f"{ep.url}/models", timeout=min(10.0, self.cfg.timeout_s))
                r.raise_for_status()
                return [m["id"] for m in r.json().get("data", []) if isinstance(m, dict) and "id" in m]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
                last = f"{ep.url}: {type(e).__name__}: {e}"
        raise ServerError(f"could not list the server's models ({last})")

    def _body(self, ep: Endpoint, model: str, messages: list[dict[str, Any]], schema: dict[str, Any] | None,
              schema_name: str, thinking: bool, max_tokens: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": messages, "temperature": 0, "max_tokens": max_tokens,
                                "stream": False}
        if schema is not None and ep.mode == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": schema_name, "schema": schema}}
        elif schema is not None and ep.mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        tp = self.cfg.thinking_param
        if tp in ("auto", "chat_template_kwargs"):
            body["chat_template_kwargs"] = {"enable_thinking": thinking}
        if tp == "reasoning_effort" or (tp == "auto" and thinking):
            body["reasoning_effort"] = "medium" if thinking else "none"
        if tp == "think":
            body["think"] = thinking
        for name in ep.dropped:
            body.pop(name, None)
        return body

    def _refused(self, ep: Endpoint, body: dict[str, Any], text: str) -> bool:
        """Step down after a 400 that names something we sent; True if the request is worth sending again."""
        low = text.lower()
        if "response_format" in body and any(k in low for k in ("response_format", "json_schema", "json_object",
                                                                  "response format", "schema")):
            ep.mode = MODES[min(MODES.index(ep.mode) + 1, len(MODES) - 1)]
            return True
        for name in ("chat_template_kwargs", "reasoning_effort", "think"):
            if name in body and name in low:
                ep.dropped.add(name)
                return True
        return False

    def _backoff(self, attempt: int) -> float:
        base = min(self.cfg.backoff_max_s, self.cfg.backoff_s * (2 ** attempt))
        return base * (0.5 + random.random() / 2)

    async def chat(self, messages: list[dict[str, Any]], *, model: str, schema: dict[str, Any] | None = None,
                   schema_name: str = "answer", thinking: bool = False, max_tokens: int | None = None) -> Reply:
        """One completion, retried on transient errors; ServerError with the last reason when it fails for good."""
        t0 = time.perf_counter()
        attempt = 0
        refusals = 0
        reason = "no attempt made"
        while True:
            ep = self._pick()
            wait = ep.cool_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            probing = schema is not None and not ep.confirmed
            if probing:
                await ep.probe.acquire()
                if ep.confirmed:
                    ep.probe.release()
                    probing = False
            try:
                body = self._body(ep, model, messages, schema, schema_name, thinking,
                                  max_tokens or self.cfg.max_tokens)
                resp, reason = await self._send(ep, body, reason)
                if resp is not None and resp.status_code == 200 and schema is not None:
                    ep.confirmed = True
            finally:
                if probing:
                    ep.probe.release()
            retry_after: float | None = None
            if resp is not None:
                if resp.status_code == 200:
                    try:
                        return self._reply(resp.json(), ep, attempt + 1, time.perf_counter() - t0)
                    except (ValueError, KeyError, IndexError, TypeError) as e:
                        raise ServerError(f"{ep.url}: malformed chat completion ({type(e).__name__}: {e})") from e
                text = _error_text(resp)
                reason = f"{ep.url}: HTTP {resp.status_code}: {text}"
                if resp.status_code in (400, 422) and refusals < 4 and self._refused(ep, body, text):
                    refusals += 1
                    continue
                if resp.status_code not in RETRY_STATUS:
                    raise ServerError(reason)
                retry_after = retry_after_seconds(resp.headers.get("retry-after"))
            if attempt >= self.cfg.retries:
                raise ServerError(f"{reason} (gave up after {attempt + 1} attempts)")
            delay = self._backoff(attempt)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.cfg.backoff_max_s))
            ep.cool_until = time.monotonic() + delay
            attempt += 1
            if not any(e.cool_until <= time.monotonic() for e in self.endpoints):
                await asyncio.sleep(delay)

    async def _send(self, ep: Endpoint, body: dict[str, Any], reason: str) -> tuple[Any, str]:
        """POST once under the concurrency limit: (response or None, reason for a transport failure)."""
        import httpx

        async with self._sem:
            ep.in_flight += 1
            ep.requests += 1
            try:
                return await self._http.post(f"{ep.url}/chat/completions", json=body), reason
            except httpx.TimeoutException:
                return None, f"{ep.url}: no answer within {self.cfg.timeout_s:g} s (timeout)"
            except httpx.TransportError as e:
                return None, f"{ep.url}: {type(e).__name__}: {e or 'connection failed'}"
            finally:
                ep.in_flight -= 1

    @staticmethod
    def _reply(data: dict[str, Any], ep: Endpoint, attempts: int, seconds: float) -> Reply:
        msg = data["choices"][0]["message"]
        content = msg.get("content") or ""
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        reasoning = msg.get("reasoning_content") or msg.get("reasoning") or msg.get("thinking") or None
        return Reply(content=content, reasoning=reasoning, mode=ep.mode, endpoint=ep.url, attempts=attempts,
                     seconds=seconds)
