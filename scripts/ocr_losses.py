#!/usr/bin/env python3
"""Where the offline engine loses fields on scans: OCR (the value is not in the page text) or the rules (it is,
but another value was chosen).

    python scripts/ocr_losses.py DB FOLDER [--schema receipt] [--rerun]

For each truth field of each stored document: ``right``; ``rules`` when the truth value can be found in the stored
page text (numbers as printed with two decimals, dates by any printed form the date parser reads, text after
folding case, punctuation and spaces); ``order`` when every word of a text value is on the page but not in one
run (reading order or line breaks); ``ocr`` when words are missing (detection or recognition). Prints counts per
field and cause.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
from collections import Counter, defaultdict

import duckdb

from docpipe.discover import hash_file
from docpipe.engines.offline.fields import extract_fields, find_dates
from docpipe.evaluate import fold, load_truth, match, schema_kinds
from docpipe.schemas import resolve


def cause(kind: str, truth: object, text: str) -> str:
    """'rules' / 'order' / 'ocr' for a wrong field, judged by what the page text holds."""
    if kind == "number":
        want = f"{float(truth):.2f}"  # type: ignore[arg-type]
        nums = {m.replace(",", ".") for m in re.findall(r"\d+[.,]\d{2}(?!\d)", text)}
        return "rules" if want in nums else "ocr"
    if kind == "date":
        return "rules" if any(h.value.isoformat() == truth for h in find_dates(text, True) + find_dates(text, False)) \
            else "ocr"
    if fold(truth) in fold(text):
        return "rules"
    words = [fold(w) for w in str(truth).split() if fold(w)]
    page = fold(text)
    return "order" if words and all(w in page for w in words) else "ocr"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db", type=pathlib.Path)
    ap.add_argument("folder", type=pathlib.Path)
    ap.add_argument("--schema", "-s", default="receipt")
    ap.add_argument("--rerun", action="store_true", help="judge the current rules on the stored text, not the "
                    "stored extraction")
    args = ap.parse_args(argv)
    kinds = schema_kinds(args.schema)
    con = duckdb.connect(str(args.db), read_only=True)
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in load_truth(args.folder / "truth.jsonl"):
        sha, _, _ = hash_file(args.folder / entry["file"])
        row = con.execute("SELECT data FROM extractions WHERE doc_id = ? AND schema_name = ?",
                          [sha, args.schema]).fetchone()
        texts = [t or "" for (t,) in con.execute(
            "SELECT text FROM pages WHERE doc_id = ? ORDER BY page_no", [sha]).fetchall()]
        text = "\n".join(texts)
        data = json.loads(row[0]) if row and row[0] else {}
        if args.rerun and texts:
            data = extract_fields(texts, resolve(args.schema))
        for name, tv in entry.get("fields", {}).items():
            if name not in kinds or tv is None:
                continue
            ok = match(name, tv, data.get(name), kinds[name])
            table[name]["right" if ok else cause(kinds[name], tv, text)] += 1
    print(f"{'field':18} {'right':>6} {'rules':>6} {'order':>6} {'ocr':>6}")
    total: Counter[str] = Counter()
    for name, c in table.items():
        total.update(c)
        print(f"{name:18} {c['right']:6} {c['rules']:6} {c['order']:6} {c['ocr']:6}")
    print(f"{'ALL':18} {total['right']:6} {total['rules']:6} {total['order']:6} {total['ocr']:6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
