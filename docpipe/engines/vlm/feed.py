"""The page feed: a background thread that opens documents, renders each page at the token budget, lets the backend
encode it, and groups a document's pages into requests that fit the backend's context.

It holds at most ``Plan.pages_in_memory`` pages (a semaphore, released when a group's last request is answered),
so a 2,000-page PDF or a folder of 100k files never piles up in RAM, and the model is fed while the CPU renders
the next pages. PyMuPDF is not thread-safe: every document is opened and rendered in this one thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from ...errors import DocpipeError
from ...models import ErrorItem, PageInfo, Status
from ..base import DocJob, unreadable
from .backend import Plan
from .types import Doc, DocEnd, DocFailed, Group, GroupReady

#: put on the queue after the last document
STOP = object()


class GroupBuilder:
    """Groups one document's pages, in page order, into groups within the plan's token and page limits and hands
    them on: GroupReady ..., then DocEnd, or DocFailed."""

    def __init__(self, feed: Feed, doc: Doc) -> None:
        self.feed, self.doc = feed, doc
        self.cur: list[Any] = []
        self.texts: list[str] = []
        self.used = 0
        self.n = 0
        self.first = 1
        self.failed = False

    def add(self, info: PageInfo, payload: Any, tokens: int, text_usable: bool) -> None:
        """One page whose slot is already held."""
        plan = self.feed.plan
        text = (info.text if plan.page_text and text_usable else "").strip()[: plan.page_text_chars]
        cost = tokens + 8 + (plan.count(text) + 12 if text else 0)
        if self.cur and (self.used + cost > plan.group_tokens or len(self.cur) >= plan.group_pages):
            self._flush()
        self.doc.pages.append(info)
        self.cur.append(payload)
        self.texts.append(text)
        self.used += cost

    def _flush(self) -> None:
        self.feed.put(GroupReady(Group(self.doc, self.n, self.cur, self.texts, self.first)))
        self.n, self.first = self.n + 1, self.first + len(self.cur)
        self.cur, self.texts, self.used = [], [], 0

    def end(self) -> None:
        if self.failed:
            return
        if self.cur:
            self._flush()
        self.doc.render_ms = sum(p.render_ms for p in self.doc.pages)
        self.feed.put(DocEnd(self.doc, self.n))

    def release(self, n: int) -> None:
        """Give back the slots of n pages that will not be added (dropped or failed)."""
        for _ in range(n):
            self.feed.slots.release()

    def fail(self, status: Status, err: ErrorItem) -> None:
        """The document failed: its unsent pages give their slots back; groups already sent finish as usual."""
        if self.failed:
            return
        self.failed = True
        self.release(len(self.cur))
        self.cur, self.texts = [], []
        self.feed.put(DocFailed(self.doc, status, err))


class Feed:
    """Documents -> page groups on ``queue``, in a background thread; ``STOP`` after the last one, an exception
    (a bug) as itself."""

    def __init__(self, jobs: Iterator[DocJob], plan: Plan) -> None:
        self.jobs, self.plan = jobs, plan
        self.queue: queue.Queue[Any] = queue.Queue()
        self.slots = threading.Semaphore(plan.pages_in_memory)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="docpipe-pages", daemon=True)

    def start(self) -> Feed:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def put(self, item: Any) -> None:
        self.queue.put(item)

    def release(self, group: Group) -> None:
        """A group's requests are all answered: its pages' slots go back to the feed."""
        for _ in group.pages:
            self.slots.release()
        group.pages = []

    def acquire(self) -> bool:
        """A slot for one more page; False when the run is stopping."""
        while not self.slots.acquire(timeout=0.2):
            if self.stop.is_set():
                return False
        return True

    def builders(self) -> Iterator[GroupBuilder]:
        """A builder for each document in turn, until the run stops."""
        for job in self.jobs:
            if self.stop.is_set():
                return
            yield GroupBuilder(self, Doc(job))

    def _run(self) -> None:
        try:
            self.produce()
        except BaseException as e:  # a bug: surface it in the driver
            self.put(e)

    def produce(self) -> None:
        """One document after another, one page after another, in this thread."""
        for b in self.builders():
            try:
                with b.doc.job.open() as d:
                    b.doc.total_pages = d.page_count
                    for page in d.pages():
                        if not self.acquire():
                            return
                        try:
                            img = page.render(self.plan.spec)
                            payload, tokens = self.plan.prepare(img)
                        except BaseException:
                            self.slots.release()
                            raise
                        del img
                        b.add(page.info, payload, tokens, page.text_usable)
                b.end()
            except (DocpipeError, MemoryError) as e:
                b.fail(*unreadable(e))
        if not self.stop.is_set():
            self.put(STOP)
