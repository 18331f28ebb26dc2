"""The values that travel through a vision-language run: documents in flight, page groups, requests, replies, and
the events the page feed hands to the driver. Small dataclasses instead of tagged tuples between threads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from ...models import EngineOutput, ErrorItem, PageInfo, Status
from ..base import DocJob

Kind = Literal["extract", "summary", "reduce"]


@dataclass
class GroupAnswer:
    """One page group's extraction after at most one repair: data (None if no JSON object), what was wrong."""

    data: dict[str, Any] | None
    raw: str
    problem: str | None
    mode: str
    repaired: bool = False


@dataclass(eq=False)
class Doc:
    """A document in flight: its pages, group answers and summaries until every request is back."""

    job: DocJob
    t0: float = field(default_factory=time.perf_counter)
    pages: list[PageInfo] = field(default_factory=list)
    total_pages: int = 0
    n_groups: int | None = None  # known once the feed has read the last page
    answers: dict[int, GroupAnswer] = field(default_factory=dict)
    thoughts: dict[int, str] = field(default_factory=dict)
    summaries: dict[int, str] = field(default_factory=dict)
    summary: str | None = None
    reduce_asked: bool = False
    done: bool = False
    failure: str | None = None  # a request failed for good (a server's reason): the document fails
    errors: list[ErrorItem] = field(default_factory=list)
    open_requests: int = 0
    repairs: int = 0
    requests: int = 0
    model_s: float = 0.0
    render_ms: float = 0.0


@dataclass(eq=False)
class Group:
    """Consecutive pages of one document answered in one request: backend page payloads and usable text layers."""

    doc: Doc
    index: int
    pages: list[Any]
    texts: list[str]
    first_page: int  # 1-based
    open: int = 0  # requests of this group not answered yet; its pages' memory is freed at 0


@dataclass
class Prompt:
    """A chat, backend-neutral: messages in content-part form with one ``{"type": "image"}`` per entry of
    ``images`` and ``messages.untrusted(i)`` markers where ``texts[i]`` (document text, never trusted) goes."""

    messages: list[dict[str, Any]]
    texts: list[str]
    images: list[Any]


@dataclass(eq=False)
class Request:
    """One model call: what it is for, its prompt, whether the answer is schema JSON, its new-token budget."""

    kind: Kind
    doc: Doc
    group: Group | None
    prompt: Prompt
    json: bool
    max_new: int
    think: bool = False
    repaired: bool = False
    seq: int = 0
    state: Any = None  # the backend's own (e.g. token ids and an answer so far)


@dataclass
class Reply:
    """A backend's answer to one request. ``text`` None and no ``error``: stopped early, send the request again
    (its ``state`` holds the progress); ``error``: failed for good, the document fails with this reason."""

    request: Request
    text: str | None
    thinking: str | None = None
    error: str | None = None
    mode: str = "json"  # how the answer was constrained, e.g. "constrained-json", "json_schema", "prompt"
    seconds: float = 0.0
    attempts: int = 1


@dataclass
class GroupReady:
    group: Group


@dataclass
class DocEnd:
    doc: Doc
    n_groups: int


@dataclass
class DocFailed:
    doc: Doc
    status: Status
    error: ErrorItem


FeedEvent = GroupReady | DocEnd | DocFailed


@dataclass
class Step:
    """What handling an event or a reply gives: requests to send and documents finished."""

    requests: list[Request] = field(default_factory=list)
    outputs: list[EngineOutput] = field(default_factory=list)

    def __iadd__(self, other: Step) -> Step:
        self.requests += other.requests
        self.outputs += other.outputs
        return self
