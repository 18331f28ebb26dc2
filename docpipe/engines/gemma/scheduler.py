"""Gemma's batch scheduler: requests across documents gathered into batches for the GPU, and what to do when one
runs out of memory.

- A batch is the oldest request plus the ones nearest to it in length (little padding, nothing starves), as many
  as the batch size allows and the planned KV cache holds.
- A partial batch waits up to ``batch_wait_s`` for more; while it waits (and, with vision_overlap, while a batch
  decodes) the vision tower encodes the pages already waiting (vision_ahead), so the GPU works instead of idling.
- On GPU out-of-memory a batch runs as two halves and later batches are half as big, until ``grow_after`` batches in
  a row went through: then the batch size doubles back towards the planned one.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ...models import EngineOutput, ErrorItem
from ..vlm.feed import STOP
from ..vlm.types import GroupReady, Reply, Request, Step

if TYPE_CHECKING:
    from .engine import GemmaEngine

log = logging.getLogger(__name__)

#: batches in a row that must go through after an out-of-memory split before the batch size doubles back
GROW_AFTER = 4


class BatchScheduler:
    def __init__(self, engine: GemmaEngine, grow_after: int = GROW_AFTER) -> None:
        self.engine, self.backend = engine, engine.backend
        self.cfg = self.backend.cfg
        self.grow_after = grow_after
        self.batch_size = self.backend.planned_batch
        self._fits = 0  # batches through since the last out-of-memory split
        self.pending: list[Request] = []  # changed in place only, so the decode-time hook sees it
        self.inbox: deque[Any] = deque()  # feed items taken during a decode (vision_overlap), handled first

    def run(self) -> Iterator[EngineOutput]:
        eng, b = self.engine, self.backend
        q = eng.feed.queue  # type: ignore[union-attr]
        b.between = self._during_decode if b.overlap and self.cfg["vision_ahead"] else None
        pending = self.pending
        try:
            finished = False
            wait_s = float(self.cfg["batch_wait_s"])
            while not finished or pending:
                deadline = time.perf_counter() + wait_s
                while True:
                    # block when idle; wait up to batch_wait_s for a fuller batch; else take what is there
                    if not pending:
                        timeout: float | None = None
                        # the wait for a fuller batch starts with its first request, not while none was there
                        deadline = float("inf")
                    elif len(pending) < self.batch_size and not finished:
                        if deadline == float("inf"):
                            deadline = time.perf_counter() + wait_s
                        timeout = max(0.0, deadline - time.perf_counter())
                    else:
                        timeout = 0.0
                    ahead = self._ahead_pages() if timeout else []
                    waited = time.perf_counter()
                    try:
                        item = self.inbox.popleft() if self.inbox else \
                            q.get(block=timeout != 0.0 and not ahead, timeout=timeout)
                    except queue.Empty:
                        item = None
                    b.stats.wait_s += time.perf_counter() - waited
                    if item is None:
                        if not ahead:
                            break
                        # nothing new yet: the GPU encodes waiting pages instead of idling, and only idle time
                        # counts against batch_wait_s (a full first batch, not the pages of its first second)
                        began = time.perf_counter()
                        self._encode_ahead(ahead, wait=True)
                        deadline += time.perf_counter() - began
                        continue
                    if item is STOP:
                        finished = True
                        break
                    if isinstance(item, BaseException):
                        raise item
                    yield from self._take(eng.on_event(item))
                if not pending:
                    continue
                batch = self.pick(pending)
                for req in batch:
                    pending.remove(req)
                for reply in self.generate(batch):
                    if reply.text is None and reply.error is None:  # not done at answer_segment: a later batch
                        reply.request.doc.model_s += reply.seconds
                        pending.append(reply.request)
                        continue
                    yield from self._take(eng.on_reply(reply))
        finally:
            b.between = None
            self.inbox.clear()
            if b.vision is not None:  # features of pages no batch took (a failed run)
                b.vision.ahead.clear()
                b.vision.keys = None

    def _take(self, step: Step) -> list[EngineOutput]:
        """Queue a step's requests (as token ids now: batches are picked by length); its finished documents."""
        for r in step.requests:
            if r.state is None:
                r.state = self.backend.encode(r)
            self.pending.append(r)
        return step.outputs

    # -- batches -------------------------------------------------------------------------------------------------
    def pick(self, pending: list[Request]) -> list[Request]:
        """The oldest request plus the ones nearest to it in length, as many as the batch size allows and as the
        planned KV cache holds: the batch size is planned for one-page requests, and a many-page request pads every
        row of its batch to its length."""
        b = self.backend
        oldest = min(pending, key=lambda r: r.seq)
        others = sorted((r for r in pending if r is not oldest),
                        key=lambda r: abs(len(r.state.ids) - len(oldest.state.ids)))
        cap = b.answer_cap
        budget = b.planned_batch * b.kv_row(b.planned_prompt() + cap(int(self.cfg["max_new_tokens"])))
        batch, longest, new = [oldest], len(oldest.state.ids), cap(oldest.state.max_new)
        for r in others:
            if len(batch) >= self.batch_size:
                break
            length, most = max(longest, len(r.state.ids)), max(new, cap(r.state.max_new))
            if (len(batch) + 1) * b.kv_row(length + most) <= budget:
                batch.append(r)
                longest, new = length, most
        return batch

    def generate(self, batch: list[Request]) -> list[Reply]:
        """The backend's generate() for the batch; on GPU out-of-memory its two halves one after the other."""
        import torch

        try:
            replies = self.backend.generate(batch)
        except torch.OutOfMemoryError:
            # retried below, outside this block: the exception's traceback holds the failed attempt's frames and
            # with them its GPU tensors (the cache, activations) until the block is left
            replies = None
        if replies is not None:
            self._fits += 1
            if self.batch_size < self.backend.planned_batch and self._fits >= self.grow_after:
                self.batch_size, self._fits = min(self.backend.planned_batch, 2 * self.batch_size), 0
            return replies
        torch.cuda.empty_cache()
        self.backend.stats.oom_splits += 1
        if len(batch) == 1:
            batch[0].doc.errors.append(ErrorItem("engine", "GPU out of memory for this document's pages"))
            return [Reply(batch[0], "")]
        half = len(batch) // 2
        log.warning("GPU out of memory with %d requests in a batch; running them as %d + %d", len(batch), half,
                    len(batch) - half)
        self.batch_size, self._fits = max(1, min(self.batch_size, half)), 0
        return self.generate(batch[:half]) + self.generate(batch[half:])

    # -- vision ahead --------------------------------------------------------------------------------------------
    def _ahead_pages(self) -> list[Any]:
        """Up to vision_chunk pages not encoded yet, of the waiting requests (oldest first) and then of the groups
        taken during a decode, while at most a batch's pages are held; none when off or without the runner."""
        vision = self.backend.vision
        if vision is None or not self.cfg["vision_ahead"]:
            return []
        room = min(vision.chunk, max(self.batch_size, vision.chunk) - len(vision.ahead))
        lists = [r.state.images for r in sorted(self.pending, key=lambda r: r.seq)]
        lists += [item.group.pages for item in self.inbox if isinstance(item, GroupReady)]
        out: dict[int, Any] = {}  # by id: pages compare by value (tensors), and a page can be in two requests
        for pages in lists:
            for page in pages:
                if len(out) >= room:
                    return list(out.values())
                if id(page) not in vision.ahead:
                    out[id(page)] = page
        return list(out.values())

    def _during_decode(self) -> None:
        """vision_overlap, between decode steps: take what the page feed has ready (handled after the batch, in
        order) and queue one chunk of the next batch's pages on the side stream, unless one still runs."""
        q = self.engine.feed.queue  # type: ignore[union-attr]
        while True:
            try:
                self.inbox.append(q.get_nowait())
            except queue.Empty:
                break
        if self.backend.vision.busy():
            return
        pages = self._ahead_pages()
        if pages:
            self._encode_ahead(pages, self.backend.side)

    def _encode_ahead(self, pages: list[Any], stream: Any = None, wait: bool = False) -> None:
        """The vision tower on pages of the batch being gathered (``wait``: until the GPU is done with them). Out of
        GPU memory, the features made so far are dropped and vision_ahead is off for this engine: each batch's
        prefill encodes its pages itself."""
        import torch

        b = self.backend
        try:
            b.vision.encode_ahead(pages, b.input_device, b.dtype, stream)
            if wait and b.device == "cuda":
                torch.cuda.current_stream(b.input_device).synchronize()
            return
        except torch.OutOfMemoryError:
            pass  # handled outside the except block, whose traceback holds the failed call's tensors
        b.vision.ahead.clear()
        torch.cuda.empty_cache()
        self.cfg["vision_ahead"] = False
        b.between = None
        log.warning("GPU out of memory encoding %d pages ahead of their batch; vision_ahead is off from now on",
                    len(pages))
