"""GPU time per stage of a batch (vision tower, prefill, decode), without a sync inside the batch.

Why: a batch's time is known only as a whole (the engine syncs once at its end), so where it went took a profiler
run. On CUDA each stage records a pair of events on the stream and the times are read after the engine's sync;
on the CPU the clock is the host's. The engine adds the totals to its stats (``vision_s``, ``prefill_s`` with
the vision tower inside it, ``decode_s``), and ``scripts/bench_gemma.py`` prints them per page.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any


class StageClock:
    """Seconds per stage name, accumulated over batches."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._pending: list[tuple[str, Any, Any]] = []

    @contextlib.contextmanager
    def stage(self, name: str, device: Any) -> Iterator[None]:
        """Time the work issued inside the block on ``device`` (a torch.device)."""
        if getattr(device, "type", "cpu") != "cuda":
            t = time.perf_counter()
            yield
            self.totals[name] += time.perf_counter() - t
            return
        import torch

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        yield
        end.record()
        self._pending.append((name, start, end))

    def settle(self) -> dict[str, float]:
        """Add the recorded CUDA stages (waits for their end events) to the totals; returns the totals."""
        for name, start, end in self._pending:
            end.synchronize()
            self.totals[name] += start.elapsed_time(end) / 1000
        self._pending.clear()
        return dict(self.totals)
