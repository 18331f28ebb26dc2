#!/usr/bin/env python3
"""Re-run the offline field rules on page texts already in a docpipe database and score them against a truth file.

    python scripts/rescore.py DB FOLDER [--schema receipt] [--truth FOLDER/truth.jsonl] [--mismatches]

Reading a scan (OCR) takes seconds; the rules take milliseconds. This replays the rules on the stored text
(``pages.text``) so a rule change can be measured on hundreds of documents in a second, with the same matching
as ``docpipe eval``. E-invoice documents (data from embedded XML) are scored from their stored data.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import duckdb

from docpipe.discover import hash_file
from docpipe.engines.offline.fields import extract_fields
from docpipe.evaluate import EvalResult, load_truth, schema_kinds, score_document
from docpipe.schemas import resolve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db", type=pathlib.Path)
    ap.add_argument("folder", type=pathlib.Path)
    ap.add_argument("--schema", "-s", default="invoice")
    ap.add_argument("--truth", type=pathlib.Path)
    ap.add_argument("--mismatches", action="store_true")
    args = ap.parse_args(argv)
    schema = resolve(args.schema)
    kinds = schema_kinds(args.schema)
    con = duckdb.connect(str(args.db), read_only=True)
    result = EvalResult()
    for entry in load_truth(args.truth or args.folder / "truth.jsonl"):
        sha, _, _ = hash_file(args.folder / entry["file"])
        row = con.execute("SELECT method, data FROM extractions WHERE doc_id = ? AND schema_name = ?",
                          [sha, schema.name]).fetchone()
        texts = [t or "" for (t,) in con.execute("SELECT text FROM pages WHERE doc_id = ? ORDER BY page_no",
                                                 [sha]).fetchall()]
        if row is None:
            result.missing.append(entry["file"])
            data = {}
        elif row[0] == "einvoice-xml":
            data = json.loads(row[1])
        else:
            data = extract_fields(texts, schema)
        result.documents.append(entry["file"])
        score_document(result, entry["file"], entry.get("fields", {}), data, kinds)
    for name, s in result.fields.items():
        print(f"{name:18} {s.correct:4}/{s.total:<4} {s.accuracy:.3f}")
    print(f"{'ALL':18} {result.correct:4}/{result.total:<4} {result.accuracy:.3f}  ({len(result.documents)} documents,"
          f" {len(result.missing)} missing)")
    if args.mismatches:
        for f, n, t, p in result.mismatches:
            print(f"  {f} | {n} | {json.dumps(t, ensure_ascii=False)} | {json.dumps(p, ensure_ascii=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
