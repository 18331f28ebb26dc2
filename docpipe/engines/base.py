"""Engines: read a document's pages and fill a schema. One small interface, a registry, and the auto choice.

An engine takes a stream of DocJob and yields one EngineOutput per job, in any order. It owns its parallelism
(worker processes for OCR, batches on a GPU, concurrent HTTP requests) and must keep memory bounded: pull jobs
lazily, hold a bounded number of pages. Engines never touch the store; the pipeline stores. An engine whose work
runs in other processes may finish each document there (validate it, attach evidence: ``docpipe.finish``) and yield
the ``DocResult``, so the one process that lands results is not the bottleneck.

Registering an engine imports nothing heavy: the registry holds module paths, loaded on use. Third-party engines
join through the ``docpipe.engines`` entry-point group.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import EngineUnavailable, InputError
from ..models import EngineOutput, ErrorItem, Outcome, SourceFile, Status
from ..schemas import SchemaInfo

#: kind -> "module:Class"; built-ins use the same mechanism as plugins.
BUILTIN_ENGINES: dict[str, str] = {
    "offline": "docpipe.engines.offline.engine:OfflineEngine",
    "gemma": "docpipe.engines.gemma.engine:GemmaEngine",
    "openai": "docpipe.engines.openai.engine:OpenAIEngine",
    "vllm": "docpipe.engines.vllm.engine:VllmEngine",
}


@dataclass(frozen=True)
class DocJob:
    """One document to process with one schema."""

    source: SourceFile
    schema_ref: str  # resolve with docpipe.schemas.resolve (works in worker processes)
    password: str | None = None
    summarize: bool = False
    max_pages: int = 2_000

    def open(self) -> Any:
        """The document, opened with this job's password and page limit (a ``rasterize.Document``; close it, or
        use it in a ``with`` block)."""
        from ..rasterize import open_document

        return open_document(self.source, password=self.password, max_pages=self.max_pages)


@dataclass
class EngineOptions:
    """Options every engine understands, plus each engine's settings by kind: ``settings["gemma"]`` is a
    ``GemmaSettings``, ``settings["openai"]`` an ``OpenAISettings``, another engine's what ``[engines.KIND]`` holds.
    ``docpipe.config.Settings.engine_options()`` builds it. ``extra`` overrides settings by name for callers written
    before the typed settings; the engine validates it with its own model."""

    workers: int = 1
    model: str | None = None
    image_tokens: int = 1120
    thinking: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Engine(ABC):
    """The engine interface. Subclasses set ``kind`` and implement ``run``."""

    kind: ClassVar[str] = ""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options

    @classmethod
    def unavailable_reason(cls, options: EngineOptions) -> str | None:
        """None if the engine can run here, else one line saying why not (missing extra, weights, device)."""
        return None

    @property
    def model_name(self) -> str | None:
        """The model that produced results (stored with each extraction)."""
        return self.options.model

    @abstractmethod
    def run(self, jobs: Iterable[DocJob], schema: SchemaInfo) -> Iterator[Outcome]:
        """Process jobs lazily, yielding one output per job (any order): an ``EngineOutput``, or a finished
        ``DocResult`` (``docpipe.finish``) where the engine's worker processes can validate and ground it
        themselves."""

    def close(self) -> None:
        """Release processes, GPU memory, HTTP pools."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unreadable(exc: BaseException) -> tuple[Status, ErrorItem]:
    """A document's status and error for what stopped it being read: bad input is a status, not a crash.

    InputError subclasses carry their status (encrypted, empty, too_large); MemoryError means too large;
    anything else from docpipe is a plain failure, retried on the next run.
    """
    if isinstance(exc, InputError):
        return Status(getattr(exc, "status", "failed")), ErrorItem("rasterize", str(exc))
    if isinstance(exc, MemoryError):
        return Status.TOO_LARGE, ErrorItem("rasterize", "out of memory while reading this file (a worker process "
                                                        "stops at DOCPIPE_WORKER_MEMORY_MB, default 1536)")
    return Status.FAILED, ErrorItem("engine", str(exc) or type(exc).__name__)


def mark_unreadable(out: EngineOutput, exc: BaseException) -> EngineOutput:
    """Record ``unreadable(exc)`` on an engine output (no data)."""
    out.status, item = unreadable(exc)
    out.data = None
    out.errors.append(item)
    return out


def registry() -> dict[str, str]:
    """Known engine kinds: built-ins plus the ``docpipe.engines`` entry points."""
    kinds = dict(BUILTIN_ENGINES)
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="docpipe.engines"):
            kinds.setdefault(ep.name, ep.value)
    except Exception:  # a broken third-party distribution must not break docpipe
        pass
    return kinds


def engine_class(kind: str) -> type[Engine]:
    """Load the class for a kind; an unknown kind lists the known ones."""
    kinds = registry()
    if kind not in kinds:
        raise EngineUnavailable(f"unknown engine {kind!r}; known: {', '.join(sorted(kinds))}, auto")
    mod_name, _, cls_name = kinds[kind].partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise EngineUnavailable(f"engine {kind!r} cannot be imported: {e}") from e
    return getattr(mod, cls_name)


def choose(kind: str, options: EngineOptions) -> tuple[str, str]:
    """(kind, why) for ``--engine``: auto prefers Gemma when weights and a device are here, then a configured
    server, then the offline engine; an explicit kind is checked and refused with its reason."""
    if kind != "auto":
        cls = engine_class(kind)
        reason = cls.unavailable_reason(options)
        if reason:
            raise EngineUnavailable(f"engine {kind!r} cannot run: {reason}")
        return kind, "chosen with --engine"
    reasons = []
    why_not = _why_not("gemma", options)
    if why_not is None:
        return "gemma", f"Gemma weights and a device are available ({options.model or 'default model'})"
    reasons.append(f"gemma: {why_not}")
    if options.extra.get("base_url") or getattr(options.settings.get("openai"), "base_url", None) \
            or os.environ.get("DOCPIPE_BASE_URL"):
        why_srv = _why_not("openai", options)
        if why_srv is None:
            return "openai", "a server is configured (--base-url / DOCPIPE_BASE_URL / docpipe.toml)"
        reasons.append(f"openai: {why_srv}")
    return "offline", "; ".join(reasons) or "no model engine available"


def _why_not(kind: str, options: EngineOptions) -> str | None:
    """Why engine ``kind`` cannot run here (None: it can), a failure to load it included."""
    try:
        return engine_class(kind).unavailable_reason(options)
    except EngineUnavailable as e:
        return str(e)


def create(kind: str, options: EngineOptions) -> Engine:
    return engine_class(kind)(options)
