"""Evidence: every value grounded on its page, confidence lowered by failed checks, checks declared next to the
schema, the offline engine's check-driven correction, and the DuckDB views (corrections win in schema views)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pymupdf
from conftest import INVOICE_TEXT, make_pdf, make_scan

from docpipe.discover import discover
from docpipe.engines import DocJob, EngineOptions
from docpipe.engines.offline.engine import OfflineEngine, process_document
from docpipe.evidence import attach
from docpipe.evidence import rules as r
from docpipe.evidence.tables import add_correction
from docpipe.models import DocResult, EngineOutput
from docpipe.pipeline import IngestOptions, ingest
from docpipe.schemas import resolve
from docpipe.store import Store
from docpipe.validate import validate

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _source(path: Path):
    return next(iter(discover([path])))


def _box_text(pdf: Path, page: int, box: tuple[float, float, float, float]) -> str:
    with pymupdf.open(pdf) as doc:
        return doc[page - 1].get_textbox(pymupdf.Rect(*box) + (-1, -1, 1, 1))


def test_rules_pass_and_fail_as_written() -> None:
    assert r.adds_up("subtotal", "tax", "total")({"subtotal": "100", "tax": "19", "total": "119.00"})[0].passed
    bad = r.adds_up("subtotal", "tax", "total")({"subtotal": "100", "tax": "19", "total": "129.00"})[0]
    assert not bad.passed and bad.fields == ("subtotal", "tax", "total") and "119" in bad.detail
    assert r.adds_up("subtotal", "tax", "total")({"subtotal": "100", "total": "119"}) == []  # missing input: silent
    items = {"line_items": [{"quantity": "2", "unit_price": "10.00", "amount": "20.00"},
                            {"quantity": "3", "unit_price": "1.50", "amount": "5.00"}], "subtotal": "25.00"}
    assert r.items_sum_to("line_items", "amount", "subtotal")(items)[0].passed
    prod = r.line_product("line_items", "quantity", "unit_price", "amount")(items)
    assert [c.passed for c in prod] == [True, False] and prod[1].fields[0] == "line_items[2].quantity"
    early = {"due_date": "2025-01-01", "invoice_date": "2025-02-01"}
    assert not r.not_before("due_date", "invoice_date")(early)[0].passed
    assert not r.plausible_date("d")({"d": "1899-01-01"})[0].passed
    assert r.years_before(dt.date(2028, 2, 29), 30) == dt.date(1998, 2, 28)  # a leap day never raises
    assert r.iso4217("c")({"c": "EUR"})[0].passed and not r.iso4217("c")({"c": "EUX"})[0].passed
    assert r.iban("i")({"i": "DE89 3704 0044 0532 0130 00"})[0].passed
    assert not r.iban("i")({"i": "DE89 3704 0044 0532 0130 01"})[0].passed
    assert r.vat_id("v")({"v": "DE136695976"})[0].passed and not r.vat_id("v")({"v": "DE136695977"})[0].passed
    assert r.vat_id("v")({"v": "31-4728105"}) == []  # a US EIN has no EU checksum: not judged


def test_offline_values_have_boxes_on_the_text_that_prints_them(invoice_pdf: Path) -> None:
    schema = resolve("invoice")
    res = validate(process_document(DocJob(_source(invoice_pdf), schema.ref)), schema)
    attach(res, schema)
    by = {e.field: e for e in res.evidence}
    assert {"invoice_number", "invoice_date", "total", "subtotal", "tax", "vendor_name"} <= set(by)
    assert all(e.found and e.source == "text" for e in by.values()), [e for e in by.values() if not e.found]
    assert "30,35" in _box_text(invoice_pdf, 1, by["total"].box)
    assert "05.03.2025" in _box_text(invoice_pdf, 1, by["invoice_date"].box)
    assert by["total"].label > 0.5 and 0 < by["total"].nbox[0] < 1
    assert by["total"].confidence >= 0.8
    assert any(c.check == "subtotal + tax = total" and c.passed for c in res.checks)


def test_scan_values_are_grounded_in_ocr_boxes(tmp_path: Path) -> None:
    scan = make_scan(tmp_path / "scan.png", INVOICE_TEXT)
    schema = resolve("invoice")
    out = process_document(DocJob(_source(scan), schema.ref))
    assert out.pages[0].words, "the offline engine carries its OCR boxes"
    res = validate(out, schema)
    attach(res, schema)
    total = next(e for e in res.evidence if e.field == "total")
    assert total.source == "ocr" and total.ocr_conf is not None
    # the label "Gesamtbetrag" is printed at x=50pt, the value right of it, on the page's lower half
    w, h = out.pages[0].width_pt, out.pages[0].height_pt
    assert total.box[0] > 100 and 0.1 * h < total.box[1] < 0.6 * h and total.box[2] < w


def _model_result(pdf: Path, data: dict, engine: str = "fake-model"):
    schema = resolve("invoice")
    out = EngineOutput(source=_source(pdf), data=data, engine=engine, method="constrained-json")
    return validate(out, schema), schema


def test_a_failed_check_lowers_confidence_and_keeps_the_value(invoice_pdf: Path) -> None:
    good = {"invoice_number": "RE-2025-0042", "subtotal": 25.50, "tax": 4.85, "total": 30.35}
    res, schema = _model_result(invoice_pdf, good)
    attach(res, schema)
    ok_conf = {e.field: e.confidence for e in res.evidence}
    res, schema = _model_result(invoice_pdf, good | {"total": 31.35})
    attach(res, schema)
    total = next(e for e in res.evidence if e.field == "total")
    assert res.data["total"] == "31.35"  # kept
    assert not total.found and total.source == "model" and total.note
    assert total.confidence < 0.3 < ok_conf["total"]
    failed = [c for c in res.checks if not c.passed]
    assert [c.check for c in failed] == ["subtotal + tax = total"]


def test_offline_rules_take_the_printed_amount_that_makes_the_checks_pass(invoice_pdf: Path) -> None:
    res, schema = _model_result(invoice_pdf, {"subtotal": 25.50, "tax": 19.00, "total": 30.35}, engine="offline")
    res.output.method = "rules"
    attach(res, schema)
    assert res.data["tax"] == "4.85" and all(c.passed for c in res.checks)
    tax = next(e for e in res.evidence if e.field == "tax")
    assert "-> 4.85" in tax.note and tax.found
    res, schema = _model_result(invoice_pdf, {"subtotal": 25.50, "tax": 19.00, "total": 30.35})  # a model's answer
    attach(res, schema)
    assert res.data["tax"] == "19.0"  # judged, not changed


def test_user_schema_checks_run(tmp_path: Path) -> None:
    mod = tmp_path / "my_schemas.py"
    mod.write_text(
        "from pydantic import BaseModel\n"
        "class Order(BaseModel):\n"
        "    order_number: str | None = None\n"
        "    @classmethod\n"
        "    def checks(cls):\n"
        "        def starts_with_re(data):\n"
        "            from docpipe.evidence.rules import CheckResult\n"
        "            v = data.get('order_number') or ''\n"
        "            return [CheckResult('order number starts RE', v.startswith('RE'), v, ('order_number',))]\n"
        "        return [starts_with_re]\n")
    pdf = make_pdf(tmp_path / "o.pdf", [INVOICE_TEXT])
    schema = resolve(f"{mod}:Order")
    out = EngineOutput(source=_source(pdf), data={"order_number": "XX-1"}, engine="fake")
    res = validate(out, schema)
    attach(res, schema)
    assert [(c.check, c.passed) for c in res.checks] == [("order number starts RE", False)]
    assert res.evidence[0].confidence < 0.3


def test_views_evidence_checks_needs_review_and_corrections(tmp_path: Path, db: Path) -> None:
    pdf = make_pdf(tmp_path / "rechnung.pdf", [INVOICE_TEXT])
    rep = ingest(IngestOptions(paths=[pdf], db=db, engine="offline"))
    assert rep.counts["ok"] == 1
    with Store.open(db) as store:
        _, rows = store.query("SELECT field, value, page, x0, y0, x1, y1, source, confidence, text, path "
                                 "FROM evidence WHERE field = 'total'")
        assert rows and rows[0][1] == "30.35" and rows[0][7] == "text" and "30,35" in rows[0][9]
        assert "30,35" in _box_text(pdf, rows[0][2], rows[0][3:7])
        _, checks = store.query('SELECT "check", passed FROM checks ORDER BY 1')
        assert ("subtotal + tax = total", True) in checks
        doc_id = store.query("SELECT doc_id FROM documents")[1][0][0]
        # a person corrects two values: the views show them, the original stays in extractions
        add_correction(store.con, doc_id, "total", "30.36", "tester")
        add_correction(store.con, doc_id, "line_items[2].amount", "5.51", "tester")
        assert str(store.query("SELECT total FROM invoice")[1][0][0]) == "30.36"
        assert str(store.query("SELECT amount FROM invoice_line_items WHERE line_no = 2")[1][0][0]) == "5.51"
        assert json.loads(store.query("SELECT data FROM extractions")[1][0][0])["total"] == "30.35"
        _, corr = store.query("SELECT field, old, new, who FROM corrections ORDER BY \"when\"")
        assert corr[0] == ("total", "30.35", "30.36", "tester")
        _, review = store.query("SELECT why FROM needs_review")
        assert review == [("check failed: vendor_tax_id VAT checksum (DE123456789)",)]  # the fixture's made-up id
        add_correction(store.con, doc_id, "vendor_tax_id", "DE136695976", "tester")
        assert store.query("SELECT why FROM needs_review")[1] == []  # a person answered for the failed check
        store.con.execute("UPDATE field_evidence SET confidence = 0.2 WHERE field = 'invoice_number'")
        _, review = store.query("SELECT problems, why FROM needs_review")
        assert review and "low confidence: invoice_number" in review[0][1]


def _evidence_rows(db: Path) -> list[tuple]:
    with Store.open(db, read_only=True) as store:
        ev = store.query("SELECT path, field, value, page, x0, y0, x1, y1, source, confidence, note FROM evidence "
                         "ORDER BY path, field")[1]
        return ev + store.query('SELECT path, "check", passed, detail FROM checks ORDER BY path, "check", detail')[1]


def test_worker_processes_ground_values_as_one_process_does(tmp_path: Path) -> None:
    """With --workers the evidence is built in the worker that read the document (the parent only lands rows):
    the same boxes, confidences and checks as a one-process ingest."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        make_pdf(folder / f"inv{i}.pdf", [INVOICE_TEXT.replace("RE-2025-0042", f"RE-2025-W{i}")])
    make_scan(folder / "scan.png", INVOICE_TEXT, dpi=100)
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    ingest(IngestOptions(paths=[folder], db=one, engine="offline"))
    ingest(IngestOptions(paths=[folder], db=two, engine="offline", engine_options=EngineOptions(workers=2)))
    rows = _evidence_rows(one)
    assert any(r[0].endswith("scan.png") and r[8] == "ocr" for r in rows)  # the scan's values have OCR boxes
    assert rows == _evidence_rows(two)
    engine = OfflineEngine(EngineOptions(workers=2))
    done = list(engine.run([DocJob(_source(folder / "inv0.pdf"), "invoice")], resolve("invoice")))
    assert isinstance(done[0], DocResult) and done[0].evidence and done[0].checks  # finished in the worker


def test_eval_reports_accuracy_by_confidence_band(tmp_path: Path, db: Path) -> None:
    from typer.testing import CliRunner

    from docpipe.cli import app

    make_pdf(tmp_path / "rechnung.pdf", [INVOICE_TEXT])
    truth = tmp_path / "truth.jsonl"
    truth.write_text(json.dumps({"file": "rechnung.pdf", "fields": {"total": 30.35, "invoice_date": "2025-03-06",
                                                                    "vendor_tax_id": "DE123456789"}}) + "\n")
    res = CliRunner().invoke(app, ["eval", str(tmp_path), "--db", str(db), "-e", "offline", "-w", "1",
                                   "--format", "json", "--bands"])
    assert res.exit_code == 0, res.output
    dec, docs, i = json.JSONDecoder(), [], 0
    while (j := res.output.find("[", i)) >= 0:  # three JSON arrays, one after another
        obj, i = dec.raw_decode(res.output, j)
        docs.append(obj)
    bands, checks = docs[-2], docs[-1]
    assert sum(b["values"] for b in bands) == 3 and sum(b["right"] for b in bands) == 2
    # the wrong date passed every check; the made-up VAT id is right (as printed) yet fails its checksum
    assert checks == [{"wrong values": 1, "caught by a failed check": 0, "right values": 2,
                       "flagged by a failed check": 1}]
