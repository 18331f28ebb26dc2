"""The generated corpus (scripts/make_corpus.py) as CI runs it: invoices the rules were not written for, in six
languages and varied layouts, read by the real offline engine and scored by the real `docpipe eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from docpipe.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_generated_invoices_are_read_with_high_accuracy(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_corpus.py"), "--out", str(tmp_path), "--split", "ci",
                    "--per-kind", "12", "--kinds", "invoices"], check=True, capture_output=True)
    folder = tmp_path / "ci" / "invoices"
    truth = [json.loads(x) for x in (folder / "truth.jsonl").read_text().splitlines()]
    assert len(truth) == 12 and {t["file"][-6:-4] for t in truth} == {"en", "de", "fr", "es", "it", "nl"}
    res = CliRunner().invoke(app, ["eval", str(folder), "--db", str(tmp_path / "c.duckdb"), "-e", "offline", "-w", "1",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    scores = {r["field"]: r["accuracy"] for r in json.loads(res.output[res.output.index("["):])}
    assert scores["ALL"] >= 0.9, scores
