#!/usr/bin/env python3
"""Print the fictitious web-style invoices in ``scripts/web_invoices/`` to PDF with the OS's Chromium, for eval.

    python scripts/make_web_invoices.py --out /tmp/web [--scans]
    docpipe eval /tmp/web --db /tmp/web.duckdb

Invoices in the layouts of common billing tools (a Stripe-like invoice, Xero, QuickBooks, FreshBooks, a cloud
provider, a marketplace invoice with a VAT summary, French, Spanish, Italian, Dutch and German invoices, a credit
note) plus pages saved from a browser with its header and footer (``*_printed.html``). The rules were fixed on
these pages (2026-12-06), so this is a development set: it says when a change breaks a layout that works.
``--scans`` also writes a 150-dpi greyscale PNG of each first page (the OCR path), with the same truth.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent / "web_invoices"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        sys.exit("make_web_invoices: no chromium on PATH (apt-get install chromium)")
    return found


def print_pdf(browser: str, html: pathlib.Path, pdf: pathlib.Path) -> None:
    """Chromium's own print; pages named *_printed keep the browser's date, title, URL and page counter."""
    furniture = [] if html.stem.endswith("_printed") else ["--no-pdf-header-footer"]
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *furniture,
                    f"--print-to-pdf={pdf}", html.as_uri()], check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--scans", action="store_true", help="also a 150-dpi greyscale PNG of each first page")
    args = ap.parse_args(argv)
    browser = chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    truth = [json.loads(line) for line in (HERE / "truth.jsonl").read_text().splitlines() if line.strip()]
    rows = []
    for row in truth:
        pdf = args.out / row["file"]
        print_pdf(browser, HERE / (pdf.stem + ".html"), pdf)
        rows.append(row)
        if args.scans:
            import pymupdf

            png = pdf.with_name(pdf.stem + "_scan.png")
            with pymupdf.open(pdf) as doc:
                doc[0].get_pixmap(dpi=150, colorspace=pymupdf.csGRAY).save(png)
            if pdf.stem != "de_two_pages_printed":  # its totals are on page 2
                rows.append({**row, "file": png.name})
    (args.out / "truth.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} documents and truth.jsonl in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
