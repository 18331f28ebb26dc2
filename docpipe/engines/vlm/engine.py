"""``VlmEngine``: one pipeline for every vision-language backend.

How a run flows: the page feed (``feed``) renders pages at the token budget in a background thread, the backend
encodes them, and they are grouped into requests that fit the backend's context. Each group gets an extraction
request (and a summary request with ``--summarize``); a driver sends requests to the backend (the bounded fan-out
of ``fanout``, or a backend's own scheduler such as Gemma's batch scheduler) and hands every reply back here.

Answers are parsed and validated with the schema's pydantic model; an invalid one gets one repair request (its own
answer plus the problem). A document of one group is answered by that group; a longer one is map-reduced: its
groups' answers merged by ``answers.merge_groups`` (the one merge rule), its group summaries summarised again in a
text-only request.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ...models import EngineOutput, ErrorItem, Status
from ...schemas import SchemaInfo
from ..base import DocJob, Engine, EngineOptions
from . import messages
from .answers import check, merge_groups
from .backend import Backend, Driver, Plan
from .feed import Feed
from .prompting import strip_server_thinking
from .types import (
    Doc,
    DocEnd,
    DocFailed,
    Group,
    GroupAnswer,
    GroupReady,
    Kind,
    Reply,
    Request,
    Step,
)


class VlmEngine(Engine):
    """An Engine around a ``Backend``: subclasses set ``kind`` and ``make_backend``."""

    def __init__(self, options: EngineOptions, backend: Backend | None = None) -> None:
        super().__init__(options)
        self.backend: Backend = backend if backend is not None else self.make_backend(options)
        self._seq = itertools.count()
        self.schema: SchemaInfo | None = None
        self.plan: Plan | None = None
        self.feed: Feed | None = None

    @classmethod
    def make_backend(cls, options: EngineOptions) -> Backend:
        raise NotImplementedError

    @classmethod
    def unavailable_reason(cls, options: EngineOptions) -> str | None:
        return cls.make_backend(options).check()

    @property
    def model_name(self) -> str | None:
        return self.backend.model_name

    def close(self) -> None:
        self.backend.close()

    # -- the run -------------------------------------------------------------------------------------------------
    def run(self, jobs: Iterable[DocJob], schema: SchemaInfo) -> Iterator[EngineOutput]:
        self.schema = schema
        self.plan = self.backend.start(schema, self.options.thinking)
        self.feed = self.make_feed(iter(jobs), self.plan).start()
        try:
            yield from self.driver().run()
        finally:
            self.feed.close()

    def make_feed(self, jobs: Iterator[DocJob], plan: Plan) -> Feed:
        """The page feed (a backend may prepare pages elsewhere, e.g. in worker processes)."""
        return Feed(jobs, plan)

    def driver(self) -> Driver:
        """What sends requests to the backend: the bounded fan-out, unless a backend schedules its own batches."""
        from .fanout import FanOut

        return FanOut(self)

    # -- events from the feed ------------------------------------------------------------------------------------
    def on_event(self, ev: GroupReady | DocEnd | DocFailed) -> Step:
        if isinstance(ev, GroupReady):
            return Step(self._group_requests(ev.group))
        if isinstance(ev, DocEnd):
            ev.doc.n_groups = ev.n_groups
            return self._after(ev.doc)
        doc = ev.doc
        doc.done = True
        return Step(outputs=[EngineOutput(source=doc.job.source, status=ev.status, engine=self.kind,
                                          model=self.model_name, pages=doc.pages, errors=[ev.error])])

    def _request(self, kind: Kind, doc: Doc, group: Group | None, prompt: messages.Prompt, json: bool,
                 max_new: int, **kw: Any) -> Request:
        doc.open_requests += 1
        if group is not None:
            group.open += 1
        return Request(kind, doc, group, prompt, json, max_new, seq=next(self._seq), **kw)

    def _group_requests(self, g: Group) -> list[Request]:
        assert self.schema is not None and self.plan is not None
        doc = g.doc
        if doc.done or doc.failure:  # the document already failed: nothing more is asked for it
            self.feed.release(g)  # type: ignore[union-attr]
            return []
        prompt = messages.extraction(self.schema, g, self.plan.shared_first)
        reqs = [self._request("extract", doc, g, prompt, True, self.plan.answer_tokens,
                              think=self.options.thinking)]
        if doc.job.summarize:
            reqs.append(self._request("summary", doc, g, messages.summary(g, self.plan.summary_words), False,
                                      self.plan.summary_tokens))
        return reqs

    # -- replies -------------------------------------------------------------------------------------------------
    def on_reply(self, reply: Reply) -> Step:
        """Store one answer; follow-up requests (a repair, a summary reduce) and the document if it is finished."""
        req, doc, g = reply.request, reply.request.doc, reply.request.group
        doc.model_s += reply.seconds
        doc.requests += reply.attempts
        follow: list[Request] = []
        if reply.error is not None:
            if req.kind == "extract" or doc.failure:
                doc.failure = doc.failure or reply.error
            else:
                doc.errors.append(ErrorItem("engine", f"summary not written: {reply.error}"))
        elif req.kind == "extract" and g is not None:
            follow = self._answer(req, reply)
        elif req.kind == "summary" and g is not None:
            doc.summaries[g.index] = _split(reply)[1]
        elif req.kind == "reduce":
            doc.summary = _split(reply)[1] or None
        doc.open_requests -= 1  # follow-ups were counted as they were made
        if g is not None and req.kind != "reduce":
            g.open -= 1
            if g.open == 0:
                self.feed.release(g)  # type: ignore[union-attr]
        step = Step(follow)
        step += self._after(doc)
        return step

    def _answer(self, req: Request, reply: Reply) -> list[Request]:
        assert self.schema is not None and self.plan is not None and req.group is not None
        doc, g = req.doc, req.group
        thought, answer = _split(reply)
        if thought:
            doc.thoughts[g.index] = "\n\n".join(t for t in (doc.thoughts.get(g.index), thought) if t)
        data, problem = check(answer, self.schema.model)
        if problem is not None and self.plan.repair and not req.repaired and not doc.failure:
            doc.repairs += 1
            doc.answers[g.index] = GroupAnswer(data, answer, problem, reply.mode)
            return [self._request("extract", doc, g, messages.repair(req.prompt, answer, problem), True,
                                  self.plan.answer_tokens, repaired=True)]
        first = doc.answers.get(g.index)
        if data is None and first is not None and first.data is not None:
            data, problem, answer = first.data, first.problem, first.raw  # the repair made it worse: keep the first
        doc.answers[g.index] = GroupAnswer(data, answer, problem, reply.mode, req.repaired)
        return []

    def _after(self, doc: Doc) -> Step:
        """Once a document has no request in flight: its summary reduce, or its output."""
        if doc.n_groups is None or doc.open_requests or doc.done:
            return Step()
        if doc.job.summarize and not doc.reduce_asked and len(doc.summaries) > 1 and not doc.failure:
            doc.reduce_asked = True
            parts = [doc.summaries[k] for k in sorted(doc.summaries)]
            assert self.plan is not None
            return Step([self._request("reduce", doc, None, messages.reduce(parts, self.plan.summary_words), False,
                                       self.plan.summary_tokens)])
        doc.done = True
        return Step(outputs=[self.finish(doc)])

    def finish(self, doc: Doc) -> EngineOutput:
        """A document's output from its groups' answers: the merge, status, raw text, thinking, timings."""
        n = doc.n_groups or 0
        answers = [doc.answers[k] for k in range(n) if k in doc.answers]
        out = EngineOutput(source=doc.job.source, engine=self.kind, model=self.model_name, pages=doc.pages,
                           errors=doc.errors)
        if answers:
            modes = sorted({a.mode for a in answers})
            out.method = "+".join(modes) + ("+repair" if any(a.repaired for a in answers) else "")
        if any(a.problem for a in answers):  # kept for a person to see why the answer was refused
            out.raw_text = answers[0].raw if n == 1 else "\n\n".join(
                f"--- page group {k + 1} ---\n{doc.answers[k].raw}" for k in range(n) if k in doc.answers)
        for k in range(n):
            a = doc.answers.get(k)
            if a is not None and a.data is None:
                where = f"page group {k + 1}: " if n > 1 else ""
                again = " (still after one repair request)" if a.repaired else ""
                out.errors.append(ErrorItem("validate", f"{where}{a.problem}{again}"))
        good = [a.data for a in answers if a.data is not None]
        if doc.failure:
            out.status = Status.FAILED
            out.errors.insert(0, ErrorItem("engine", doc.failure))
        elif good:
            out.data = merge_groups(good) if len(good) > 1 else good[0]
        else:
            out.status = Status.INVALID if answers else Status.FAILED
            if not out.errors:
                out.errors.append(ErrorItem("engine", "no answer from the model"))
        if doc.thoughts:
            out.thinking = "\n\n".join((f"[page group {k + 1}]\n" if n > 1 else "") + doc.thoughts[k]
                                       for k in sorted(doc.thoughts))
        if doc.job.summarize and not doc.failure:
            out.summary = doc.summary or (doc.summaries.get(0) if n == 1 else None) or None
        out.timings = {"render_ms": round(doc.render_ms, 2), "model_ms": round(doc.model_s * 1000, 2),
                       "total_ms": round((time.perf_counter() - doc.t0) * 1000, 2), "page_groups": float(n),
                       "requests": float(doc.requests), "repairs": float(doc.repairs)}
        return out


def _split(reply: Reply) -> tuple[str | None, str]:
    """(thought text, answer): a separate thinking field, inline ``<think>`` or Gemma channel markers."""
    inline, answer = strip_server_thinking(reply.text or "")
    thoughts = [t.strip() for t in (reply.thinking, inline) if t and t.strip()]
    return ("\n\n".join(thoughts) or None), answer

