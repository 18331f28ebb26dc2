"""Discovery on a Ray cluster: the driver lists, tasks on the workers read, hash and sniff each file.

The listing (walking folders, listing a prefix; the Skipped rows for missing paths, dangling links, loops and
FIFOs) is cheap and stays in the driver, which needs its order. Reading every byte to hash it is the expensive
part: it runs as Ray tasks, many files per task, with a bounded number of tasks in flight, and the results come
back in listing order, so ``discover_on_ray(paths)`` yields exactly what ``discover(paths)`` does, the first ones
while the listing is still going on. Workers must see the same paths (a shared filesystem mounted at the same
place) or reach the same object storage.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .discover import Listed, Skipped, describe_listed, list_paths
from .models import SourceFile

#: A task describes at most this many files or (beyond its first file) this many bytes: small files share the
#: per-task cost, a large one gets a task of its own.
FILES_PER_TASK = 64
BYTES_PER_TASK = 64 << 20
#: The first tasks are small so the first documents reach the engine soon; sizes double up to FILES_PER_TASK.
FIRST_TASK_FILES = 4

log = logging.getLogger("docpipe")

Item = Listed | Skipped


def describe_batch(items: list[Item]) -> list[SourceFile | Skipped | None]:
    """``describe_listed`` over one task's files, Skipped rows passed through in place (what runs on a worker)."""
    return [it if isinstance(it, Skipped) else describe_listed(it) for it in items]


def batches(listing: Iterable[Item], files: int = FILES_PER_TASK, nbytes: int = BYTES_PER_TASK,
            first: int = FIRST_TASK_FILES) -> Iterator[list[Item]]:
    """The listing cut into tasks' worth of items, in order (Skipped rows ride along with their neighbours)."""
    batch: list[Item] = []
    size = count = 0
    limit = max(1, min(first, files))
    for item in listing:
        batch.append(item)
        if isinstance(item, Listed):
            count += 1
            size += item.size
        if count >= limit or (count and size >= nbytes):
            yield batch
            batch, size, count = [], 0, 0
            limit = min(limit * 2, files)
    if batch:
        yield batch


def discover_on_ray(paths: Iterable[Path], inflight: int | None = None, files: int = FILES_PER_TASK,
                    nbytes: int = BYTES_PER_TASK, num_cpus: float = 0) -> Iterator[SourceFile | Skipped]:
    """What ``discover(paths)`` yields, in the same order, each file read and hashed by a task on the connected
    Ray cluster; at most ``inflight`` tasks (default: two per cluster CPU) are submitted ahead of the one whose
    results are yielded next.

    Tasks ask for ``num_cpus=0`` by default and are spread over the nodes: engine actors may hold every CPU of
    the cluster, and discovery must still run beside them (the ``inflight`` bound keeps it from crowding them).
    A task lost with its worker (after Ray's own retries) is described here instead, so nothing is dropped.
    """
    import ray

    task = ray.remote(num_cpus=num_cpus, scheduling_strategy="SPREAD")(describe_batch)
    limit = inflight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    queue: deque[tuple[Any, list[Item]]] = deque()
    for batch in batches(list_paths(paths), files, nbytes):
        # a batch with nothing to read (only Skipped rows) needs no task
        ref = task.remote(batch) if any(isinstance(it, Listed) for it in batch) else None
        queue.append((ref, batch))
        while queue and (len(queue) > limit or _ready(queue[0][0])):
            yield from _results(*queue.popleft())
    while queue:
        yield from _results(*queue.popleft())


def _ready(ref: Any) -> bool:
    import ray

    return ref is None or bool(ray.wait([ref], timeout=0)[0])


def _results(ref: Any, batch: list[Item]) -> Iterator[SourceFile | Skipped]:
    import ray
    from ray.exceptions import RayError

    if ref is None:
        found = describe_batch(batch)
    else:
        try:
            found = ray.get(ref)
        except RayError as e:  # the worker died or could not start: read them here, same answers
            log.warning("a discovery task failed on the cluster (%s); its files are read in the driver",
                        str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
            found = describe_batch(batch)
    for item in found:
        if item is not None:
            yield item
