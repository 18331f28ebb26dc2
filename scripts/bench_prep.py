"""Benchmark the Gemma engine's page preparation stage alone (no model, no GPU) and print one table.

What is timed: the Gemma engine's page feed (``vlm.feed.Feed``, or ``gemma.prep.PoolFeed`` with workers) exactly
as a run uses it (open each document, render its pages at
``PromptBuilder.render_spec(image_tokens)`` (the processor's own target size), ``PromptBuilder.pixels`` -> uint8
patches and positions (or the processor's floats where bytes cannot be exact), text layer and grouping), with a
consumer that frees every page group as soon as it arrives (an infinitely fast GPU), over ``--copies`` copies of
``samples/*.pdf``. For ``prep_workers`` > 1 the process pool is started and warmed by one untimed pass first (its
start-up, ~seconds of importing transformers per worker, happens once per engine); the best of ``--repeat`` passes
is reported, with the CPU time of this process (steadier than wall time on a shared machine; pool workers' CPU is
not in it).
``--breakdown`` adds one-page-at-a-time ms per stage: render, the processor's float path (what pages cost before
they were kept as bytes), the byte path, and patchify alone on a page already at the processor's target size.

Usage:  python scripts/bench_prep.py [--workers 1 2] [--image-tokens 1120] [--copies 4] [--processor pil|torch]
                                     [--breakdown]
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_engine(workers: int, image_tokens: int, processor_kind: str):
    import torch
    from gemma_tiny import build_processor, build_tokenizer

    from docpipe.engines import EngineOptions
    from docpipe.engines.gemma.backend import GemmaBackend
    from docpipe.engines.gemma.inputs import PromptBuilder
    from docpipe.engines.gemma.settings import GemmaSettings

    proc = build_processor(build_tokenizer(), max_soft_tokens=image_tokens)
    if processor_kind == "torch":
        from transformers import Gemma4ImageProcessor

        proc.image_processor = Gemma4ImageProcessor(max_soft_tokens=image_tokens)
    eng = GemmaBackend(EngineOptions(image_tokens=image_tokens,
                                     settings={"gemma": GemmaSettings(prep_workers=workers)}))
    # what setup() sets and the page feed reads, without a model
    eng.processor, eng.prompts, eng.dtype, eng.device = proc, PromptBuilder(proc), torch.bfloat16, "cpu"
    eng.planned_batch = 16
    eng.max_pages = 2 * eng.planned_batch + 8  # the GPU default bound
    eng.group_pages = max(1, eng.max_pages // 2)
    eng.prep_workers = workers
    return eng


def one_pass(eng, jobs) -> tuple[int, float, float]:
    from docpipe.engines.gemma.prep import PoolFeed
    from docpipe.engines.vlm.backend import Plan
    from docpipe.engines.vlm.feed import STOP, Feed
    from docpipe.engines.vlm.types import DocFailed, GroupReady

    tokens = eng.options.image_tokens

    def prepare(img):
        px = eng.prompts.pixels(img, tokens, eng.dtype)
        return px, px.n_tokens

    plan = Plan(spec=eng.prompts.render_spec(tokens), prepare=prepare, count=eng.prompts.count,
                group_pages=eng.group_pages, pages_in_memory=eng.max_pages)
    t, cpu = time.perf_counter(), time.process_time()
    feed = (PoolFeed(iter(jobs), plan, eng) if eng.prep_workers > 1 else Feed(iter(jobs), plan)).start()
    pages = failed = 0
    while True:
        item = feed.queue.get()
        if isinstance(item, BaseException):
            raise item
        if item is STOP:
            break
        if isinstance(item, GroupReady):
            pages += len(item.group.pages)
            feed.release(item.group)
        elif isinstance(item, DocFailed):
            failed += 1
    dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    feed.close()
    assert failed == 0, f"{failed} documents failed"
    return pages, dt, cpu


def breakdown(eng, files: list[str], image_tokens: int) -> None:
    """Mean ms per page of each preparation stage, one page at a time in this thread."""
    import numpy as np
    import torch

    from docpipe.discover import describe
    from docpipe.engines.gemma.inputs import page_arrays, patchify, target_size
    from docpipe.rasterize import open_document

    ip = eng.processor.image_processor
    spec = eng.prompts.render_spec(image_tokens)  # what the engine renders with: the processor's own size
    as_bytes = eng.prompts.byte_values is not None
    stages = {"open + page text layer (PyMuPDF)": 0.0, "render (PyMuPDF / image fit)": 0.0,
              "processor -> float32 -> bf16 (before)": 0.0,
              "page_arrays, bytes (patchify; a resize only if off-size)": 0.0,
              "patchify alone, page at the target size": 0.0}
    n = resized = 0
    for f in files:
        t00 = time.perf_counter()
        with open_document(describe(Path(f))) as d:
            pages = d.pages()
            while (page := next(pages, None)) is not None:
                t0 = time.perf_counter()
                img = page.render(spec)
                t1 = time.perf_counter()
                ip([img], return_tensors="pt", max_soft_tokens=image_tokens)["pixel_values"][0].to(torch.bfloat16)
                t2 = time.perf_counter()
                page_arrays(ip, img, image_tokens, as_bytes)
                t3 = time.perf_counter()
                target = target_size(ip, img.height, img.width, image_tokens)
                resized += target != img.size[::-1]
                at = np.asarray(img.resize(target[::-1]))
                t4 = time.perf_counter()
                patchify(at, ip.patch_size)
                t5 = time.perf_counter()
                for k, v in zip(stages, (t0 - t00, t1 - t0, t2 - t1, t3 - t2, t5 - t4)):
                    stages[k] += v * 1000
                n += 1
                t00 = time.perf_counter()
    print(f"\nper page, {n} pages, {resized} of them rendered at another size than the processor's target "
          f"(it resizes them), bytes path {'on' if as_bytes else 'OFF (processor not reproducible)'}")
    print("| stage | ms/page |")
    print("|---|---|")
    for k, v in stages.items():
        print(f"| {k} | {v / n:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--image-tokens", type=int, default=1120)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--processor", choices=["pil", "torch"], default="pil",
                    help="pil: Gemma4ImageProcessorPil (what bench_gemma.py and the tests build); "
                         "torch: the torchvision Gemma4ImageProcessor")
    ap.add_argument("--breakdown", action="store_true", help="also time each stage per page (one copy)")
    args = ap.parse_args()

    import torch
    from bench_gemma import _checkout_schemas

    _checkout_schemas()  # a plain checkout (the GPU machine): schemas/ as docpipe.builtin_schemas
    from docpipe.discover import describe
    from docpipe.engines import DocJob

    files = sorted(glob.glob(str(ROOT / "samples" / "*.pdf")))
    jobs = [DocJob(source=describe(Path(f)), schema_ref="invoice") for f in files] * args.copies
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {platform.processor() or platform.machine()}, {cpus} CPUs, Python {platform.python_version()}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads in the main process)")
    print(f"{len(jobs)} documents ({len(files)} sample PDFs x {args.copies}), {args.image_tokens} image tokens, "
          f"processor {args.processor}, page bound {2 * 16 + 8}")
    rows = []
    for w in args.workers:
        eng = make_engine(w, args.image_tokens, args.processor)
        t = time.perf_counter()
        one_pass(eng, jobs[: max(w, 2)])  # warm-up (and, with workers, the pool's start)
        warm = time.perf_counter() - t
        best = None
        for _ in range(args.repeat):
            pages, dt, cpu = one_pass(eng, jobs)
            best = (dt, cpu) if best is None else min(best, (dt, cpu))
        if args.breakdown and w == args.workers[0]:
            breakdown(eng, files, args.image_tokens)
        eng.close()
        rows.append((w, pages, *best, warm))
    base = rows[0][1] / rows[0][2]
    print("| prep workers | pages | seconds (best) | pages/s | vs first row | CPU ms/page (this process) "
          "| warm-up pass s |")
    print("|---|---|---|---|---|---|---|")
    for w, pages, dt, cpu, warm in rows:
        print(f"| {w} | {pages} | {dt:.2f} | {pages / dt:.2f} | {pages / dt / base:.2f}x | {cpu / pages * 1000:.0f} "
              f"| {warm:.1f} |")


if __name__ == "__main__":
    main()
