"""docpipe eval: every truth field the schema has is scored by its type; missing documents fail the run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import INVOICE_TEXT, make_pdf
from typer.testing import CliRunner

from docpipe.cli import app
from docpipe.evaluate import match, schema_kinds

runner = CliRunner()

RECEIPT_TEXT = """KEDAI RUNCIT MAJU SDN BHD
NO 12, JALAN MAWAR 3, 43000 KAJANG
TEL: 03-5550 1234

Date: 14/02/2019   Cashier: AMIN

MILO 1KG            1   18.90
ROTI GARDENIA       2    5.80

TOTAL                   24.70
CASH                    50.00
CHANGE                  25.30
"""


def cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def _truth(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_scores_every_receipt_field_the_truth_names(tmp_path: Path, db: Path) -> None:
    folder = tmp_path / "receipts"
    folder.mkdir()
    make_pdf(folder / "r.pdf", [RECEIPT_TEXT])
    _truth(folder / "truth.jsonl", [{"file": "r.pdf", "doc_type": "receipt", "fields": {
        "merchant_name": "Kedai Runcit Maju Sdn. Bhd.", "merchant_address": "NO 12, JALAN MAWAR 3, 43000 KAJANG",
        "date": "2019-02-14", "total": 24.70, "vat_rate_percent": 6.0}}])
    code, out = cli("eval", str(folder), "--db", str(db), "-s", "receipt", "-e", "offline", "-w", "1",
                    "--format", "json")
    assert code == 0, out
    rows = json.loads(out[out.index("["):])
    scores = {r["field"]: r["accuracy"] for r in rows}
    assert set(scores) == {"merchant_name", "merchant_address", "date", "total", "ALL"}  # not the rate: no such field
    assert scores["total"] == 1.0 and scores["date"] == 1.0


def test_eval_fails_when_a_truth_document_was_not_ingested(tmp_path: Path, db: Path) -> None:
    make_pdf(tmp_path / "a.pdf", [INVOICE_TEXT])
    _truth(tmp_path / "truth.jsonl", [
        {"file": "a.pdf", "doc_type": "invoice", "fields": {"total": 30.35}},
        {"file": "gone.pdf", "doc_type": "invoice", "fields": {"total": 1.0}}])
    code, out = cli("eval", str(tmp_path), "--db", str(db), "-e", "offline", "-w", "1", "--mismatches")
    assert code == 1
    assert "gone.pdf" in out and "without an ok/invalid extraction" in out


def test_eval_of_a_missing_folder_names_the_path(tmp_path: Path, db: Path) -> None:
    code, out = cli("eval", str(tmp_path / "nope"), "--db", str(db))
    assert code == 1 and "does not exist" in out and "truth" not in out


def test_fields_compare_by_their_schema_type() -> None:
    kinds = schema_kinds("receipt")
    assert kinds["date"] == "date" and kinds["total"] == "number" and kinds["merchant_address"] == "address"
    assert match("total", "9.00", "9", "number")
    assert match("date", "2019-02-14", "2019-02-14", "date") and not match("date", "2019-02-14", "2019-02-15", "date")
    addr = "NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU, JOHOR."
    assert match("merchant_address", addr, addr.replace(", JOHOR.", ""), "address")
    assert not match("merchant_address", addr, "JOHOR BAHRU", "address")
    assert not match("merchant_address", addr, "NO.53 55,57 & 59, JALAN SAGU 18", "address")
    assert match("merchant_name", "SAM SAM TRADING CO", "Sam Sam Trading Co.", "name")


def test_eval_says_when_it_scores_an_earlier_runs_results_and_force_reads_again(tmp_path: Path, db: Path) -> None:
    # after an upgrade or a settings change, the stored results are not what the current rules would give
    make_pdf(tmp_path / "a.pdf", [INVOICE_TEXT])
    _truth(tmp_path / "truth.jsonl", [{"file": "a.pdf", "doc_type": "invoice", "fields": {"total": 30.35}}])
    args = ("eval", str(tmp_path), "--db", str(db), "-e", "offline", "-w", "1", "--format", "json")
    code, out = cli(*args)
    assert code == 0 and "earlier run" not in out, out
    code, out = cli(*args)
    assert code == 0 and "1 document(s) scored as an earlier run" in out and "--force" in out, out
    code, out = cli(*args, "--force")
    assert code == 0 and "earlier run" not in out, out
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM extraction_history").fetchone() == (2,)  # read twice, not thrice
