"""`docpipe show FILE|DOC_ID`: one document's fields, line items, summary, status and earlier results."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from docpipe.cli import app


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})


def test_show_by_file_id_prefix_and_name(invoice_pdf: Path, db: Path) -> None:
    assert run("ingest", str(invoice_pdf), "--db", str(db), "-e", "offline", "-w", "1", "-q").exit_code == 0
    doc_id = duckdb.connect(str(db), read_only=True).execute("SELECT doc_id FROM documents").fetchone()[0]
    outs = [run("show", t, "--db", str(db)) for t in (str(invoice_pdf), doc_id[:12] + "…", doc_id[:6], "rechnung.pdf")]
    for res in outs:
        assert res.exit_code == 0, res.output
        assert res.stdout == outs[0].stdout
    out = outs[0].stdout
    assert doc_id in out and "status      ok" in out
    assert "invoice by offline" in out
    for field, value in [("invoice_number", "RE-2025-0042"), ("invoice_date", "2025-03-05"), ("total", "30.35")]:
        assert any(line.split() == [field, value] for line in out.splitlines()), (field, out)
    assert "line_items (2)" in out and "Hammer" in out and "Schraubenset" in out
    assert "summary by offline" in out and "ACME Tools GmbH" in out
    assert all(len(line) <= 80 for line in out.splitlines())

    res = run("show", doc_id[:8], "--db", str(db), "--format", "json")
    doc = json.loads(res.stdout)
    assert doc["doc_id"] == doc_id and doc["extractions"][0]["data"]["line_items"][0]["description"] == "Hammer"


def test_show_lists_earlier_results(invoice_pdf: Path, tmp_path: Path, db: Path) -> None:
    import pymupdf

    enc = tmp_path / "locked.pdf"
    pymupdf.open(invoice_pdf).save(enc, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="RIGHT", owner_pw="o")
    base = ("ingest", str(enc), "--db", str(db), "-e", "offline", "-w", "1", "-q")
    assert run(*base, "--password", "RIGHT").exit_code == 0
    assert run(*base, "--password", "WRONG", "--force").exit_code == 1
    res = run("show", str(enc), "--db", str(db))
    assert res.exit_code == 0, res.output
    assert "invoice by offline (rules+rapidocr-3.10): ok" in res.stdout
    assert "earlier results (1" in res.stdout and "encrypted" in res.stdout


def test_show_unknown_says_what_to_give(db: Path, invoice_pdf: Path, tmp_path: Path) -> None:
    assert run("ingest", str(invoice_pdf), "--db", str(db), "-e", "offline", "-w", "1", "-q").exit_code == 0
    res = run("show", "nope.pdf", "--db", str(db))
    assert res.exit_code == 1 and res.output.count("\n") == 1 and "no document 'nope.pdf'" in res.output
    other = tmp_path / "other.txt"
    other.write_text("x")
    res = run("show", str(other), "--db", str(db))
    assert res.exit_code == 1 and "run `docpipe ingest" in res.output and "Traceback" not in res.output
