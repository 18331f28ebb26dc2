"""One ingest run: discover -> skip done -> engine -> validate -> store, with statuses, resume and progress.

No printing here: the caller passes a ``Progress`` to hear about each document, and gets an ``IngestReport``.
Results are written in small batches, each one transaction, so an interrupted run keeps everything finished
before the interruption and the next run picks up the rest without duplicates.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from . import engines as engines_mod
from .discover import discover
from .engines import DocJob, EngineOptions
from .models import DocResult, EngineOutput, ErrorItem, SourceFile, Status
from .rasterize import DEFAULT_MAX_PAGES
from .schemas import SchemaInfo, resolve
from .sharing import SharedStore
from .store import DEFAULT_DB
from .validate import validate

CLAIM_POLL_SECONDS = 1.0


@dataclass
class IngestOptions:
    """Everything one ``docpipe ingest`` needs; the CLI builds it from flags."""

    paths: list[Path]
    schema: str = "invoice"
    db: Path = Path(DEFAULT_DB)
    engine: str = "auto"
    engine_options: EngineOptions = field(default_factory=EngineOptions)
    force: bool = False
    retry_invalid: bool = False
    password: str | None = None
    summarize: bool = False
    max_pages: int = DEFAULT_MAX_PAGES
    ray: str | None = None  # run the engine on a Ray cluster: "auto", "ray://host:10001", "local[:CPUS]"
    ray_actors: int | None = None  # engine actors on the cluster (default: fill it)


@dataclass
class Failure:
    path: str
    status: str
    reason: str


@dataclass
class IngestReport:
    engine: str = ""
    engine_reason: str = ""
    model: str | None = None
    schema: str = ""
    counts: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    interrupted: bool = False
    run_id: str = ""
    done_elsewhere: int = 0  # documents to do that another ingest on the same database did meanwhile

    @property
    def processed(self) -> int:
        return sum(v for k, v in self.counts.items() if k != Status.SKIPPED.value)

    @property
    def any_failed(self) -> bool:
        return any(f.status not in (Status.INVALID.value,) for f in self.failures)


class Progress(Protocol):
    def engine_chosen(self, kind: str, why: str, model: str | None) -> None: ...
    def planned(self, total_files: int, todo: int, skipped: int) -> None: ...
    def document_done(self, result: DocResult) -> None: ...


class _NoProgress:
    def engine_chosen(self, kind: str, why: str, model: str | None) -> None:
        pass

    def planned(self, total_files: int, todo: int, skipped: int) -> None:
        pass

    def document_done(self, result: DocResult) -> None:
        pass


def ingest(opts: IngestOptions, progress: Progress | None = None) -> IngestReport:
    """Run one ingest. Raises only for problems of the whole run (bad schema, engine, database)."""
    progress = progress or _NoProgress()
    t0 = time.perf_counter()
    schema = resolve(opts.schema)
    kind, why, engine = _make_engine(opts)
    report = IngestReport(engine=kind, engine_reason=why, model=engine.model_name, schema=schema.name)
    progress.engine_chosen(kind, why, engine.model_name)

    shared = SharedStore(opts.db, schema, kind, force=opts.force, retry_invalid=opts.retry_invalid)
    with engine:
        sources, unreadable = _collect(opts.paths)
        for path, reason in unreadable:
            report.failures.append(Failure(str(path), Status.FAILED.value, reason))
            report.counts[Status.FAILED.value] += 1
        with shared.session() as store:
            store.register_schema(schema)
            store.note_files(sources)
            done = set() if opts.force else store.done_ids(schema.name, kind, retry_invalid=opts.retry_invalid)
            report.run_id = store.start_run(kind, engine.model_name, schema.name, {
                "paths": [str(p) for p in opts.paths], "force": opts.force, "summarize": opts.summarize,
                "workers": opts.engine_options.workers, "model": opts.engine_options.model,
                "concurrency": opts.engine_options.extra.get("concurrency")})
        todo: list[SourceFile] = []
        seen: set[str] = set()
        skipped = 0
        for s in sources:
            if s.sha256 in done or s.sha256 in seen:
                skipped += 1
                continue
            seen.add(s.sha256)
            todo.append(s)
        report.counts[Status.SKIPPED.value] += skipped
        progress.planned(len(sources) + len(unreadable), len(todo), skipped)

        buffer: list[DocResult] = []
        shared.start_heartbeat()
        try:
            for result in _shared_results(engine, shared, todo, schema, opts, progress):
                buffer.append(result)
                report.counts[result.status.value] += 1
                report.pages += len(result.output.pages)
                if result.status is not Status.OK:
                    report.failures.append(Failure(str(result.source.path), result.status.value, result.reason))
                progress.document_done(result)
                if shared.commit_due(len(buffer)):
                    shared.commit(buffer, report.run_id)
                    buffer.clear()
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            shared.stop_heartbeat()
            shared.commit(buffer, report.run_id)
            report.seconds = time.perf_counter() - t0
            report.done_elsewhere = shared.done_elsewhere
            with shared.session() as store:
                shared.release(None, store)
                store.finish_run(report.run_id, dict(report.counts) | {
                    "pages": report.pages, "interrupted": report.interrupted,
                    "done_elsewhere": report.done_elsewhere})
    return report


def _make_engine(opts: IngestOptions) -> tuple[str, str, engines_mod.Engine]:
    """(kind, why, engine): here, or as actors on a Ray cluster (an explicit kind is not checked on the driver,
    which may have no GPU or weights)."""
    if not opts.ray:
        kind, why = engines_mod.choose(opts.engine, opts.engine_options)
        return kind, why, engines_mod.create(kind, opts.engine_options)
    from .ray_engine import RayEngine

    if opts.engine == "auto":
        kind, why = engines_mod.choose("auto", opts.engine_options)
    else:
        kind, why = opts.engine, "chosen with --engine"
    engine = RayEngine(kind, opts.engine_options, opts.ray, opts.ray_actors)
    return kind, f"{why}; {engine.plan.actors} actor(s) on the Ray cluster ({opts.ray})", engine


def _shared_results(engine: engines_mod.Engine, shared: SharedStore, todo: list[SourceFile], schema: SchemaInfo,
                    opts: IngestOptions, progress: Progress) -> Iterator[DocResult]:
    """Validated results for the documents this process claims, a few at a time; when every remaining document
    is claimed by another live ingest, wait for it to finish them or for its claims to expire."""
    pending = list(todo)
    chunk = max(8, 2 * opts.engine_options.workers, int(opts.engine_options.extra.get("concurrency") or 0))
    told = False
    while pending:
        first = shared.claim(pending, chunk)
        if not first.claimed:
            if pending:
                if not told:
                    getattr(progress, "waiting", lambda n: None)(first.held_elsewhere)
                    told = True
                time.sleep(CLAIM_POLL_SECONDS)
            continue

        for out in _outputs(engine, itertools.chain(first.claimed, shared.claimed(pending, chunk)), schema, opts):
            yield validate(out, schema)


def _collect(paths: list[Path]) -> tuple[list[SourceFile], list[tuple[Path, str]]]:
    sources: list[SourceFile] = []
    unreadable: list[tuple[Path, str]] = []
    for item in discover(paths):
        if isinstance(item, SourceFile):
            sources.append(item)
        else:
            unreadable.append(item)
    return sources, unreadable


def _outputs(engine: engines_mod.Engine, todo: Iterable[SourceFile], schema: SchemaInfo,
             opts: IngestOptions) -> Iterator[EngineOutput]:
    """Files that are not documents at all are answered here; the rest go to the engine lazily."""
    answered: list[EngineOutput] = []

    def jobs() -> Iterator[DocJob]:
        for s in todo:
            if s.kind in ("pdf", "image"):
                yield DocJob(source=s, schema_ref=schema.ref, password=opts.password, summarize=opts.summarize,
                             max_pages=opts.max_pages)
            else:
                answered.append(not_a_document(s, engine))

    for out in engine.run(jobs(), schema):
        yield from _drain(answered)
        out.engine = engine.kind
        yield out
    yield from _drain(answered)


def _drain(items: list[EngineOutput]) -> Iterator[EngineOutput]:
    while items:
        yield items.pop(0)


def not_a_document(s: SourceFile, engine: engines_mod.Engine) -> EngineOutput:
    """The output for an empty or non-document file: a status row, no engine call."""
    if s.kind == "empty":
        return EngineOutput(source=s, status=Status.EMPTY, engine=engine.kind, model=engine.model_name,
                            errors=[ErrorItem("discover", "empty file (0 bytes)")])
    return EngineOutput(source=s, status=Status.UNSUPPORTED, engine=engine.kind, model=engine.model_name,
                        errors=[ErrorItem("discover", "not a PDF or image (checked the bytes, not the name)")])
