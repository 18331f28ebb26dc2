"""Gemma's page feed with ``prep_workers`` > 1 (``PoolFeed``) and the page preparation it runs in worker processes:
open a document, render a range of its pages at the token budget's resolution, turn them into patches
(``inputs.page_arrays``: uint8 real patches, a quarter of float32 and no padding, whenever the processor's byte
values are known) and hand back numpy arrays (the parent makes the tensors).

Why processes, not threads: PyMuPDF is not thread-safe, and the image processor is mostly Python/numpy work
that holds the GIL (``scripts/bench_prep.py`` measures both). Each worker opens its own document, so no PyMuPDF
object is ever shared. Workers are started with ``spawn`` (no fork of a process that holds CUDA state and
threads) and ignore SIGINT: Ctrl-C goes to the engine, which cancels what is queued and shuts the pool down.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from ...errors import DocpipeError
from ...models import ErrorItem, Status
from ..base import unreadable
from ..vlm.feed import STOP, Feed, GroupBuilder

_image_processor: Any = None
_as_bytes = False


def init_worker(image_processor: Any) -> None:
    """Pool initializer: keep the (pickled) image processor and whether its pages can travel as bytes (the same
    check as the parent's PromptBuilder, on the same processor), one compute thread, Ctrl-C left to the parent."""
    import os
    import signal

    from ...lifeline import tie_to_parent
    from .inputs import byte_values

    tie_to_parent(os.getppid(), kernel=False)  # the pool starts from a thread: watch the parent's pid instead
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    global _image_processor, _as_bytes
    _image_processor = image_processor
    _as_bytes = byte_values(image_processor) is not None


def prepare_pages(source: Any, password: str | None, max_pages: int, start: int, stop: int, spec: Any,
                  image_tokens: int) -> list[tuple[Any, Any, Any, int, bool]]:
    """Pages ``start``..``stop`` of one document as (PageInfo, patches, position_ids, n_tokens, text_usable), the
    arrays as ``page_arrays`` makes them. Raises the same InputError subclasses as the in-thread path."""
    from ...rasterize import open_document
    from .inputs import page_arrays

    out = []
    with open_document(source, password=password, max_pages=max_pages) as d:
        for page in d.pages(start, stop):
            img = page.render(spec)
            pv, pos, n = page_arrays(_image_processor, img, image_tokens, _as_bytes)
            del img
            out.append((page.info, pv, pos, n, page.text_usable))
    return out


@dataclass
class _Chunk:
    """Pages first..first+n of a document, being prepared in a worker; holds their slots."""

    builder: GroupBuilder
    future: Any
    n: int
    args: tuple[Any, ...]


@dataclass
class _End:
    builder: GroupBuilder


@dataclass
class _Fail:
    builder: GroupBuilder
    error: BaseException


class PoolFeed(Feed):
    """Page ranges of the next documents prepared in ``prep_workers`` processes, results taken back strictly in
    submission order, so each document's groups and its end reach the driver in order. A chunk holds its pages'
    slots from submission until its groups are answered (or it is dropped)."""

    def __init__(self, jobs: Any, plan: Any, backend: Any) -> None:
        super().__init__(jobs, plan)
        self.backend = backend

    def produce(self) -> None:
        b = self.backend
        tokens = b.options.image_tokens
        # a chunk never needs more slots than a document's unflushed group leaves free (no wait on ourselves)
        chunk = max(1, min(4, b.max_pages - b.group_pages))
        window: deque[_Chunk | _End | _Fail] = deque()
        try:
            for builder in self.builders():
                job = builder.doc.job
                try:
                    with job.open() as d:
                        count = d.page_count
                except (DocpipeError, MemoryError) as e:
                    window.append(_Fail(builder, e))
                    self._drain(window, block=False)
                    continue
                builder.doc.total_pages = count
                for first in range(0, count, chunk):
                    m = min(chunk, count - first)
                    for _ in range(m):
                        while not self.slots.acquire(timeout=0.02):
                            if self.stop.is_set():
                                return
                            self._drain(window, block=False)
                    args = (job.source, job.password, job.max_pages, first, first + m, self.plan.spec, tokens)
                    window.append(_Chunk(builder, self._pool().submit(prepare_pages, *args), m, args))
                    self._drain(window, block=False)
                window.append(_End(builder))
                self._drain(window, block=False)
            self._drain(window, block=True)
            if not self.stop.is_set():
                self.put(STOP)
        finally:
            for e in window:
                if isinstance(e, _Chunk):
                    e.future.cancel()

    def _pool(self) -> Any:
        b = self.backend
        if b.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            b.pool = ProcessPoolExecutor(b.prep_workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=init_worker, initargs=(b.processor.image_processor,))
        return b.pool

    def _drain(self, window: deque[_Chunk | _End | _Fail], block: bool) -> None:
        """Hand on, in order, every entry at the head of the window whose work is done (all of them if block)."""
        from concurrent.futures import wait
        from concurrent.futures.process import BrokenProcessPool

        b = self.backend
        while window and not self.stop.is_set():
            e = window[0]
            if isinstance(e, _End):
                window.popleft()
                e.builder.end()
                continue
            if isinstance(e, _Fail):
                window.popleft()
                e.builder.fail(*unreadable(e.error))
                continue
            if not e.future.done():
                if not block:
                    return
                wait([e.future], timeout=0.2)
                continue
            window.popleft()
            bld = e.builder
            try:
                pages = [] if bld.failed else e.future.result()
            except BrokenProcessPool:
                # a worker died (a crash in MuPDF on this or a neighbouring chunk): blame the head, restart the
                # pool and send the rest of the window again
                bld.release(e.n)
                bld.fail(Status.FAILED, ErrorItem("rasterize", "page preparation worker crashed on this document"))
                b.pool.shutdown(wait=False, cancel_futures=True)
                b.pool = None
                for later in window:
                    if isinstance(later, _Chunk):
                        later.future = self._pool().submit(prepare_pages, *later.args)
                continue
            except (DocpipeError, MemoryError) as err:
                bld.release(e.n)
                bld.fail(*unreadable(err))
                continue
            except Exception as err:  # e.g. the image processor refusing a degenerate page: this document only
                bld.release(e.n)
                bld.fail(Status.FAILED, ErrorItem("engine", f"page preparation failed: {type(err).__name__}: {err}"))
                continue
            bld.release(e.n - len(pages))
            for info, pv, pos, n, usable in pages:
                bld.add(info, b.prompts.page(pv, pos, n, b.options.image_tokens, b.dtype), n, usable)
