#!/usr/bin/env python3
"""CPU time of the offline field rules alone, on page texts stored in docpipe databases.

    python scripts/bench_rules.py DB[:SCHEMA]... [--repeat 3]

Times ``extract_fields`` with the process CPU clock (so other jobs on a shared machine do not count) over every
document's stored page text, best of ``--repeat`` passes, and prints one table: documents, pages, CPU ms per page.
Run it from two checkouts (``PYTHONPATH=...``) to compare rule versions on the same texts.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date

import duckdb

from docpipe.engines.offline.fields import extract_fields
from docpipe.schemas import resolve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dbs", nargs="+", help="DB path, optionally :schema (default invoice)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"machine: {platform.machine()} | {os.cpu_count()} cores | Python {platform.python_version()} | "
          f"{date.today()}")
    print(f"{'texts':60} {'docs':>5} {'pages':>6} {'CPU ms/page':>12}")
    for spec in args.dbs:
        path, _, schema_name = spec.partition(":")
        schema = resolve(schema_name or "invoice")
        con = duckdb.connect(path, read_only=True)
        docs: dict[str, list[str]] = {}
        for doc_id, text in con.execute("SELECT doc_id, text FROM pages ORDER BY doc_id, page_no").fetchall():
            docs.setdefault(doc_id, []).append(text or "")
        con.close()
        pages = sum(len(t) for t in docs.values())
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.process_time()
            for texts in docs.values():
                extract_fields(texts, schema)
            best = min(best, time.process_time() - t0)
        print(f"{path[-60:]:60} {len(docs):5} {pages:6} {1000 * best / max(pages, 1):12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
