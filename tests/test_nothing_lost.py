"""Nothing lost, ever: a re-run that fails never replaces a good result, and every attempt stays queryable."""

from __future__ import annotations

from pathlib import Path

import duckdb
from test_store import INVOICE, _result
from typer.testing import CliRunner

from docpipe.cli import app
from docpipe.models import Status
from docpipe.schemas import resolve
from docpipe.store import Store


def cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_failed_force_run_keeps_the_good_result(invoice_pdf: Path, tmp_path: Path, db: Path) -> None:
    import pymupdf

    enc = tmp_path / "locked.pdf"
    pymupdf.open(invoice_pdf).save(enc, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="RIGHT", owner_pw="o")
    base = ("ingest", str(enc), "--db", str(db), "-e", "offline", "-w", "1", "-q")
    assert cli(*base, "--password", "RIGHT")[0] == 0
    code, out = cli(*base, "--password", "WRONG", "--force")
    assert code == 1 and "encrypted" in out
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT invoice_number FROM invoice").fetchall() == [("RE-2025-0042",)]
    assert con.execute("SELECT status FROM extractions").fetchall() == [("ok",)]
    assert con.execute("SELECT status FROM documents").fetchall() == [("ok",)]
    assert con.execute("SELECT count(*) FROM pages").fetchone() == (1,)
    assert con.execute("SELECT status FROM extraction_history ORDER BY created_at").fetchall() == [
        ("ok",), ("encrypted",)]


def test_successful_force_run_replaces_and_keeps_the_old_one_as_history(invoice_pdf: Path, db: Path) -> None:
    base = ("ingest", str(invoice_pdf), "--db", str(db), "-e", "offline", "-w", "1", "-q")
    assert cli(*base)[0] == 0
    assert cli(*base, "--force")[0] == 0
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM invoice").fetchone() == (1,)
    runs = con.execute("SELECT DISTINCT run_id FROM extraction_history").fetchall()
    assert len(runs) == 2
    current = con.execute("SELECT run_id FROM extractions").fetchone()[0]
    assert current == con.execute("SELECT max_by(run_id, created_at) FROM extraction_history").fetchone()[0]


def test_failed_retry_keeps_an_invalid_result_and_ok_replaces_it(db: Path) -> None:
    schema = resolve("invoice")
    doc = "b" * 64
    with Store.open(db) as store:
        store.register_schema(schema)
        store.write([_result(doc, {"total": "a lot"})], schema, "r1")
        store.write([_result(doc, None, Status.FAILED)], schema, "r2")  # e.g. --retry-invalid, server down
        assert store.query("SELECT status, run_id FROM extractions")[1] == [("invalid", "r1")]
        store.write([_result(doc, INVOICE)], schema, "r3")
        assert store.query("SELECT status, run_id FROM extractions")[1] == [("ok", "r3")]
        assert store.query("SELECT run_id, status FROM extraction_history ORDER BY run_id")[1] == [
            ("r1", "invalid"), ("r2", "failed"), ("r3", "ok")]
        assert store.query("SELECT count(*) FROM invoice")[1] == [(1,)]


def test_results_stored_before_history_existed_become_history(db: Path) -> None:
    schema = resolve("invoice")
    with Store.open(db) as store:
        store.register_schema(schema)
        store.write([_result("a" * 64, INVOICE)], schema, "old")
        store.con.execute("DELETE FROM extraction_history")
        store.con.execute("DELETE FROM meta WHERE key = 'history'")  # as a database from before the table
    with Store.open(db) as store:
        assert store.query("SELECT run_id FROM extraction_history")[1] == [("old",)]
    with Store.open(db) as store:  # only once
        assert store.query("SELECT count(*) FROM extraction_history")[1] == [(1,)]
