"""One ingest run: discover -> skip done -> engine -> validate -> store, with statuses, resume and progress.

No printing here: the caller passes a ``Progress`` to hear about each document, and gets an ``IngestReport``.
Results are written in small batches, each one transaction, so an interrupted run keeps everything finished
before the interruption and the next run picks up the rest without duplicates.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from . import engines as engines_mod
from .breaker import BREAK_AFTER, Breaker
from .discover import Skipped, discover
from .engines import DocJob, EngineOptions
from .errors import InputError
from .finish import finished
from .models import DocResult, EngineOutput, ErrorItem, Outcome, SourceFile, Status, output_of
from .paths import path_text
from .rasterize import DEFAULT_MAX_PAGES
from .remote import is_remote
from .schemas import SchemaInfo, resolve
from .sharing import SharedStore
from .store import DEFAULT_DB

CLAIM_POLL_SECONDS = 1.0


@dataclass
class IngestOptions:
    """Everything one ``docpipe ingest`` needs; the CLI and ``docpipe.ingest`` build it from ``Settings``."""

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
    break_after: int = BREAK_AFTER  # stop when the first N documents all fail in the engine (0: never)
    ray: str | None = None  # run the engine on a Ray cluster: "auto", "ray://host:10001", "local[:CPUS]"
    ray_actors: int | None = None  # engine actors on the cluster (default: fill it)
    gpus: str | None = None  # one engine process per GPU: "2", "all", "0,2" (engines.multi); None: this process


@dataclass
class Failure:
    path: str
    status: str
    reason: str


@dataclass
class IngestReport:
    """What one ingest did: the engine it used and why, counts by status, pages, time, and each document that
    is not ok (``failures``: path, status, one-line reason)."""

    engine: str = ""
    engine_reason: str = ""
    model: str | None = None
    schema: str = ""
    counts: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    sparse: list[Failure] = field(default_factory=list)  # ok, but the engine filled few of the schema's fields
    interrupted: bool = False
    run_id: str = ""
    done_elsewhere: int = 0  # documents to do that another ingest on the same database did meanwhile
    stopped: str = ""  # why the run stopped early (the breaker), empty when it did not
    columns: list[tuple[str, str]] = field(default_factory=list)  # the schema view's (name, SQL type)

    @property
    def processed(self) -> int:
        return sum(v for k, v in self.counts.items() if k != Status.SKIPPED.value)

    @property
    def any_failed(self) -> bool:
        return any(f.status not in (Status.INVALID.value,) for f in self.failures)


class Progress(Protocol):
    def engine_chosen(self, kind: str, why: str, model: str | None) -> None: ...
    def planned(self, total_files: int, todo: int, skipped: int, copies: int = 0) -> None: ...
    def document_done(self, result: DocResult) -> None: ...


class _NoProgress:
    def engine_chosen(self, kind: str, why: str, model: str | None) -> None:
        pass

    def planned(self, total_files: int, todo: int, skipped: int, copies: int = 0) -> None:
        pass

    def document_done(self, result: DocResult) -> None:
        pass


def ingest(opts: IngestOptions, progress: Progress | None = None) -> IngestReport:
    """Run one ingest. Raises only for problems of the whole run (bad schema, engine, database)."""
    progress = progress or _NoProgress()
    t0 = time.perf_counter()
    schema = resolve(opts.schema)
    missing = [path_text(p) for p in opts.paths
               if not Path(p).exists() and not Path(p).is_symlink() and not is_remote(p)]
    if missing:  # a typo: say so before a database is made or an engine loaded
        raise InputError(f"no such file or folder: {', '.join(missing)}")
    kind, why = _choose(opts)
    waves = _waves(opts)
    sources, unreadable, last = next(waves)
    if not sources and not unreadable:  # a wave before the last one is never empty
        raise InputError(f"no files under {', '.join(str(p) for p in opts.paths)}: nothing to ingest")
    engine, why = _create(kind, why, opts)
    report = IngestReport(engine=kind, engine_reason=why, model=engine.model_name, schema=schema.name,
                          columns=[(c.name, c.sql_type) for c in schema.columns])
    progress.engine_chosen(kind, why, engine.model_name)

    shared = SharedStore(opts.db, schema, kind, force=opts.force, retry_invalid=opts.retry_invalid)
    with engine:
        with shared.session() as store:
            store.register_schema(schema)
            store.note_skipped(unreadable)
            store.note_files(sources)
            done = set() if opts.force else store.done_ids(schema.name, kind, retry_invalid=opts.retry_invalid)
            report.run_id = store.start_run(kind, engine.model_name, schema.name, {
                "paths": [path_text(p) for p in opts.paths], "force": opts.force, "summarize": opts.summarize,
                "workers": opts.engine_options.workers, "model": opts.engine_options.model,
                "concurrency": _concurrency(opts) if kind == "openai" else None, "gpus": opts.gpus,
                "ray": opts.ray})
        plan = _Plan(done, report)
        todo = plan.add(sources, unreadable)
        if last:
            plan.announce(progress)

        def refill(pending: list[SourceFile]) -> bool:
            """The next wave of discovery noted in the store and its new documents added to ``pending``; whether
            more may come."""
            nonlocal last
            if last:
                return False
            sources, unreadable, last = next(waves)
            with shared.session() as store:
                store.note_skipped(unreadable)
                store.note_files(sources)
            pending.extend(plan.add(sources, unreadable))
            if last:
                plan.announce(progress)
            return not last

        buffer: list[DocResult] = []
        breaker = Breaker(opts.break_after)
        outputs = _shared_outputs(engine, shared, todo, schema, opts, progress, None if last else refill)
        shared.start_heartbeat()
        try:
            for item in outputs:
                result = finished(item, schema, opts.password, opts.max_pages)
                out = result.output
                buffer.append(result)
                report.counts[result.status.value] += 1
                report.pages += len(out.pages)
                if result.status is not Status.OK:
                    report.failures.append(Failure(path_text(result.source.path), result.status.value,
                                                   result.reason))
                elif note := next((e.message for e in out.errors if e.stage == "coverage"), None):
                    report.sparse.append(Failure(path_text(result.source.path), result.status.value, note))
                progress.document_done(result)
                report.stopped = breaker.record(out, result.status) or ""
                if report.stopped:
                    break
                if shared.commit_due(len(buffer)):
                    shared.commit(buffer, report.run_id)
                    buffer.clear()
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            outputs.close()  # a stopped run's engine gives up its requests in flight now
            waves.close()  # and discovery its tasks
            shared.stop_heartbeat()
            shared.commit(buffer, report.run_id)
            report.seconds = time.perf_counter() - t0
            report.done_elsewhere = shared.done_elsewhere
            with shared.session() as store:
                shared.release(None, store)  # what this run claimed and did not finish is free for others now
                store.finish_run(report.run_id, dict(report.counts) | {
                    "pages": report.pages, "interrupted": report.interrupted,
                    "done_elsewhere": report.done_elsewhere})
    return report


def _concurrency(opts: IngestOptions) -> int | None:
    return getattr(opts.engine_options.settings.get("openai"), "concurrency", None) or \
        opts.engine_options.extra.get("concurrency")


def _choose(opts: IngestOptions) -> tuple[str, str]:
    """(kind, why); with --ray an explicit kind is not checked on the driver, which may have no GPU or weights."""
    if opts.ray and opts.engine != "auto":
        return opts.engine, "chosen with --engine"
    return engines_mod.choose(opts.engine, opts.engine_options)


def _create(kind: str, why: str, opts: IngestOptions) -> tuple[engines_mod.Engine, str]:
    """The engine here, or as actors on a Ray cluster (``docpipe.ray_engine``)."""
    if not opts.ray:
        return _create_engine(kind, opts), why
    from .ray_engine import RayEngine

    engine = RayEngine(kind, opts.engine_options, opts.ray, opts.ray_actors)
    return engine, f"{why}; {engine.plan.actors} actor(s) on the Ray cluster ({opts.ray})"


def _shared_outputs(engine: engines_mod.Engine, shared: SharedStore, todo: list[SourceFile], schema: SchemaInfo,
                    opts: IngestOptions, progress: Progress,
                    refill: Callable[[list[SourceFile]], bool] | None = None) -> Generator[Outcome, None, None]:
    """Outputs for the documents this process claims, a chunk at a time; when every remaining document is claimed
    by another live ingest, wait for it to finish them or for its claims to expire. With ``refill`` (discovery
    still going on) the next wave of documents is fetched whenever the ones found so far are all claimed."""
    pending = list(todo)
    more = refill is not None
    chunk = max(8, 2 * opts.engine_options.workers, int(_concurrency(opts) or 0))
    told = False

    def fed() -> Iterator[SourceFile]:
        nonlocal more
        while True:
            yield from shared.claimed(pending, chunk)
            if not more or refill is None:
                return
            more = refill(pending)

    while pending or more:
        if refill is not None and more and not pending:
            more = refill(pending)
            continue
        first = shared.claim(pending, chunk)
        if not first.claimed:
            if refill is not None and more:  # the ones found so far are held elsewhere: look at the next ones
                more = refill(pending)
                continue
            if pending:
                if not told:
                    getattr(progress, "waiting", lambda n: None)(first.held_elsewhere)
                    told = True
                time.sleep(CLAIM_POLL_SECONDS)
            continue
        outputs = _outputs(engine, itertools.chain(first.claimed, fed()), schema, opts)
        try:
            yield from outputs
        finally:
            outputs.close()


def _create_engine(kind: str, opts: IngestOptions) -> engines_mod.Engine:
    """The engine in this process, or with ``gpus`` one copy per GPU in processes of their own."""
    if opts.gpus:
        from .engines.multi import create_multi

        return create_multi(kind, opts.engine_options, opts.gpus)
    return engines_mod.create(kind, opts.engine_options)


#: With --ray, discovery's results are taken in waves of this many items (doubling up to MAX_WAVE), so the first
#: documents are claimed and sent to the engine while the rest are still being listed and hashed.
FIRST_WAVE = 16
MAX_WAVE = 4096


def _waves(opts: IngestOptions) -> Generator[tuple[list[SourceFile], list[Skipped], bool], None, None]:
    """What discovery found, as (sources, skipped, last) waves: all at once in this process, or with --ray read
    and hashed on the cluster (``docpipe.ray_discover``) and taken as it streams in."""
    if not opts.ray:
        yield *_collect(discover(opts.paths)), True
        return
    from .ray_discover import discover_on_ray
    from .ray_engine import connect

    connect(opts.ray)
    size = FIRST_WAVE
    wave: list[SourceFile | Skipped] = []
    for item in discover_on_ray(opts.paths):
        wave.append(item)
        if len(wave) >= size:
            yield *_collect(wave), False
            wave, size = [], min(2 * size, MAX_WAVE)
    yield *_collect(wave), True


def _collect(items: Iterable[SourceFile | Skipped]) -> tuple[list[SourceFile], list[Skipped]]:
    sources: list[SourceFile] = []
    unreadable: list[Skipped] = []
    for item in items:
        if isinstance(item, SourceFile):
            sources.append(item)
        else:
            unreadable.append(item)
    return sources, unreadable


@dataclass
class _Plan:
    """Discovery's results as they come, wave after wave: what to do, what is already done or a copy, what was
    skipped (counted and reported), with running totals for the progress line."""

    done: set[str]
    report: IngestReport
    seen: set[str] = field(default_factory=set)
    files: int = 0
    todo: int = 0
    skipped: int = 0
    copies: int = 0

    def add(self, sources: list[SourceFile], unreadable: list[Skipped]) -> list[SourceFile]:
        """The documents of one wave still to do."""
        for path, reason, why in unreadable:
            self.report.failures.append(Failure(path_text(path), why, reason))
            self.report.counts[why] += 1
        todo: list[SourceFile] = []
        skipped = copies = 0
        for s in sources:
            if s.sha256 in self.seen:
                copies += 1  # identical bytes at another path: recorded in `files`, read once
                continue
            self.seen.add(s.sha256)
            if s.sha256 in self.done:
                skipped += 1
                continue
            todo.append(s)
        self.report.counts[Status.SKIPPED.value] += skipped + copies
        self.files += len(sources) + len(unreadable)
        self.todo += len(todo)
        self.skipped += skipped
        self.copies += copies
        return todo

    def announce(self, progress: Progress) -> None:
        """The totals, once discovery is over (with --ray, documents may be done before)."""
        progress.planned(self.files, self.todo, self.skipped, copies=self.copies)


def _outputs(engine: engines_mod.Engine, todo: Iterable[SourceFile], schema: SchemaInfo,
             opts: IngestOptions) -> Generator[Outcome, None, None]:
    """Files that are not documents at all are answered here; the rest go to the engine lazily."""
    answered: list[EngineOutput] = []

    def jobs() -> Iterator[DocJob]:
        for s in todo:
            if s.kind in ("pdf", "image"):
                yield DocJob(source=s, schema_ref=schema.ref, password=opts.password, summarize=opts.summarize,
                             max_pages=opts.max_pages)
            else:
                answered.append(not_a_document(s, engine))

    for item in engine.run(jobs(), schema):
        yield from _drain(answered)
        output_of(item).engine = engine.kind
        yield item
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
