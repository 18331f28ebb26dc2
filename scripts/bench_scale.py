"""Pages per second of the offline engine on scanned pages against the number of CPU workers, and the driver's
own cost per page (landing results in DuckDB), in one run; prints a table with the machine.

    python scripts/bench_scale.py                                   # workers 1,2,4,8,16; 4 pages per worker
    python scripts/bench_scale.py --scans DIR --no-driver           # pre-made PNG scans; engine only (no DuckDB)
    python scripts/bench_scale.py --backend ray                     # the same through `--ray` actors

Workers (pool backend) are the offline engine's own process pool, one OCR thread each, so N workers use N cores
(``docpipe ingest --workers 1`` instead runs in-process with two OCR threads). Every run includes starting its
workers: pages/s "steady" leaves out the time until each worker has returned its first page.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TEXT = """ACME Tools GmbH
Hauptstrasse 5, 10115 Berlin   USt-IdNr.: DE123456789
Rechnung  Rechnungsnummer: RE-2025-{n:04d}   Rechnungsdatum: 05.03.2025
Rechnungsempfänger: Beispiel AG, Marktplatz 1, 80331 München

Pos  Beschreibung       Menge  Einzelpreis   Betrag
1    Hammer             2      10,00 EUR     20,00 EUR
2    Schraubenset       1      5,50 EUR      5,50 EUR
3    Wasserwaage 60cm   1      {n},90 EUR    {n},90 EUR

Zwischensumme: 25,50 EUR
MwSt. 19 %: 4,85 EUR
Gesamtbetrag: 30,35 EUR
Zahlbar innerhalb von 30 Tagen ohne Abzug. Bankverbindung: IBAN DE02 1203 0000 0000 2020 51
"""


def make_scans(folder: Path, n: int, dpi: int = 200) -> list[Path]:
    """n distinct grayscale A4 scans (PNG) of an invoice page."""
    import pymupdf
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        doc = pymupdf.open()
        page = doc.new_page(width=595.28, height=841.89)
        page.insert_textbox(pymupdf.Rect(50, 50, 545, 800), TEXT.format(n=i), fontsize=11, fontname="helv")
        pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
        p = folder / f"scan{i:04d}.png"
        Image.frombytes("L", (pix.width, pix.height), pix.samples).save(p, dpi=(dpi, dpi))
        out.append(p)
    return out


def engine_rate(scans: list[Path], workers: int, pages: int, backend: str) -> tuple[float, float, float]:
    """(seconds, pages/s, steady pages/s) for ``pages`` documents of one scanned page each."""
    from docpipe.discover import describe
    from docpipe.engines import DocJob, EngineOptions
    from docpipe.schemas import resolve

    schema = resolve("invoice")
    sources = [describe(scans[i % len(scans)]) for i in range(pages)]
    jobs = [DocJob(source=s, schema_ref=schema.ref) for s in sources]
    t0 = time.perf_counter()
    if backend == "ray":
        from docpipe.ray_engine import RayEngine

        engine = RayEngine("offline", EngineOptions(workers=1), "local", actors=workers)
        outs = engine.run(jobs, schema)
    else:
        from docpipe.engines.offline.engine import _run_pool  # the engine's pool, one OCR thread per worker

        engine = None
        outs = _run_pool(jobs, workers)
    stamps = []
    for out in outs:
        assert out.status.value in ("ok", "invalid"), out.errors
        stamps.append(time.perf_counter())
    if engine is not None:
        engine.close()
    wall = stamps[-1] - t0
    warm = stamps[min(workers, len(stamps)) - 1]
    steady = (len(stamps) - workers) / (stamps[-1] - warm) if len(stamps) > workers and stamps[-1] > warm else 0.0
    return wall, pages / wall, steady


def _invoices(folder: Path, n: int) -> list[object]:
    """``n`` real invoice PDFs, each read by the offline engine (not validated or grounded yet)."""
    import pymupdf

    from docpipe.discover import discover
    from docpipe.engines import DocJob
    from docpipe.engines.offline.engine import process_document

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        doc = pymupdf.open()
        doc.new_page(width=595, height=842).insert_text((50, 60), TEXT.format(n=i + 10), fontsize=9)
        doc.save(folder / f"invoice_{i:04d}.pdf")
    return [process_document(DocJob(source=s, schema_ref="invoice")) for s in discover([folder])]


def driver_rate(results: int, batch: int, folder: Path, itself: int = 300) -> tuple[float, float, float]:
    """Results (one page each, with their evidence) landed per second by the ingest's claims and writer, results
    arriving at once: finished in the workers (now), with one connection held open and commits of ``batch``
    (before #17), and finished in the driver itself (validation and evidence in the landing process, before)."""
    from dataclasses import replace

    from docpipe.finish import finish
    from docpipe.models import SourceFile
    from docpipe.schemas import resolve
    from docpipe.sharing import SharedStore
    from docpipe.store import Store

    schema = resolve("invoice")
    outputs = _invoices(folder / "driver", itself)
    one = finish(outputs[0], schema)  # as a worker hands it back: validated, grounded

    def res(i: int):
        src = SourceFile(Path(f"/docs/{i}.pdf"), f"{i:064x}", 1000, "pdf", "application/pdf")
        return replace(one, output=replace(one.output, source=src))

    def land(db: Path, items: list, get) -> float:
        by_id = {x.source.sha256: x for x in items}
        shared = SharedStore(db, schema, "offline")
        with shared.session() as st:
            st.register_schema(schema)
        buffer: list = []
        t0 = time.perf_counter()
        for src in shared.claimed([x.source for x in items], 8):  # as the pipeline does
            buffer.append(get(by_id[src.sha256]))
            if shared.commit_due(len(buffer)):
                shared.commit(buffer, "bench")
                buffer = []
        shared.commit(buffer, "bench")
        return len(items) / (time.perf_counter() - t0)

    rows = [res(i) for i in range(results)]
    with tempfile.TemporaryDirectory() as tmp:
        land(Path(tmp) / "warm.duckdb", rows[:50], lambda r: r)  # imports (pyarrow) and the first file
        workers = land(Path(tmp) / "shared.duckdb", rows, lambda r: r)
        with Store.open(Path(tmp) / "held.duckdb") as st:
            st.register_schema(schema)
            t0 = time.perf_counter()
            for i in range(0, results, batch):
                st.write(rows[i:i + batch], schema, "bench")
            held = results / (time.perf_counter() - t0)
        alone = land(Path(tmp) / "itself.duckdb", outputs, lambda o: finish(o, schema))
    return workers, held, alone


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,4,8,16")
    ap.add_argument("--pages-per-worker", type=int, default=4)
    ap.add_argument("--scans", type=Path, help="folder of PNG scans to use (default: make 32 here)")
    ap.add_argument("--backend", choices=["pool", "ray"], default="pool")
    ap.add_argument("--no-driver", action="store_true", help="skip the driver measurement (needs DuckDB)")
    ap.add_argument("--driver-results", type=int, default=20_000)
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    tmp = None
    if args.scans:
        scans = sorted(args.scans.glob("*.png"))
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench_scale_"))
        scans = make_scans(tmp, 32)
    if args.backend == "ray":
        from docpipe.ray_engine import connect

        connect(f"local:{max(counts)}")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}; offline engine ({args.backend}), {len(scans)} distinct scans "
          f"(A4, 200 dpi, grey), {args.pages_per_worker} pages per worker", flush=True)
    print(f"{'workers':>7} {'pages':>6} {'seconds':>8} {'pages/s':>8} {'steady':>8} {'speedup':>8} "
          f"{'pages/day':>10}")
    base = None
    for n in counts:
        pages = n * args.pages_per_worker
        wall, rate, steady = engine_rate(scans, n, pages, args.backend)
        base = base or steady or rate
        print(f"{n:>7} {pages:>6} {wall:>8.1f} {rate:>8.2f} {steady:>8.2f} {(steady or rate) / base:>7.1f}x "
              f"{rate * 86400:>10,.0f}", flush=True)
    if not args.no_driver:
        work = tmp or Path(tempfile.mkdtemp(prefix="bench_scale_"))
        shared, held, itself = driver_rate(args.driver_results, 32, work)
        print(f"driver: {shared:,.0f} pages/s landed, evidence included (claims, the file opened per commit, "
              f"commits at most every second); {held:,.0f} pages/s with one connection held open and commits of 32; "
              f"{itself:,.0f} pages/s when the driver also validates and grounds each result itself")
        if not tmp:
            shutil.rmtree(work, ignore_errors=True)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
