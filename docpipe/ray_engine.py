"""Any engine on a Ray cluster: a pool of engine actors fed by the driver, results streamed back to its writer.

``docpipe ingest ... --ray ADDRESS`` keeps the listing, claims and the DuckDB writer in the driver (one writer,
so the store stays consistent), reads and hashes the files in tasks (``docpipe.ray_discover``) and runs the
engine's work in actors on the cluster, each result validated and its values grounded (evidence) in the actor, so
the driver only lands rows:

- offline: one CPU actor per cluster CPU (``num_cpus=1``), one document per call, two calls queued per actor;
- openai: client actors (``num_cpus=0.25``) each keeping ``--concurrency`` requests in flight against the
  servers in ``--base-url`` (several servers: comma-separated, the engine spreads requests over them);
- gemma: one actor per GPU (``num_gpus=1``), each a whole in-process Gemma engine batching its pages.

Engines turn bad input into status rows themselves; a call that raises anyway becomes a failed row for its
documents. An actor that dies (killed, out of memory, node lost) has its documents sent to another actor once;
a document that kills workers twice is recorded as failed (retried on the next run), never retried forever.
Workers must be able to read the documents: a shared filesystem at the same path, or object storage URLs.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .engines import DocJob, Engine, EngineOptions
from .errors import EngineUnavailable
from .models import DocResult, EngineOutput, ErrorItem, Outcome, Status
from .schemas import SchemaInfo

#: Calls queued on each actor, so it never waits for the driver between documents.
QUEUED_PER_ACTOR = 2


@dataclass(frozen=True)
class RayPlan:
    """How many actors of what size, for one engine kind on one cluster."""

    actors: int
    num_cpus: float
    num_gpus: float
    docs_per_call: int


def plan(kind: str, options: EngineOptions, resources: dict[str, float], actors: int | None = None) -> RayPlan:
    """Actor sizes per engine kind; ``actors`` overrides the count (default: fill the cluster)."""
    cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    if kind == "gemma":
        if not gpus and not actors:
            raise EngineUnavailable("the Ray cluster has no GPU for the gemma engine (num_gpus=1 per actor)")
        return RayPlan(actors or gpus, 1, 1, max(1, options.extra.get("batch_docs") or 8))
    if kind == "openai":
        conc = int(options.extra.get("concurrency") or 4)
        urls = [u for u in str(options.extra.get("base_url") or "").split(",") if u.strip()]
        return RayPlan(actors or max(1, len(urls)), 0.25, 0, conc)
    return RayPlan(actors or max(1, cpus), 1, 0, 1)


def connect(address: str) -> None:
    """Join a cluster (``auto``, ``ray://host:10001``) or start a local one (``local`` or ``local:N`` CPUs)."""
    try:
        import ray
    except ImportError as e:
        raise EngineUnavailable("--ray needs Ray: pip install 'docpipe[ray]'") from e
    if ray.is_initialized():
        return
    kw: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if address.startswith("local"):
        n = address.partition(":")[2]
        ray.init(num_cpus=int(n) if n else os.cpu_count(), object_store_memory=256 << 20, **kw)
    else:
        ray.init(address=address, **kw)


class _EngineWorker:
    """The actor body: one engine, built on the worker, run over the documents of each call."""

    def __init__(self, kind: str, options: EngineOptions) -> None:
        from .engines import create

        self.engine = create(kind, options)
        self.schemas: dict[str, SchemaInfo] = {}

    def model_name(self) -> str | None:
        return self.engine.model_name

    def pid(self) -> int:
        return os.getpid()

    def process(self, jobs: list[DocJob]) -> list[DocResult]:
        """The documents' finished results: validated and grounded here, so the driver only lands them."""
        from .finish import finished
        from .schemas import resolve

        schema = self.schemas.get(jobs[0].schema_ref) or self.schemas.setdefault(
            jobs[0].schema_ref, resolve(jobs[0].schema_ref))
        by_id = {j.source.sha256: j for j in jobs}
        out = []
        for item in self.engine.run(jobs, schema):
            job = by_id[item.source.sha256]
            out.append(finished(item, schema, job.password, job.max_pages))
        return out


class RayEngine(Engine):
    """An Engine whose ``run`` fans documents out to actors on a Ray cluster; same outputs, any order."""

    def __init__(self, kind: str, options: EngineOptions, address: str, actors: int | None = None) -> None:
        super().__init__(options)
        import ray

        connect(address)
        self.kind = kind  # results are stored under the inner engine's kind: same rows as a plain ingest
        self.plan = plan(kind, options, ray.cluster_resources(), actors)
        # each actor runs its engine in-process: parallelism comes from the number of actors
        self._inner = replace(options, workers=1)
        self._cls = ray.remote(num_cpus=self.plan.num_cpus, num_gpus=self.plan.num_gpus)(_EngineWorker)
        self.actors = [self._new_actor() for _ in range(self.plan.actors)]
        self._model = ray.get(self.actors[0].model_name.remote())

    def _new_actor(self) -> Any:
        return self._cls.remote(self.kind, self._inner)

    @property
    def model_name(self) -> str | None:
        return self._model

    def worker_pids(self) -> list[int]:
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def run(self, jobs: Iterable[DocJob], schema: SchemaInfo) -> Iterator[Outcome]:
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        source = iter(jobs)
        retry: deque[tuple[DocJob, int]] = deque()
        inflight: dict[Any, tuple[int, Any, list[tuple[DocJob, int]]]] = {}
        load = [0] * len(self.actors)
        exhausted = False
        while True:
            for i in range(len(self.actors)):
                while load[i] < QUEUED_PER_ACTOR and (retry or not exhausted):
                    batch = _take(retry, source, self.plan.docs_per_call)
                    exhausted = exhausted or len(batch) < self.plan.docs_per_call
                    if not batch:
                        break
                    actor = self.actors[i]
                    inflight[actor.process.remote([j for j, _ in batch])] = (i, actor, batch)
                    load[i] += 1
            if not inflight:
                return
            ready, _ = ray.wait(list(inflight), num_returns=1)
            i, actor, batch = inflight.pop(ready[0])
            try:
                outs = ray.get(ready[0])
            except RayActorError:
                if self.actors[i] is actor:  # the dead one's other queued calls fail too and come back here
                    self.actors[i] = self._new_actor()
                    load[i] = 0
                for job, attempt in batch:
                    if attempt == 0:
                        retry.append((job, 1))
                    else:
                        yield _failed(job, "a worker died twice while processing this document (crash or out of "
                                           "memory); it is retried on the next run")
                continue
            except RayTaskError as e:
                outs = [_failed(job, f"internal error on a worker: {str(e.cause or e).splitlines()[0]}")
                        for job, _ in batch]
            if self.actors[i] is actor:
                load[i] -= 1
            yield from outs

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []


def _take(retry: deque[tuple[DocJob, int]], source: Iterator[DocJob], n: int) -> list[tuple[DocJob, int]]:
    batch: list[tuple[DocJob, int]] = []
    while retry and len(batch) < n:
        batch.append(retry.popleft())
    for job in source:
        batch.append((job, 0))
        if len(batch) >= n:
            break
    return batch


def _failed(job: DocJob, message: str) -> EngineOutput:
    return EngineOutput(source=job.source, status=Status.FAILED, errors=[ErrorItem("engine", message)])
