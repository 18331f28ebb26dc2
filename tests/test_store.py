import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from docpipe.errors import StoreError
from docpipe.models import DocResult, EngineOutput, PageInfo, SourceFile, Status
from docpipe.schemas import resolve
from docpipe.store import Store
from docpipe.validate import validate


def _result(sha: str, data: dict | None, status: Status = Status.OK) -> DocResult:
    src = SourceFile(Path(f"/docs/{sha}.pdf"), sha, 10, "pdf", "application/pdf")
    out = EngineOutput(source=src, status=status, data=data, engine="offline",
                       pages=[PageInfo(1, 595.0, 842.0, text="hello")])
    return validate(out, resolve("invoice"))


INVOICE = {"invoice_number": "A-1", "invoice_date": "2025-03-05", "vendor_name": "ACME", "currency": "EUR",
           "subtotal": "100.00", "tax": "19.00", "total": "119.00",
           "line_items": [{"description": "Hammer", "quantity": 2, "unit_price": "50", "amount": "100.00"}]}


def test_views_have_typed_columns_and_exact_money(db: Path) -> None:
    schema = resolve("invoice")
    with Store.open(db) as store:
        store.register_schema(schema)
        store.write([_result("a" * 64, INVOICE)], schema, "run1")
        cols, rows = store.query("SELECT invoice_date, total, typeof(total), typeof(invoice_date) FROM invoice")
        assert rows == [(dt.date(2025, 3, 5), Decimal("119.00"), "DECIMAL(18,2)", "DATE")]
        _, items = store.query("SELECT line_no, description, quantity, amount FROM invoice_line_items")
        assert items == [(1, "Hammer", Decimal("2.0000"), Decimal("100.00"))]


def test_rewriting_a_document_replaces_it(db: Path) -> None:
    schema = resolve("invoice")
    with Store.open(db) as store:
        store.register_schema(schema)
        store.write([_result("a" * 64, INVOICE)], schema, "run1")
        store.write([_result("a" * 64, INVOICE | {"total": "120.00"})], schema, "run2")
        _, rows = store.query("SELECT count(*), max(total) FROM invoice")
        assert rows == [(1, Decimal("120.00"))]
        _, pages = store.query("SELECT count(*) FROM pages")
        assert pages == [(1,)]


def test_invalid_results_are_kept_with_errors_and_listed_as_problems(db: Path) -> None:
    schema = resolve("invoice")
    bad = _result("b" * 64, {"total": "a lot", "currency": "euro"})
    assert bad.status is Status.INVALID and "currency" in bad.reason and "+1 more" in bad.reason
    with Store.open(db) as store:
        store.register_schema(schema)
        store.write([bad, _result("a" * 64, INVOICE)], schema, "run1")
        _, rows = store.query("SELECT status, data->>'$.total', reason FROM extractions WHERE status = 'invalid'")
        assert rows[0][0] == "invalid" and rows[0][1] == "a lot"
        _, probs = store.query("SELECT doc_id FROM problems")
        assert probs == [("b" * 64,)]
        _, view = store.query("SELECT count(*) FROM invoice")
        assert view == [(1,)]


def test_done_ids_retry_failures(db: Path) -> None:
    schema = resolve("invoice")
    with Store.open(db) as store:
        store.register_schema(schema)
        store.write([_result("a" * 64, INVOICE), _result("c" * 64, None, Status.FAILED)], schema, "r")
        assert store.done_ids("invoice", "offline") == {"a" * 64}


def test_read_only_open_of_missing_db_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="docpipe ingest"):
        Store.open(tmp_path / "none.duckdb", read_only=True)


def test_queries_are_read_only_by_default(db: Path) -> None:
    with Store.open(db) as store:
        store.register_schema(resolve("invoice"))
    with Store.open(db, read_only=True) as store, pytest.raises(StoreError):
        store.query("DELETE FROM documents")


def test_retry_invalid_makes_invalid_results_due_again(db: Path) -> None:
    schema = resolve("invoice")
    with Store.open(db) as store:
        store.register_schema(schema)
        store.write([_result("a" * 64, INVOICE), _result("b" * 64, {"total": "a lot"})], schema, "r")
        assert store.done_ids("invoice", "offline") == {"a" * 64, "b" * 64}
        assert store.done_ids("invoice", "offline", retry_invalid=True) == {"a" * 64}
