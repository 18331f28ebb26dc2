"""Accuracy of the offline engine on every evaluation set at once, each into a fresh database (so nothing stored by
an earlier run is reused), printed as one table with the machine it ran on.

    python scripts/eval_sets.py                       # samples/ and the shared devsets
    python scripts/eval_sets.py --corpus /tmp/corpus  # also make_corpus.py's halves (made there if missing)
    python scripts/eval_sets.py --web /tmp/web        # also make_web_invoices.py --scans (made there if missing)

A round of rule changes is judged by this table before and after (docs/performance.md keeps the current one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVSET = ROOT.parent / "shared" / "devset"


def _sets(corpus: Path | None, web: Path | None) -> list[tuple[str, Path, str]]:
    """(name, folder, schema) of each set that exists here."""
    out = [("samples/", ROOT / "samples", "invoice"),
           ("devset parsee_invoices", DEVSET / "parsee_invoices", "invoice"),
           ("devset zugferd_facturx", DEVSET / "zugferd_facturx", "invoice"),
           ("devset sroie_receipts", DEVSET / "sroie_receipts", "receipt")]
    if corpus is not None:
        for half in ("held", "dev"):
            out += [(f"corpus {half} invoices", corpus / half / "invoices", "invoice"),
                    (f"corpus {half} invoice scans", corpus / half / "scans", "invoice"),
                    (f"corpus {half} receipts", corpus / half / "receipts", "receipt")]
    if web is not None:
        out.append(("web invoices (+ scans)", web, "invoice"))
    return [s for s in out if (s[1] / "truth.jsonl").is_file()]


def _make(cmd: list[str], folder: Path) -> None:
    if not folder.exists():
        print(f"making {folder}: {' '.join(cmd)}", file=sys.stderr)
        subprocess.run([sys.executable, *cmd], check=True, cwd=ROOT)


def _eval(folder: Path, schema: str, db: Path) -> tuple[int, int]:
    """(correct, scored) over all fields, from `docpipe eval --format json`."""
    cmd = [sys.executable, "-m", "docpipe", "eval", str(folder), "--db", str(db), "-s", schema, "--format", "json"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"{folder}: docpipe eval failed: {res.stderr.strip().splitlines()[-1:]}")
    rows = [r for r in json.loads(res.stdout) if r.get("field") != "ALL"]
    return sum(r["correct"] for r in rows), sum(r["scored"] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, help="make_corpus.py --split both output (made if missing)")
    ap.add_argument("--web", type=Path, help="make_web_invoices.py --scans output (made if missing; needs chromium)")
    args = ap.parse_args()
    if args.corpus is not None:
        _make(["scripts/make_corpus.py", "--out", str(args.corpus), "--split", "both"], args.corpus)
    if args.web is not None:
        _make(["scripts/make_web_invoices.py", "--out", str(args.web), "--scans"], args.web)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("| set | documents | fields right / scored | accuracy | seconds |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder, schema in _sets(args.corpus, args.web):
            docs = sum(1 for line in (folder / "truth.jsonl").read_text().splitlines() if line.strip())
            t0 = time.perf_counter()
            right, scored = _eval(folder, schema, Path(tmp) / f"{len(os.listdir(tmp))}.duckdb")
            print(f"| {name} (`-s {schema}`) | {docs} | {right} / {scored} | {right / max(scored, 1):.3f} | "
                  f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
