#!/usr/bin/env python3
"""Client-side cost of the serve-anywhere engine, per page, and pages/s against a local server.

What docpipe itself spends on a page, with the model's time taken out: rendering at the image-token budget,
image encoding (JPEG q90 default; PNG and WebP shown for comparison), request building, validation of the answer
and the DuckDB write. Then whole runs of ``docpipe ingest --engine openai`` (the real pipeline) against
tests/servers/fault_server.py, an instant OpenAI-compatible server on 127.0.0.1, at concurrency 1, 4 and 16:
pages/s and the client process's CPU time per page. Target (issue 3): <= 20 ms client cost per page at 1120 tokens.

    python scripts/bench_client.py [--docs 64] [--image-tokens 1120] [--concurrency 1,4,16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus(folder: Path, n_docs: int) -> list[Path]:
    """n distinct born-digital PDFs: the sample invoices with a unique trailing comment (new bytes, same pages)."""
    samples = sorted((ROOT / "samples").glob("*.pdf"))
    if not samples:
        sys.exit("no samples/*.pdf: run scripts/make_samples.py first")
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n_docs):
        src = samples[i % len(samples)]
        dst = folder / f"{i:03d}_{src.name}"
        dst.write_bytes(src.read_bytes() + f"\n%docpipe-bench {i}\n".encode())
        out.append(dst)
    return out


def ms(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def stage_costs(pdfs: list[Path], image_tokens: int) -> dict[str, float]:
    """Median ms per page for each client stage, measured in isolation on the sample pages."""
    from docpipe.discover import discover
    from docpipe.engines import DocJob
    from docpipe.engines.vlm import messages
    from docpipe.engines.vlm.answers import check
    from docpipe.engines.vlm.messages import data_url as encode_image
    from docpipe.engines.vlm.prompting import render_spec_for_tokens
    from docpipe.engines.vlm.types import Doc, Group
    from docpipe.models import DocResult, EngineOutput, Status
    from docpipe.rasterize import open_document
    from docpipe.schemas import resolve
    from docpipe.store import Store
    from docpipe.validate import validate

    schema = resolve("invoice")
    json_schema = schema.json_schema  # what the backend does: the JSON Schema built once per run
    spec = render_spec_for_tokens(image_tokens)
    t: dict[str, list[float]] = {k: [] for k in ("render", "jpeg90", "png1", "webp80", "build", "validate", "store")}
    answer = json.dumps({"invoice_number": "INV-1", "invoice_date": "2025-03-05", "vendor_name": "ACME Ltd",
                         "currency": "EUR", "subtotal": 100.0, "tax": 19.0, "total": 119.0,
                         "line_items": [{"description": f"item {i}", "quantity": 1, "unit_price": 10.0,
                                         "amount": 10.0} for i in range(8)]})
    sources = [s for s in discover(pdfs[:10])]
    results = []
    for src in sources:
        infos = []
        with open_document(src) as doc:
            for page in doc.pages():
                a = time.perf_counter()
                img = page.render(spec)
                t["render"].append((time.perf_counter() - a) * 1000)
                for key, fmt in (("jpeg90", "jpeg"), ("png1", "png"), ("webp80", "webp")):
                    a = time.perf_counter()
                    url = encode_image(img, fmt, 90 if fmt == "jpeg" else 80)
                    t[key].append((time.perf_counter() - a) * 1000)
                    if fmt == "jpeg":
                        jpeg_url = url
                a = time.perf_counter()
                doc = Doc(DocJob(src, "invoice"), total_pages=1)
                group = Group(doc, 0, [jpeg_url], [page.info.text if page.text_usable else ""], 1)
                msgs = messages.chat_messages(messages.extraction(schema, group))
                body = json.dumps({"model": "m", "messages": msgs, "response_format": {
                    "type": "json_schema", "json_schema": {"name": schema.name, "schema": json_schema}}})
                t["build"].append((time.perf_counter() - a) * 1000)
                del body, msgs
                a = time.perf_counter()
                data, problem = check(answer, schema.model)
                out = EngineOutput(source=src, data=data, pages=[page.info], engine="openai", model="m")
                res = validate(out, schema)
                t["validate"].append((time.perf_counter() - a) * 1000)
                assert problem is None and res.status is Status.OK, problem
                infos.append(page.info)
        res.output.pages = infos
        results.append(res)
    with tempfile.TemporaryDirectory() as d, Store.open(Path(d) / "s.duckdb") as store:
        store.register_schema(schema)
        run = store.start_run("openai", "m", schema.name, {})
        # the pipeline writes batches of up to 32 documents in one transaction; 64 distinct documents here
        copies = [DocResult(replace(r.output, source=replace(r.source, sha256=f"{k:02d}{r.source.sha256[2:]}")),
                            r.status, r.data) for k in range(7) for r in results][:64]
        for i in range(0, len(copies), 32):
            batch = copies[i:i + 32]
            a = time.perf_counter()
            store.write(batch, schema, run)
            t["store"].append((time.perf_counter() - a) * 1000 / sum(len(r.output.pages) for r in batch))
    return {k: ms(v) for k, v in t.items()} | {"pages": float(len(t["render"]))}


def start_server(log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "servers" / "fault_server.py"), "--port", "0",
                             "--log", str(log)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


def throughput(pdfs: list[Path], url: str, concurrency: int, image_tokens: int, db: Path) -> dict[str, float]:
    """One real ingest run; wall pages/s and the client's CPU ms per page (all threads of this process)."""
    import docpipe

    cpu, wall = time.process_time(), time.perf_counter()
    report = docpipe.ingest(pdfs, schema="invoice", db=db, engine="openai", force=True, model="fault-model",
                            image_tokens=image_tokens, base_url=url, concurrency=concurrency)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert report.counts.get("ok", 0) == len(pdfs), report.counts
    return {"concurrency": concurrency, "docs": len(pdfs), "pages": report.pages, "seconds": round(wall, 2),
            "pages_per_s": round(report.pages / wall, 1), "cpu_ms_per_page": round(cpu * 1000 / report.pages, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=64)
    ap.add_argument("--image-tokens", type=int, default=1120)
    ap.add_argument("--concurrency", default="1,4,16")
    args = ap.parse_args()
    os.environ.setdefault("DOCPIPE_CONFIG", os.devnull)
    tmp = Path(tempfile.mkdtemp(prefix="docpipe-bench-"))
    try:
        pdfs = corpus(tmp / "docs", args.docs)
        stages = stage_costs(pdfs, args.image_tokens)
        proc, url = start_server(tmp / "server.jsonl")
        try:
            throughput(pdfs[:4], url, 2, args.image_tokens, tmp / "warm.duckdb")  # imports, first connections
            runs = [throughput(pdfs, url, int(c), args.image_tokens, tmp / f"c{c}.duckdb")
                    for c in args.concurrency.split(",")]
        finally:
            proc.kill()
            proc.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    client = stages["jpeg90"] + stages["build"] + stages["validate"] + stages["store"]
    print(f"docpipe bench_client  {dt.date.today()}  {platform.platform()}  python {platform.python_version()}  "
          f"cpus={os.cpu_count()}  image_tokens={args.image_tokens}")
    print(f"\nper page, median ms over {int(stages['pages'])} sample pages (docs from samples/*.pdf):")
    print(f"  render {stages['render']:.2f} | encode jpeg q90 {stages['jpeg90']:.2f} (png c1 {stages['png1']:.2f}, "
          f"webp q80 {stages['webp80']:.2f}) | build request {stages['build']:.2f} | validate "
          f"{stages['validate']:.2f} | store {stages['store']:.2f}")
    print(f"  client cost (encode+build+validate+store) = {client:.2f} ms/page; with render "
          f"{client + stages['render']:.2f} ms/page")
    print(f"\nagainst a local instant server ({args.docs} docs):")
    print("  concurrency | pages | seconds | pages/s | client CPU ms/page")
    for r in runs:
        print(f"  {r['concurrency']:>11} | {r['pages']:>5} | {r['seconds']:>7} | {r['pages_per_s']:>7} | "
              f"{r['cpu_ms_per_page']:>6}")


if __name__ == "__main__":
    main()
