"""Measure the evidence on a devset folder already ingested: grounding, accuracy by confidence band, checks.

    python scripts/measure_evidence.py DB FOLDER [--schema invoice] [--engine offline]

Grounding: the share of non-null fields with a box, split by how the page was read (text layer or OCR); for text
layers the box is checked against the PDF itself (the text PyMuPDF finds in the box must hold the printed value).
Prints a short table with the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from docpipe.evidence.calibration import calibrate  # noqa: E402
from docpipe.store import Store  # noqa: E402


def holds(text: str, boxed: str) -> bool:
    """Whether the box's page text holds the value: as printed, or (a value made of comma-separated parts, such
    as an address from e-invoice XML, which joins what the page prints on several lines in its own order)
    every part of it, case-folded."""
    squash = "".join(boxed.split()).casefold()
    parts = [p for p in ("".join(x.split()).casefold() for x in text.split(",")) if p]
    return "".join(text.split()).casefold() in squash or bool(parts) and all(p in squash for p in parts)


def grounding(db: Path) -> dict[str, list[int]]:
    """{page kind: [fields, with a box, box text holds the value]}."""
    import pymupdf

    out: dict[str, list[int]] = {}
    with Store.open(db, read_only=True) as store:
        rows = store.con.execute(
            "SELECT e.path, e.page, e.x0, e.y0, e.x1, e.y1, e.text, e.source, "
            "(SELECT p.text_source FROM pages p WHERE p.doc_id = e.doc_id ORDER BY p.page_no LIMIT 1) "
            "FROM evidence e").fetchall()
    docs: dict[str, object] = {}
    for path, page, x0, y0, x1, y1, text, _source, kind in rows:
        k = "ocr" if kind == "ocr" else "text"
        c = out.setdefault(k, [0, 0, 0])
        c[0] += 1
        if x0 is None:
            continue
        c[1] += 1
        if k == "ocr":
            c[2] += 1  # the box is the OCR box the value was matched in
            continue
        doc = docs.get(path) or docs.setdefault(path, pymupdf.open(path))
        boxed = doc[page - 1].get_textbox(pymupdf.Rect(x0 - 1, y0 - 1, x1 + 1, y1 + 1))
        c[2] += holds(text, boxed)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db", type=Path)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--schema", default="invoice")
    ap.add_argument("--engine", default="offline")
    a = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}")
    for kind, (n, boxed, holds) in sorted(grounding(a.db).items()):
        print(f"grounding {kind:5} fields {n:4}  with a box {boxed / n:6.1%}  box text holds the value "
              f"{holds / n:6.1%}")
    cal = calibrate(a.db, a.folder, a.folder / "truth.jsonl", a.schema, a.engine)
    print("confidence  right/values  accuracy")
    for b in cal.bands:
        if b.total:
            print(f"{b.low:.1f}-{min(b.high, 1.0):.1f}     {b.right:4}/{b.total:<4}     {b.accuracy:.3f}")
    print(f"checks: {cal.caught}/{cal.wrong} wrong values caught, {cal.flagged_right}/{cal.right} right values "
          f"flagged")


if __name__ == "__main__":
    main()
