"""The CLI as a user runs it: ingest, re-run, query, export, eval, schemas, engines, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from conftest import INVOICE_TEXT, make_pdf, make_scan
from typer.testing import CliRunner

from docpipe.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def test_ingest_then_query_as_json(invoice_pdf: Path, db: Path) -> None:
    code, out = cli("ingest", str(invoice_pdf), "--db", str(db), "--engine", "offline", "-w", "1")
    assert code == 0, out
    assert "engine: offline" in out
    code, out = cli("query", "--db", str(db), "--format", "json",
                    "SELECT path, invoice_number, invoice_date, total, currency FROM invoice")
    assert code == 0, out
    rows = json.loads(out)
    assert rows == [{"path": str(invoice_pdf), "invoice_number": "RE-2025-0042", "invoice_date": "2025-03-05",
                     "total": 30.35, "currency": "EUR"}]


def test_rerun_skips_done_and_force_redoes(invoice_pdf: Path, db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "renamed.pdf"
    copy.write_bytes(invoice_pdf.read_bytes())
    assert cli("ingest", str(invoice_pdf), "--db", str(db), "-e", "offline", "-w", "1", "-q")[0] == 0
    code, out = cli("ingest", str(invoice_pdf), str(copy), "--db", str(db), "-e", "offline", "-w", "1")
    assert code == 0 and "0 to process, 1 already done" in out and "1 identical copy" in out
    code, out = cli("ingest", str(invoice_pdf), "--db", str(db), "-e", "offline", "-w", "1", "--force")
    assert code == 0 and "1 to process" in out
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM extractions").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM files").fetchone() == (2,)


def test_bad_files_never_stop_the_batch(tmp_path: Path, db: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "corpus"))
    from make_broken import make_broken_corpus

    folder = tmp_path / "inbox"
    folder.mkdir()
    expected = make_broken_corpus(folder)
    make_pdf(folder / "good.pdf", [INVOICE_TEXT])
    expected["good.pdf"] = "ok"
    code, out = cli("ingest", str(folder), "--db", str(db), "-e", "offline", "-w", "2", "-q")
    assert code == 1, out  # some files failed: non-zero, but the batch finished
    con = duckdb.connect(str(db), read_only=True)
    got = dict(con.execute("SELECT split_part(d.path, '/', -1), e.status FROM extractions e "
                           "JOIN documents d USING (doc_id)").fetchall())
    for name, status in expected.items():
        st = got.get(name)
        st = "failed" if st == "unsupported" else st  # not-a-document is a kind of failure
        assert st == status, (name, got.get(name), status)
    reasons = dict(con.execute("SELECT split_part(path, '/', -1), reason FROM documents").fetchall())
    assert "--password" in reasons["encrypted_aes256.pdf"]
    assert con.execute("SELECT total FROM invoice WHERE path LIKE '%good.pdf'").fetchone()[0] is not None
    assert "Traceback" not in out


def test_password_opens_encrypted_pdf(invoice_pdf: Path, tmp_path: Path, db: Path) -> None:
    import pymupdf

    enc = tmp_path / "locked.pdf"
    pymupdf.open(invoice_pdf).save(enc, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret", owner_pw="o")
    code, out = cli("ingest", str(enc), "--db", str(db), "-e", "offline", "-w", "1", "-q")
    assert code == 1 and "encrypted" in out and "--password" in out
    code, out = cli("ingest", str(enc), "--db", str(db), "-e", "offline", "-w", "1", "-q", "--password", "s3cret")
    assert code == 0, out
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT invoice_number FROM invoice").fetchall() == [("RE-2025-0042",)]


def test_scanned_image_is_read_with_ocr(tmp_path: Path, db: Path) -> None:
    scan = make_scan(tmp_path / "scan.png", INVOICE_TEXT, dpi=150)
    code, out = cli("ingest", str(scan), "--db", str(db), "-e", "offline", "-w", "1", "-q")
    assert code == 0, out
    con = duckdb.connect(str(db), read_only=True)
    src, text = con.execute("SELECT text_source, text FROM pages").fetchone()
    assert src == "ocr" and "Gesamtbetrag" in text
    assert con.execute("SELECT total FROM invoice").fetchone()[0] is not None


def test_user_schema_gets_a_typed_view(tmp_path: Path, db: Path) -> None:
    (tmp_path / "my_schemas.py").write_text(
        "from datetime import date\nfrom decimal import Decimal\nfrom pydantic import BaseModel, Field\n"
        "class DeliveryNote(BaseModel):\n"
        "    note_number: str | None = Field(None, description='Lieferschein number')\n"
        "    delivery_date: date | None = Field(None, description='Delivery date')\n"
        "    total: Decimal | None = None\n")
    doc = make_pdf(tmp_path / "note.pdf", ["Delivery note\nNote number: LS-77\nDelivery date: 2025-04-01\n"])
    code, out = cli("ingest", str(doc), "--db", str(db), "-e", "offline", "-w", "1", "-q",
                    "--schema", f"{tmp_path / 'my_schemas.py'}:DeliveryNote")
    assert code == 0, out
    con = duckdb.connect(str(db), read_only=True)
    cols = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = 'delivery_note'").fetchall())
    assert cols["delivery_date"] == "DATE" and cols["total"].startswith("DECIMAL")
    assert con.execute("SELECT count(*) FROM delivery_note").fetchone() == (1,)


def test_export_parquet_and_csv(invoice_pdf: Path, db: Path, tmp_path: Path) -> None:
    assert cli("ingest", str(invoice_pdf), "--db", str(db), "-e", "offline", "-w", "1", "-q")[0] == 0
    code, out = cli("export", "--db", str(db), "--format", "parquet", "--out", str(tmp_path / "ex"))
    assert code == 0, out
    assert (tmp_path / "ex" / "invoice.parquet").exists() and (tmp_path / "ex" / "invoice_line_items.parquet").exists()
    con = duckdb.connect()
    assert con.execute(f"SELECT invoice_number FROM '{tmp_path / 'ex' / 'invoice.parquet'}'").fetchall() == [
        ("RE-2025-0042",)]
    code, out = cli("export", "nope", "--db", str(db), "--out", str(tmp_path / "ex"))
    assert code == 1 and "no view or table named nope" in out


def test_eval_scores_fields(invoice_pdf: Path, db: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    truth.write_text(json.dumps({"file": invoice_pdf.name, "doc_type": "invoice", "fields": {
        "invoice_number": "RE-2025-0042", "total": 30.35, "currency": "EUR", "vendor_name": "ACME Tools",
        "invoice_date": "2025-03-06"}}) + "\n")
    code, out = cli("eval", str(tmp_path), "--truth", str(truth), "--db", str(db), "-e", "offline", "-w", "1",
                    "--format", "json")
    assert code == 0, out
    scores = {r["field"]: r["accuracy"] for r in json.loads(out[out.index("["):])}
    assert scores["invoice_number"] == 1.0 and scores["total"] == 1.0
    assert scores["invoice_date"] == 0.0  # the truth says the 6th: a wrong date is not accepted
    assert scores["ALL"] == 0.8


def test_query_errors_are_one_line(db: Path, invoice_pdf: Path) -> None:
    assert cli("ingest", str(invoice_pdf), "--db", str(db), "-e", "offline", "-w", "1", "-q")[0] == 0
    code, out = cli("query", "--db", str(db), "SELECT nope FROM invoice")
    assert code == 1 and "error:" in out and "Traceback" not in out


def test_schemas_and_engines_commands() -> None:
    code, out = cli("schemas")
    assert code == 0 and "invoice_number" in out and "merchant_name" in out and "key_facts" in out
    code, out = cli("schemas", "invoice", "--json")
    assert json.loads(out)["properties"]["total"]["anyOf"][0] == {"type": "number"}
    code, out = cli("engines")
    assert code == 0 and "offline" in out


def test_cli_start_does_not_import_heavy_libraries() -> None:
    code = ("import sys, docpipe.cli; heavy = [m for m in ('torch', 'transformers', 'pymupdf', 'duckdb', "
            "'rapidocr', 'onnxruntime') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_killed_run_resumes_without_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    for i in range(3):
        make_pdf(folder / f"digital_{i}.pdf", [INVOICE_TEXT.replace("0042", f"00{i}9")])
    for i in range(2):
        make_scan(folder / f"scan_{i}.png", INVOICE_TEXT.replace("0042", f"10{i}0"), dpi=100)
    db = tmp_path / "k.duckdb"
    cmd = [sys.executable, "-m", "docpipe", "ingest", str(folder), "--db", str(db), "-e", "offline", "-w", "1", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    time.sleep(4)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT doc_id) FROM extractions").fetchone() == (5, 5)
    assert con.execute("SELECT count(*) FROM invoice").fetchone() == (5,)
    assert con.execute("SELECT count(*), count(DISTINCT (doc_id, page_no)) FROM pages").fetchone() == (5, 5)


def test_json_schema_file_and_status_command(tmp_path: Path, db: Path) -> None:
    (tmp_path / "memo.schema.json").write_text(json.dumps({
        "title": "memo", "type": "object",
        "properties": {"subject": {"type": "string", "description": "Subject line"},
                       "memo_date": {"type": "string", "format": "date", "description": "Date"},
                       "amount": {"type": "number"}}}))
    doc = make_pdf(tmp_path / "memo.pdf", ["MEMO\nSubject: Budget 2026\nMemo date: 2025-06-30\nAmount: 1,250.00\n"])
    (tmp_path / "empty.pdf").write_bytes(b"")
    code, out = cli("ingest", str(doc), str(tmp_path / "empty.pdf"), "--db", str(db), "-e", "offline", "-w", "1",
                    "-q", "--schema", str(tmp_path / "memo.schema.json"))
    assert code == 1, out
    con = duckdb.connect(str(db), read_only=True)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'memo'").fetchall())
    con.close()
    assert types["memo_date"] == "DATE" and types["amount"].startswith("DECIMAL")
    code, out = cli("status", "--db", str(db))
    assert code == 0 and "empty.pdf" in out and "empty file" in out


def test_brackets_in_values_and_messages_are_printed_literally(invoice_pdf: Path, db: Path) -> None:
    assert cli("ingest", str(invoice_pdf), "--db", str(db), "-e", "offline", "-w", "1", "-q")[0] == 0
    code, out = cli("query", "--db", str(db), "SELECT 'pip install docpipe[gemma]' AS hint")
    assert code == 0 and "docpipe[gemma]" in out
    code, out = cli("query", "--db", str(db), "SELECT * FROM [nope]")
    assert code == 1 and 'near "["' in out  # the bracket in the error survives


def test_sideways_scan_is_turned_before_reading(tmp_path: Path, db: Path) -> None:
    from PIL import Image

    upright = make_scan(tmp_path / "up.png", INVOICE_TEXT, dpi=120)
    Image.open(upright).rotate(90, expand=True).save(tmp_path / "sideways.png")
    code, out = cli("ingest", str(tmp_path / "sideways.png"), "--db", str(db), "-e", "offline", "-w", "1", "-q")
    assert code == 0, out
    con = duckdb.connect(str(db), read_only=True)
    text, turn = con.execute("SELECT text, ocr_rotation FROM pages").fetchone()
    assert "Gesamtbetrag" in text and turn in (90, 270)
    assert con.execute("SELECT invoice_number FROM invoice").fetchone() == ("RE-2025-0042",)


def test_query_is_read_only_for_real(db: Path, invoice_pdf: Path, tmp_path: Path) -> None:
    """Read-only means no writes anywhere: not to the database, not to files through DuckDB, no file reads."""
    assert cli("ingest", str(invoice_pdf), "--db", str(db), "-e", "offline", "-w", "1", "-q")[0] == 0
    target = tmp_path / "x.csv"
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    for sql in (f"COPY (SELECT 1) TO '{target}'", f"SELECT * FROM read_csv('{secret}')",
                f"ATTACH '{tmp_path / 'other.duckdb'}' AS o", "SET enable_external_access = true",
                "DELETE FROM documents", "INSTALL httpfs"):
        code, out = cli("query", "--db", str(db), sql)
        assert code == 1 and "error:" in out, (sql, out)
    assert not target.exists() and not (tmp_path / "other.duckdb").exists()
    code, out = cli("query", "--db", str(db), "--allow-write", f"COPY (SELECT 1 AS one) TO '{target}'")
    assert code == 0 and target.read_text().strip() == "one\n1"
