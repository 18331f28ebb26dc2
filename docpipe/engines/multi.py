"""One engine per GPU (``--gpus``): N child processes, each running an ordinary engine of any registered kind on its
own card, fed from one queue, their results streamed back to the one pipeline that validates and stores them.

Each child sets ``CUDA_VISIBLE_DEVICES`` to its card before anything imports torch, so the single-GPU engine code
runs unchanged inside it. Work is pulled: a child's engine asks for its next document when it is ready for one
(engines pull lazily and bound what they hold), so no card idles while documents wait. The queue lives here, in the
parent, and not in a shared ``multiprocessing.Queue``: a child killed while holding such a queue's lock would wedge
the others, and the parent must know which documents each child holds to hand them on when it dies. Pages are
prepared in each child, next to its engine: rendered pixels never cross a process boundary, and one child's death
loses only its own prepared pages.

Failure: when a child dies (out of memory, a crash, ``kill -9``), the documents it held and had not answered go back
to the queue for the others; a document held through two deaths is recorded as failed (retried next run), so one
poisonous file cannot take every card down. When every child is gone the run stops with one line, and whatever was
not finished stays unfinished for the next run. Children die with the parent (``lifeline``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError, EngineUnavailable
from ..models import EngineOutput, ErrorItem, Outcome, Status, output_of
from ..schemas import SchemaInfo
from .base import DocJob, Engine, EngineOptions

log = logging.getLogger(__name__)

#: ``--gpus cpu:N``: N engine processes with no GPU (tests, and measuring the mechanics on a machine without GPUs)
CPU_PREFIX = "cpu:"
#: a document held by this many dying children is recorded as failed instead of handed on again
MAX_DEATHS = 2
#: seconds an idle child gets to release its device and exit before it is killed
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class Slot:
    """One engine process: its place in the ``--gpus`` list, the card it uses, and what its child sees."""

    index: int
    gpu: int | None  # CUDA index as this (parent) process sees it; None for a CPU slot
    cuda_visible: str  # the child's CUDA_VISIBLE_DEVICES ("" for a CPU slot: no GPU at all)

    @property
    def label(self) -> str:
        return f"GPU {self.gpu}" if self.gpu is not None else f"cpu:{self.index}"


def parse_gpus(spec: str) -> list[Slot]:
    """``N`` (the first N visible GPUs), ``all``, ``0,2`` (indices; one index alone: ``2,``) or ``cpu:N``.
    Asking for GPUs that are not there is refused with one line."""
    text = spec.strip().lower()
    if text.startswith(CPU_PREFIX):
        n = text[len(CPU_PREFIX):]
        if not n.isdigit() or int(n) < 1:
            raise EngineUnavailable(f"--gpus {spec}: cpu:N needs a number of processes >= 1, e.g. cpu:2")
        return [Slot(i, None, "") for i in range(int(n))]
    _check_syntax(spec, text)
    return select_gpus(spec, _visible_gpus())


def _check_syntax(spec: str, text: str) -> None:
    if text == "all" or text.isdigit():
        if text.isdigit() and int(text) < 1:
            raise EngineUnavailable(f"--gpus {spec}: needs at least one GPU")
        return
    if "," not in text:
        raise EngineUnavailable(f"--gpus {spec}: expected a number of GPUs, all, GPU indices like 0,2, or cpu:N")
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise EngineUnavailable(f"--gpus {spec}: GPU indices must be numbers, e.g. 0,2")
    if len(set(map(int, parts))) != len(parts):
        raise EngineUnavailable(f"--gpus {spec}: a GPU is listed twice")


def select_gpus(spec: str, visible: list[str]) -> list[Slot]:
    """The slots for a GPU spec (already syntax-checked) given the visible GPUs' CUDA_VISIBLE_DEVICES entries."""
    text = spec.strip().lower()
    shown = ", ".join(map(str, range(len(visible))))
    if not visible:
        raise EngineUnavailable(f"--gpus {spec}: no CUDA GPU is visible here (torch.cuda.device_count() is 0); "
                                f"--gpus cpu:N runs N engine processes on the CPU")
    if text == "all":
        wanted = list(range(len(visible)))
    elif text.isdigit():
        if int(text) > len(visible):
            raise EngineUnavailable(f"--gpus {spec}: asks for {text} GPUs; {len(visible)} visible ({shown})")
        wanted = list(range(int(text)))
    else:
        wanted = [int(p) for p in text.split(",") if p.strip()]
        missing = [g for g in wanted if g >= len(visible)]
        if missing:
            raise EngineUnavailable(f"--gpus {spec}: there is no GPU {missing[0]}; visible: {shown}")
    return [Slot(i, g, visible[g]) for i, g in enumerate(wanted)]


def _visible_gpus() -> list[str]:
    """The CUDA_VISIBLE_DEVICES entry for each GPU this process sees (torch imported here, lazily)."""
    try:
        import torch
    except ImportError as e:
        raise EngineUnavailable("--gpus needs PyTorch to count the GPUs: pip install 'docpipe[gemma]'") from e
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    outer = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return [outer[i] if i < len(outer) else str(i) for i in range(n)]


def create_multi(kind: str, options: EngineOptions, gpus: str) -> MultiEngine:
    """The ``--gpus`` engine: ``kind`` once per slot of ``parse_gpus(gpus)``."""
    return MultiEngine(kind, options, parse_gpus(gpus))


@dataclass
class _Child:
    """The parent's view of one engine process."""

    slot: Slot
    proc: Any
    conn: Any
    state: str = "loading"  # loading -> idle <-> running; dead
    ready: bool = False
    model: str | None = None
    reason: str = ""
    held: dict[int, tuple[DocJob, int]] = field(default_factory=dict)  # seq -> (job, deaths it has been through)


class MultiEngine(Engine):
    """``kind`` on each slot, data parallel; results carry the inner kind, so resume and the store see no difference.

    ``done_by`` counts the documents each slot answered (``timings["slot"]`` records it per document)."""

    def __init__(self, kind: str, options: EngineOptions, slots: list[Slot]) -> None:
        import multiprocessing as mp

        super().__init__(options)
        self.kind = kind  # type: ignore[misc]  # an instance's kind: the engine it runs N times
        self.slots = slots
        self.done_by: Counter[int] = Counter()
        ctx = mp.get_context("spawn")  # a fresh interpreter: nothing of the parent's CUDA state or threads
        threads = max(1, (os.cpu_count() or 1) // len(slots))
        kernel = threading.current_thread() is threading.main_thread()
        self._children: list[_Child] = []
        for slot in slots:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_child_main, name=f"docpipe-engine-{slot.label.replace(' ', '')}",
                               args=(theirs, kind, options, slot, os.getpid(), kernel, threads), daemon=True)
            proc.start()
            theirs.close()
            self._children.append(_Child(slot, proc, ours))

    # -- what the pipeline asks before the run -------------------------------------------------------------------
    @property
    def model_name(self) -> str | None:
        """The model the children loaded (waits for the first child to be ready)."""
        try:
            while not any(c.ready for c in self._children):
                if all(c.state == "dead" for c in self._children):
                    raise EngineUnavailable(f"engine {self.kind!r} could not start on {self._where()}: "
                                            f"{self._reasons()}")
                for c, msg in self._events():
                    self._handle(c, msg, None)
        except BaseException:  # Ctrl-C or SIGTERM while they load: asked before the caller's ``with engine``
            self.close()
            raise
        return next(c.model for c in self._children if c.ready)

    def pids(self) -> dict[str, int | None]:
        """slot label -> process id of its engine process (for tools and tests that watch or stop one)."""
        return {c.slot.label: c.proc.pid for c in self._children}

    def holding(self) -> dict[str, int]:
        """slot label -> documents handed to that process and not answered yet."""
        return {c.slot.label: len(c.held) for c in self._children if c.state != "dead"}

    # -- the run -------------------------------------------------------------------------------------------------
    def run(self, jobs: Iterable[DocJob], schema: SchemaInfo) -> Iterator[Outcome]:
        self._source: Iterator[DocJob] = iter(jobs)
        self._exhausted = False
        self._queue: deque[tuple[int, DocJob, int]] = deque()
        self._seq = 0
        self._schema_ref = schema.ref
        while True:
            self._start_rounds()
            busy = any(c.state == "running" or c.held for c in self._children)
            if not busy and not self._queue and self._exhausted:
                return
            if all(c.state == "dead" for c in self._children):
                left = len(self._queue) + (0 if self._exhausted else sum(1 for _ in self._source))
                raise EngineError(f"every engine process has stopped ({self._reasons()}); {left} document(s) "
                                  f"not done stay unfinished: run the same command again to continue")
            for c, msg in self._events():
                out = self._handle(c, msg, schema)
                if out is not None:
                    yield from out

    def _next_job(self) -> tuple[int, DocJob, int] | None:
        if self._queue:
            return self._queue.popleft()
        if not self._exhausted:
            try:
                job = next(self._source)
            except StopIteration:
                self._exhausted = True
                return None
            self._seq += 1
            return self._seq, job, 0
        return None

    def _start_rounds(self) -> None:
        """Idle children start a run of their engine while documents wait (peeked into the queue)."""
        if not self._queue and not self._exhausted and (item := self._next_job()) is not None:
            self._queue.append(item)
        for c in self._children:
            if c.state == "idle" and self._queue:
                if self._send(c, ("round", self._schema_ref)):
                    c.state = "running"

    def _events(self) -> list[tuple[_Child, tuple[Any, ...]]]:
        """The next messages from the children; a child that exited shows as ("died",) after what it sent."""
        from multiprocessing.connection import wait

        live = [c for c in self._children if c.state != "dead"]
        if not live:
            return []
        by_handle: dict[Any, _Child] = {}
        for c in live:
            by_handle[c.conn] = c
            by_handle[c.proc.sentinel] = c
        events: list[tuple[_Child, tuple[Any, ...]]] = []
        for handle in wait(list(by_handle)):
            c = by_handle[handle]
            if any(e[0] is c and e[1][0] == "died" for e in events):
                continue
            try:
                while c.conn.poll():  # everything it sent counts, also when it died just after
                    events.append((c, c.conn.recv()))
                    if handle is c.conn:
                        break
            except (EOFError, OSError):
                events.append((c, ("died",)))
                continue
            if handle is not c.conn:
                events.append((c, ("died",)))
        return events

    def _handle(self, c: _Child, msg: tuple[Any, ...], schema: SchemaInfo | None) -> list[Outcome] | None:
        what = msg[0]
        if c.state == "dead":
            return None
        if what == "ready":
            c.model, c.state, c.ready = msg[1], "idle", True
        elif what == "want":
            item = self._next_job() if schema is not None else None
            if item is None:
                self._send(c, ("end",))
            else:
                seq, job, deaths = item
                c.held[seq] = (job, deaths)
                if not self._send(c, ("job", seq, job)):
                    return self._died(c)
        elif what == "out":
            if c.held.pop(msg[1], None) is None:
                return None  # not ours to count (cannot happen; never stored twice)
            done: Outcome = msg[2]
            output_of(done).timings["slot"] = float(c.slot.index)
            self.done_by[c.slot.index] += 1
            return [done]
        elif what == "idle":
            c.state = "idle"
            lost, c.held = c.held, {}  # an engine must answer every job it took; one that did not is a failure
            return [EngineOutput(source=job.source, status=Status.FAILED, engine=self.kind, errors=[
                ErrorItem("engine", "the engine ended its run without a result for this document")])
                for job, _ in lost.values()]
        elif what == "error":
            c.reason = msg[1]
        elif what == "died":
            return self._died(c)
        return None

    def _died(self, c: _Child) -> list[Outcome]:
        """Hand the documents a dead child held to the others; those held through MAX_DEATHS deaths fail."""
        c.state = "dead"
        c.proc.join(timeout=5)
        code = c.proc.exitcode
        if not c.reason:
            c.reason = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
                        else f"exited with status {code}")
        c.conn.close()
        failed: list[Outcome] = []
        for seq, (job, deaths) in sorted(c.held.items(), reverse=True):
            if deaths + 1 >= MAX_DEATHS and any(o.state != "dead" for o in self._children):
                failed.append(EngineOutput(source=job.source, status=Status.FAILED, engine=self.kind, errors=[
                    ErrorItem("engine", f"engine processes died twice while holding this document ({c.reason})")]))
            else:
                self._queue.appendleft((seq, job, deaths + 1))
        held, c.held = len(c.held), {}
        others = any(o.state != "dead" for o in self._children)
        log.warning("docpipe: the engine process on %s stopped (%s); %d document(s) it held %s", c.slot.label,
                    c.reason, held, "go to the others" if others else "stay unfinished")
        return failed

    def _send(self, c: _Child, msg: tuple[Any, ...]) -> bool:
        try:
            c.conn.send(msg)
            return True
        except (OSError, EOFError, ValueError):
            return False

    def _where(self) -> str:
        return ", ".join(s.label for s in self.slots)

    def _reasons(self) -> str:
        return "; ".join(f"{c.slot.label}: {c.reason or 'stopped'}" for c in self._children)

    def close(self) -> None:
        """Idle children release their device and exit; any still working are killed (their work is not stored)."""
        for c in self._children:
            if c.state in ("idle", "loading") and c.proc.is_alive():
                self._send(c, ("stop",))
        for c in self._children:
            c.proc.join(timeout=STOP_GRACE_S if c.state == "idle" else 0.1)
            if c.proc.is_alive():
                c.proc.kill()
                c.proc.join(timeout=5)
            c.conn.close()
            c.state = "dead"


# -- the child process -----------------------------------------------------------------------------------------
def _child_main(conn: Any, kind: str, options: EngineOptions, slot: Slot, parent_pid: int, kernel: bool,
                threads: int) -> None:
    """One engine process: its card only, dies with the parent, runs rounds of its engine until told to stop."""
    os.environ["CUDA_VISIBLE_DEVICES"] = slot.cuda_visible  # before torch is imported: the engine sees one card
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # N processes share the host's cores
    import multiprocessing as mp

    from ..lifeline import tie_to_parent

    mp.current_process().daemon = False  # its engine may start worker processes (--workers, Gemma prep_workers)
    tie_to_parent(parent_pid, kernel=kernel)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it flushes, then stops us
    lock = threading.Lock()  # the engine's feed thread asks for work while the main thread sends results

    def send(msg: tuple[Any, ...]) -> None:
        with lock:
            conn.send(msg)

    engine: Engine | None = None
    try:
        from ..schemas import resolve
        from . import create

        engine = create(kind, options)
        send(("ready", engine.model_name))
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                return
            seqs: dict[str, deque[int]] = {}
            for out in engine.run(_pull(conn, send, seqs), resolve(msg[1])):
                send(("out", seqs[out.source.sha256].popleft(), out))
            send(("idle",))
    except (EOFError, BrokenPipeError):
        return  # the parent is gone
    except BaseException as e:  # noqa: BLE001  the parent hands our documents on and reports this line
        try:
            send(("error", f"{type(e).__name__}: {e}".splitlines()[0]))
        except OSError:
            pass
    finally:
        if engine is not None:
            engine.close()


def _pull(conn: Any, send: Any, seqs: dict[str, deque[int]]) -> Iterator[DocJob]:
    """The jobs of one round, asked for one at a time when the engine is ready for the next."""
    while True:
        send(("want",))
        msg = conn.recv()
        if msg[0] != "job":
            return
        _, seq, job = msg
        seqs.setdefault(job.source.sha256, deque()).append(seq)
        yield job
