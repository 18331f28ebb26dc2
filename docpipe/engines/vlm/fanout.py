"""The bounded fan-out driver: up to ``Plan.lanes`` generate() calls in flight, each with up to ``Plan.batch``
requests, fed by the page feed; replies are handled as they come back.

One queue carries both the feed's events and the finished calls (their done-callbacks put them there), so the loop
blocks in one place, and Ctrl-C there cancels what is in flight and hands back what is finished.
"""

from __future__ import annotations

import concurrent.futures as cf
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...models import EngineOutput
from .feed import STOP
from .types import Reply, Request, Step

if TYPE_CHECKING:
    from .engine import VlmEngine


@dataclass
class _Done:
    """A generate() call came back (or raised)."""

    requests: list[Request]
    future: cf.Future[list[Reply]]


def _replies(done: _Done) -> list[Reply]:
    try:
        return done.future.result()
    except Exception as e:  # a bug in the backend, not the model: these documents fail with it, the run goes on
        return [Reply(r, None, error=f"internal error: {type(e).__name__}: {e}") for r in done.requests]


class FanOut:
    def __init__(self, engine: VlmEngine) -> None:
        self.engine = engine

    def run(self) -> Iterator[EngineOutput]:
        eng, feed = self.engine, self.engine.feed
        assert feed is not None and eng.plan is not None
        lanes, size = max(1, eng.plan.lanes), max(1, eng.plan.batch)
        events = feed.queue
        pool = cf.ThreadPoolExecutor(lanes, thread_name_prefix="docpipe-vlm")
        pending: list[Request] = []
        in_flight = 0
        finished = False
        try:
            while not finished or pending or in_flight:
                while pending and in_flight < lanes:
                    batch, pending[:] = pending[:size], pending[size:]
                    fut = pool.submit(eng.backend.generate, batch)
                    in_flight += 1
                    fut.add_done_callback(lambda f, b=batch: events.put(_Done(b, f)))
                item = _get(events)
                step = Step()
                if isinstance(item, _Done):
                    in_flight -= 1
                    for reply in _replies(item):
                        if reply.text is None and reply.error is None:  # stopped early: on in a later call
                            reply.request.doc.model_s += reply.seconds
                            pending.append(reply.request)
                        else:
                            step += eng.on_reply(reply)
                elif item is STOP:
                    finished = True
                elif isinstance(item, BaseException):
                    raise item
                else:
                    step += eng.on_event(item)
                pending += step.requests
                yield from step.outputs
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _get(events: queue.Queue[Any]) -> Any:
    """The next item; waits in short slices so Ctrl-C is seen at once."""
    while True:
        try:
            return events.get(timeout=0.5)
        except queue.Empty:
            continue
