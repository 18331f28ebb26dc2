"""User schemas run offline: labels in other languages, values by shape, list fields from tables, a note when
little is filled, and a JSON Schema's `required` enforced."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import duckdb
from conftest import make_pdf
from pydantic import BaseModel, Field, create_model
from typer.testing import CliRunner

from docpipe.cli import app
from docpipe.engines.offline.fields import extract_fields
from docpipe.schemas import describe

DELIVERY_NOTE_DE = """Nordlicht Logistik GmbH
Hafenstraße 4, 20095 Hamburg
Tel.: +49 40 5550 1234     E-Mail: versand@nordlicht.example
IBAN: DE89 3704 0044 0532 0130 00

LIEFERSCHEIN
Bestellnummer:     B-2024-3391
Lieferdatum:       18.11.2024
Kunde:             Sonnenberg Bäckerei KG

Artikel                        Menge        Gewicht
Mehl Type 550                     20        500,00
Zucker fein                       10        100,00

Gesamtgewicht:                              600,00
"""


class Parcel(BaseModel):
    description: str | None = None
    quantity: int | None = None
    weight: Decimal | None = None


class DeliveryNote(BaseModel):
    order_number: str | None = None
    delivery_date: dt.date | None = None
    customer: str | None = None
    supplier_email: str | None = None
    iban: str | None = None
    phone: str | None = None
    parcels: list[Parcel] = Field(default_factory=list)


def test_english_schema_on_a_german_page() -> None:
    r = extract_fields([DELIVERY_NOTE_DE], describe(DeliveryNote))
    assert r["order_number"] == "B-2024-3391"
    assert r["delivery_date"] == "2024-11-18"
    assert r["customer"] == "Sonnenberg Bäckerei KG"
    assert r["supplier_email"] == "versand@nordlicht.example"
    assert r["iban"] == "DE89 3704 0044 0532 0130 00"
    assert r["phone"] == "+49 40 5550 1234"
    assert r["parcels"] == [{"description": "Mehl Type 550", "quantity": 20, "weight": "500.00"},
                            {"description": "Zucker fein", "quantity": 10, "weight": "100.00"}]


def test_aliases_and_descriptions_name_the_label() -> None:
    model = create_model("Claim", ref=(str | None, Field(None, json_schema_extra={"aliases": ["Schadennummer"]})),
                         when=(dt.date | None, Field(None, description="Date of loss, as printed")))
    r = extract_fields(["Schadennummer: S-77/2024\nDate of loss: 3 March 2024\n"], describe(model))
    assert r == {"ref": "S-77/2024", "when": "2024-03-03"}


def test_sparse_result_says_so_and_json_schema_required_is_enforced(tmp_path: Path) -> None:
    schema = tmp_path / "contract.json"
    schema.write_text(json.dumps({"title": "contract", "type": "object", "required": ["contract_id"], "properties": {
        "contract_id": {"type": "string"}, "signed_on": {"type": "string", "format": "date"},
        "party_a": {"type": "string"}, "party_b": {"type": "string"}, "notice_period": {"type": "string"}}}))
    folder = tmp_path / "in"
    folder.mkdir()
    make_pdf(folder / "letter.pdf", ["Dear Sir,\nthank you for your letter of 3 March 2024.\nKind regards"])
    db = tmp_path / "x.duckdb"
    res = CliRunner().invoke(app, ["ingest", str(folder), "--schema", str(schema), "--db", str(db), "-e", "offline",
                                   "-w", "1", "-q"])
    # contract_id is required and absent: invalid, as a pydantic model with a required field would be
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(db), read_only=True)
    status, errors = con.execute("SELECT status, errors FROM extractions").fetchone()
    con.close()
    assert status == "invalid" and "contract_id" in errors
    lax = tmp_path / "lax.json"
    lax.write_text(schema.read_text().replace('"required": ["contract_id"], ', ""))
    res = CliRunner().invoke(app, ["ingest", str(folder), "--schema", str(lax), "--db", str(tmp_path / "y.duckdb"),
                                   "-e", "offline",
                                   "-w", "1", "-q"])
    assert res.exit_code == 0
    flat = " ".join(res.output.split())
    assert "few fields filled" in flat and "--engine gemma or --engine openai" in flat


class Position(BaseModel):
    text: str | None = None
    qty: Decimal | None = None
    line_total: Decimal | None = None


class SupplierBill(BaseModel):
    supplier: str | None = None
    bill_no: str | None = None
    issued_on: dt.date | None = None
    payment_due: dt.date | None = None
    buyer: str | None = None
    net_amount: Decimal | None = None
    vat_amount: Decimal | None = None
    grand_total: Decimal | None = None
    order_date: dt.date | None = None
    positions: list[Position] = Field(default_factory=list)


def test_fields_that_ask_for_invoice_concepts_get_the_invoice_rules() -> None:
    from conftest import INVOICE_TEXT

    r = extract_fields([INVOICE_TEXT], describe(SupplierBill))
    assert r["supplier"] == "ACME Tools GmbH" and r["buyer"] == "Beispiel AG"
    assert r["bill_no"] == "RE-2025-0042"
    assert (r["issued_on"], r["payment_due"]) == ("2025-03-05", "2025-04-04")
    assert (r["net_amount"], r["vat_amount"], r["grand_total"]) == ("25.50", "4.85", "30.35")
    assert "order_date" not in r  # an order date is not the invoice date
    assert r["positions"] == [{"text": "Hammer", "qty": "2", "line_total": "20.00"},
                              {"text": "Schraubenset", "qty": "1", "line_total": "5.50"}]


def test_labels_with_a_slip_still_name_their_field() -> None:
    model = create_model("Po", purchase_order=(str | None, None), delivery_address=(str | None, None))
    r = extract_fields(["Purchse order: PO-4471\nDelivery adress: Dock 4, Rotterdam\n"], describe(model))
    assert r == {"purchase_order": "PO-4471", "delivery_address": "Dock 4, Rotterdam"}
