"""The offline engine: works on a plain CPU with nothing downloaded.

Per document: an embedded e-invoice XML (Factur-X / ZUGFeRD / XRechnung) is read when present, since it is exact;
otherwise each page's text comes from the PDF text layer when it is usable and from OCR when it is not (scans,
photos, pages whose body is vector outlines); then rules fill the schema and an extractive summary is written.
Documents run in worker processes (``--workers``), each a whole document, so rasterizing and OCR use every core
and only the page in hand is held in memory; a worker also validates its document and grounds the values
(``docpipe.finish``), so the process that lands results does nothing else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ...errors import DocpipeError
from ...finish import finish_job
from ...models import DocResult, EngineOutput, ErrorItem, Outcome, PageInfo, Status
from ...rasterize import OCR_SPEC
from ...schemas import SchemaInfo, resolve
from ..base import DocJob, Engine, EngineOptions, mark_unreadable

_INVOICE_LIKE = {"invoice_number", "total", "vendor_name"}


class OfflineEngine(Engine):
    kind = "offline"

    def __init__(self, options: EngineOptions) -> None:
        super().__init__(options)
        self.workers = max(1, options.workers)

    @property
    def model_name(self) -> str | None:
        return "rules+rapidocr-3.10"

    def run(self, jobs: Iterable[DocJob], schema: SchemaInfo) -> Iterator[Outcome]:
        if self.workers == 1:
            threads = min(2, os.cpu_count() or 1)
            for job in jobs:
                try:
                    yield finish_job(job, process_document(job, threads), schema)
                except Exception as e:  # a bug must not stop the batch: record it and go on
                    yield _failed(job, f"internal error: {type(e).__name__}: {e}")
            return
        yield from _run_pool(jobs, self.workers)


def _run_pool(jobs: Iterable[DocJob], workers: int) -> Iterator[Outcome]:
    """Bounded fan-out: at most 2 x workers documents in flight; a crashed worker's documents are retried once.
    Each worker also validates its document and grounds the values (``read_and_finish``): the parent only lands."""
    import multiprocessing as mp

    from ...lifeline import init_worker, pool_initargs

    ctx = mp.get_context("spawn")
    kw = {"mp_context": ctx, "initializer": init_worker, "initargs": pool_initargs()}  # workers die with us
    pool = ProcessPoolExecutor(max_workers=workers, **kw)
    pending: dict[Future[DocResult], tuple[DocJob, int]] = {}
    retry: list[tuple[DocJob, int]] = []
    it = iter(jobs)
    exhausted = False
    try:
        while True:
            while len(pending) < 2 * workers and (retry or not exhausted):
                if retry:
                    job, attempt = retry.pop()
                else:
                    try:
                        job, attempt = next(it), 0
                    except StopIteration:
                        exhausted = True
                        break
                pending[pool.submit(read_and_finish, job, 1)] = (job, attempt)
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                job, attempt = pending.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    if attempt == 0:
                        retry.append((job, 1))
                    else:
                        yield _failed(job, "worker process crashed while reading this file")
                except Exception as e:  # a bug, not bad input: record and go on
                    yield _failed(job, f"internal error: {type(e).__name__}: {e}")
            if broken:
                for job, attempt in list(pending.values()):
                    retry.append((job, attempt + 1) if attempt == 0 else (job, attempt))
                pending.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=workers, **kw)
    except BaseException:  # Ctrl-C, SIGTERM, the consumer gone: do not wait for the documents in the workers' hands
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's processes (the executor has no public way before Python 3.14's terminate_workers)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()


def _failed(job: DocJob, message: str) -> EngineOutput:
    return EngineOutput(source=job.source, status=Status.FAILED, engine="offline",
                        errors=[ErrorItem("engine", message)])


def read_page_texts(job: DocJob, threads: int, ocr: bool = True) -> tuple[list[PageInfo], list[str], dict | None]:
    """Open a document and read every page's text (layer or OCR); also the e-invoice XML when the schema
    is invoice-like. Shared by engines that work from text."""
    from ...evidence.words import to_points
    from .einvoice import read_einvoice
    from .ocr import ocr_image

    schema = resolve(job.schema_ref)
    pages: list[PageInfo] = []
    texts: list[str] = []
    xml_data = None
    with job.open() as doc:
        if doc.pdf is not None and _INVOICE_LIKE <= set(schema.model.model_fields):
            try:
                xml_data = read_einvoice(doc.pdf)
            except ValueError:
                xml_data = None
        for page in doc.pages():
            info = page.info
            if not page.text_usable and ocr and xml_data is None:
                img = page.render(OCR_SPEC)
                res = ocr_image(img, threads=threads)
                del img
                info.ocr_ms = res.seconds * 1000
                if res.text.strip():
                    info.text = res.text
                    info.text_source = "ocr"
                    info.ocr_confidence = res.confidence
                    info.ocr_rotation = res.rotation
                    info.words = to_points(res.words, (info.width_px or 1, info.height_px or 1),
                                           (info.width_pt, info.height_pt))
            pages.append(info)
            texts.append(info.text)
    return pages, texts, xml_data


def read_and_finish(job: DocJob, threads: int = 1) -> DocResult:
    """``process_document``, validated and grounded (``docpipe.finish``) in the same worker process."""
    return finish_job(job, process_document(job, threads))


def process_document(job: DocJob, threads: int = 1) -> EngineOutput:
    """Read one document and fill the schema. Bad input becomes a status with a reason, never an exception."""
    from .fields import extract_fields, fill_note
    from .summary import summarize

    t0 = time.perf_counter()
    out = EngineOutput(source=job.source, engine="offline", model="rules+rapidocr-3.10")
    try:
        pages, texts, xml_data = read_page_texts(job, threads)
    except (DocpipeError, MemoryError) as e:
        return mark_unreadable(out, e)
    out.pages = pages
    t1 = time.perf_counter()
    schema = resolve(job.schema_ref)
    if xml_data is not None:
        out.data = xml_data
        out.method = "einvoice-xml"
        for p in out.pages:
            if not p.text.strip():
                p.text_source = "xml"
    else:
        out.data = extract_fields(texts, schema)
        out.method = "rules"
        note = fill_note(out.data, schema)
        if note:
            out.errors.append(ErrorItem("coverage", note))
    out.summary = summarize(texts) or None
    t2 = time.perf_counter()
    out.timings = {
        "read_ms": round((t1 - t0) * 1000, 2),
        "render_ms": round(sum(p.render_ms for p in pages), 2),
        "ocr_ms": round(sum(p.ocr_ms for p in pages), 2),
        "extract_ms": round((t2 - t1) * 1000, 2),
        "total_ms": round((t2 - t0) * 1000, 2),
    }
    if not any(t.strip() for t in texts) and xml_data is None:
        out.errors.append(ErrorItem("ocr", "no text found on any page"))
    return out
