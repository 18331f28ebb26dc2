#!/usr/bin/env python3
"""Pages/s of ``docpipe ingest`` with one engine and with one engine per GPU (``--gpus``), the same documents.

Each input is copied K times with a distinct trailing comment (bytes after the end of the file), so every copy is a
distinct document (docpipe reads identical bytes once) and the work is the same in both runs. Each run gets a
fresh database. Two rates per run: the whole run (start-up and model loading included) and from the first finished
document to the last (the rate a long run approaches).

On a machine without GPUs, ``--gpus cpu:N`` runs N engine processes on the CPU: it shows the mechanics (the
queue, the processes, the store), not the GPU target.

    python scripts/bench_gpus.py samples/ --engine offline --gpus cpu:2 --copies 4
    python scripts/bench_gpus.py samples/ --engine gemma --model /models/e4b --gpus all --copies 40
    # random weights of a real architecture, saved once for --model (needs a GPU; bench_gemma.py's configs):
    python scripts/bench_gpus.py samples/ --engine gemma --random-arch e4b --save /tmp/e4b-random --gpus 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            gpus = f"{len(names)} x {names[0]}" if len(set(names)) == 1 else ", ".join(names)
    except ImportError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {gpus}"


def copies(paths: list[Path], k: int, folder: Path) -> int:
    """k distinct copies of every PDF and image under paths; returns how many files."""
    from docpipe.discover import discover
    from docpipe.models import SourceFile

    n = 0
    for item in discover(paths):
        if not isinstance(item, SourceFile) or item.kind not in ("pdf", "image"):
            continue
        data = Path(item.path).read_bytes()
        for i in range(k):
            tail = f"\n%docpipe-bench copy {i}\n".encode()
            (folder / f"{i:03d}-{Path(item.path).name}").write_bytes(data + tail)
            n += 1
    return n


class Clock:
    """A pipeline Progress that notes when the first and the last document finished."""

    def __init__(self) -> None:
        self.first = self.last = 0.0
        self.pages_first = 0

    def engine_chosen(self, kind: str, why: str, model: str | None) -> None:
        pass

    def planned(self, total_files: int, todo: int, skipped: int, copies: int = 0) -> None:
        pass

    def document_done(self, result) -> None:
        now = time.perf_counter()
        if not self.first:
            self.first, self.pages_first = now, len(result.output.pages)
        self.last = now


def run(folder: Path, db: Path, engine: str, options, gpus: str | None) -> dict:
    from docpipe.pipeline import IngestOptions, ingest

    clock = Clock()
    report = ingest(IngestOptions(paths=[folder], db=db, engine=engine, engine_options=options, gpus=gpus), clock)
    steady = (report.pages - clock.pages_first) / (clock.last - clock.first) if clock.last > clock.first else 0.0
    return {"engines": gpus or "1 (this process)", "docs": report.processed, "ok": report.counts.get("ok", 0),
            "pages": report.pages, "seconds": report.seconds, "rate": report.pages / report.seconds,
            "steady": steady, "model": report.model}


def save_random(arch: str, folder: Path) -> None:
    """Random bf16 weights of a real Gemma 4 architecture, saved where ``--model`` loads them (needs CUDA)."""
    from bench_gemma import _checkout_schemas, build

    _checkout_schemas()
    model, proc = build(arch, "grouped_mm")
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    del model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, default=[ROOT / "samples"])
    ap.add_argument("--engine", default="offline")
    ap.add_argument("--model", default=None)
    ap.add_argument("--gpus", default=None, help="the N-engine run's --gpus (default: all, or cpu:2 without GPUs)")
    ap.add_argument("--copies", type=int, default=4, help="distinct copies of each input")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--image-tokens", type=int, default=1120)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="DOCPIPE_GEMMA settings")
    ap.add_argument("--random-arch", default=None, help="save random weights of this architecture first (e4b, ...)")
    ap.add_argument("--save", type=Path, default=None, help="folder for --random-arch (then used as --model)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.set:
        os.environ["DOCPIPE_GEMMA"] = json.dumps({k: json.loads(v) for k, _, v in (s.partition("=") for s in args.set)})
    if args.random_arch:
        if args.save is None:
            ap.error("--random-arch needs --save DIR")
        if not (args.save / "config.json").exists():
            save_random(args.random_arch, args.save)
        args.model = str(args.save)
    gpus = args.gpus
    if gpus is None:
        try:
            import torch

            gpus = "all" if torch.cuda.is_available() else "cpu:2"
        except ImportError:
            gpus = "cpu:2"
    from docpipe.engines import EngineOptions

    options = EngineOptions(workers=args.workers, model=args.model, image_tokens=args.image_tokens)
    tmp = Path(tempfile.mkdtemp(prefix="bench-gpus-"))
    try:
        docs = tmp / "docs"
        docs.mkdir()
        n = copies(args.paths, args.copies, docs)
        rows = [run(docs, tmp / "one.duckdb", args.engine, options, None),
                run(docs, tmp / "many.duckdb", args.engine, options, gpus)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"machine: {machine()}")
    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; engine {args.engine} "
          f"({rows[0]['model']}); {n} documents; command: {' '.join(sys.argv)}")
    print(f"{'engines':<18} {'docs':>5} {'ok':>5} {'pages':>6} {'seconds':>8} {'pages/s':>8} {'steady':>8} "
          f"{'speed-up':>9}")
    for r in rows:
        up = r["rate"] / rows[0]["rate"] if rows[0]["rate"] else 0.0
        up_s = r["steady"] / rows[0]["steady"] if rows[0]["steady"] else 0.0
        print(f"{r['engines']:<18} {r['docs']:>5} {r['ok']:>5} {r['pages']:>6} {r['seconds']:>8.1f} "
              f"{r['rate']:>8.2f} {r['steady']:>8.2f} {up:>5.2f}x/{up_s:.2f}x")


if __name__ == "__main__":
    main()
