"""Benchmark the offline ingest path on this machine and print one table.

Measures, in one run:
  * end-to-end pages/s of `docpipe ingest` (offline engine) on born-digital one-page invoices and on scanned pages,
    with 1 and 2 workers (fresh database each time, so nothing is skipped);
  * rasterization speed of docpipe's renderer against `pdftoppm` on the same pages (200 dpi, grey);
  * wall time of `docpipe --help` (best of 5).

Usage:  python scripts/bench_ingest.py [--digital 200] [--scans 6] [--out /tmp/docpipe-bench]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATE = """{vendor}
{street}, {city}
VAT ID: {vat}

INVOICE
Invoice number: INV-{num}
Invoice date: {date}
Due date: {due}

Bill to:
{customer}
{cstreet}

Description                 Qty   Unit price     Amount
Consulting services           {q}      {up:.2f}     {amt:.2f}
Travel expenses               1       {tr:.2f}     {tr:.2f}

Subtotal: {sub:.2f} EUR
VAT 19%: {tax:.2f} EUR
Total: {tot:.2f} EUR
"""


def make_corpus(folder: Path, n_digital: int, n_scans: int) -> tuple[Path, Path]:
    """n one-page born-digital invoices and n scans (200 dpi grey JPEG, slight skew and noise)."""
    import numpy as np
    import pymupdf
    from PIL import Image, ImageFilter

    rnd = random.Random(7)
    digital, scans = folder / "digital", folder / "scans"
    digital.mkdir(parents=True)
    scans.mkdir(parents=True)
    for i in range(max(n_digital, n_scans)):
        q, up, tr = rnd.randint(1, 20), rnd.uniform(50, 200), rnd.uniform(10, 300)
        sub = round(q * up, 2) + round(tr, 2)
        text = TEMPLATE.format(vendor=f"Vendor {i} GmbH", street="Hauptstrasse 5", city="10115 Berlin",
                               vat=f"DE{100000000 + i}", num=f"{2025}-{i:05d}", date="2025-03-05", due="2025-04-04",
                               customer=f"Customer {i} AG", cstreet="Marktplatz 1, 80331 Muenchen", q=q, up=up,
                               amt=q * up, tr=tr, sub=sub, tax=sub * 0.19, tot=sub * 1.19)
        doc = pymupdf.open()
        page = doc.new_page(width=595.28, height=841.89)
        page.insert_textbox(pymupdf.Rect(60, 60, 540, 800), text, fontsize=10, fontname="helv")
        if i < n_digital:
            doc.save(digital / f"inv_{i:04d}.pdf")
        if i < n_scans:
            pix = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
            img = Image.frombytes("L", (pix.width, pix.height), pix.samples)
            img = img.rotate(rnd.uniform(-1.5, 1.5), expand=True, fillcolor=255).filter(ImageFilter.GaussianBlur(0.6))
            arr = np.asarray(img, dtype=np.float32) + np.random.default_rng(i).normal(0, 8, (img.height, img.width))
            Image.fromarray(arr.clip(0, 255).astype("uint8")).save(scans / f"scan_{i:03d}.jpg", quality=70,
                                                                    dpi=(200, 200))
        doc.close()
    return digital, scans


def run_ingest(folder: Path, db: Path, workers: int) -> tuple[int, float]:
    from docpipe.engines import EngineOptions
    from docpipe.pipeline import IngestOptions, ingest

    if db.exists():
        db.unlink()
    t = time.perf_counter()
    rep = ingest(IngestOptions(paths=[folder], db=db, engine="offline", engine_options=EngineOptions(workers=workers)))
    dt = time.perf_counter() - t
    bad = {k: v for k, v in rep.counts.items() if k != "ok" and v}
    if bad:
        print(f"  note: {folder.name} w={workers}: {bad}", file=sys.stderr)
    return rep.pages, dt


def bench_render(folder: Path, tmp: Path, n: int) -> tuple[float, float | None]:
    """Pages/s rendering the same n pages at 200 dpi grey: docpipe (to memory) vs pdftoppm (PGM files)."""
    from docpipe.discover import describe
    from docpipe.rasterize import RenderSpec, open_document

    files = sorted(folder.glob("*.pdf"))[:n]
    spec = RenderSpec(max_pixels=12_000_000, max_dpi=200, min_dpi=200, gray=True)
    t = time.perf_counter()
    for f in files:
        with open_document(describe(f)) as doc:
            for p in doc.pages():
                p.render(spec)
    ours = len(files) / (time.perf_counter() - t)
    if not shutil.which("pdftoppm"):
        return ours, None
    out = tmp / "ppm"
    out.mkdir(exist_ok=True)
    t = time.perf_counter()
    for i, f in enumerate(files):
        subprocess.run(["pdftoppm", "-r", "200", "-gray", str(f), str(out / f"p{i}")], check=True)
    theirs = len(files) / (time.perf_counter() - t)
    return ours, theirs


def bench_help() -> float:
    exe = shutil.which("docpipe") or str(Path(sys.executable).parent / "docpipe")
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--digital", type=int, default=200, help="born-digital one-page invoices")
    ap.add_argument("--scans", type=int, default=6, help="scanned pages (OCR)")
    ap.add_argument("--render-pages", type=int, default=50)
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir, removed after)")
    args = ap.parse_args()
    tmp = args.out or Path(tempfile.mkdtemp(prefix="docpipe-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    digital, scans = make_corpus(tmp / "corpus", args.digital, args.scans)
    rows = []
    for name, folder in (("born-digital 1-page invoices", digital), ("scanned pages (OCR)", scans)):
        for w in (1, 2):
            pages, secs = run_ingest(folder, tmp / f"b_{w}.duckdb", w)
            rows.append((f"ingest {name}", f"workers={w}", f"{pages / secs:.2f} pages/s",
                         f"{pages} pages in {secs:.1f} s"))
    ours, theirs = bench_render(digital, tmp, args.render_pages)
    rows.append(("render 200 dpi grey: docpipe (PyMuPDF, to memory)", "1 process", f"{ours:.1f} pages/s", ""))
    rows.append(("render 200 dpi grey: pdftoppm -gray (PGM files)", "1 process",
                 f"{theirs:.1f} pages/s" if theirs else "pdftoppm not installed", ""))
    rows.append(("docpipe --help", "best of 5", f"{bench_help():.3f} s", ""))
    print(f"\nmachine: {platform.node()} | {platform.processor() or platform.machine()} | {os.cpu_count()} cores | "
          f"Python {platform.python_version()} | {time.strftime('%Y-%m-%d')}")
    w0 = max(len(r[0]) for r in rows)
    print(f"{'what':<{w0}}  {'setting':<10}  {'result':<18}  detail")
    for r in rows:
        print(f"{r[0]:<{w0}}  {r[1]:<10}  {r[2]:<18}  {r[3]}")
    if not args.out:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
