"""Rule-based field extraction (offline engine) on small, realistic page texts."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Literal

import pytest
from pydantic import Field, create_model

from docpipe.engines.offline.fields import Doc, extract_fields, find_amounts, find_dates, parse_amount
from docpipe.schemas import describe, resolve

INVOICE = resolve("invoice")
RECEIPT = resolve("receipt")
DOCUMENT = resolve("document")


def run(schema, *pages: str) -> dict:
    result = extract_fields(list(pages), schema)
    schema.model.model_validate(result)  # whatever comes back must fit the schema
    return result


# --------------------------------------------------------------------------- invoices
EN_INVOICE = """\
Brightwater Supplies Ltd                                        INVOICE
14 Harbour Road
Bristol BS1 5TT                                     Invoice No:      BW-2024-0815
United Kingdom                                      Invoice date:    5 March 2025
VAT Reg. No. GB 123 4567 89                         Due date:        4 April 2025

Bill to:
Kestrel Design LLP
22 Mill Lane
Bath BA1 2QT

Description                              Qty      Unit price        Amount
Printer paper A4, 5 reams                  4         £24.50         £98.00
Toner cartridge black                      2         £61.25        £122.50
Delivery                                   1          £9.50          £9.50

                                              Subtotal            £230.00
                                              VAT 20%              £46.00
                                              Total               £276.00

Payment within 30 days. Thank you for your business.
"""

DE_INVOICE = """\
Müller & Söhne Haustechnik GmbH · Industriestraße 14 · 70565 Stuttgart

Bäckerei Schäfer e.K.
Hauptstraße 7
71032 Böblingen
                                                   Rechnungsnummer:   RE-2025-0188
                                                   Rechnungsdatum:    05.03.2025
                                                   Kundennummer:      K-4471

Rechnung

Pos  Bezeichnung                               Menge    Einzelpreis      Gesamt
1    Jahreswartung Gas-Brennwertheizung         1,00       245,00 €    245,00 €
2    Arbeitszeit Monteur                        3,50        68,00 €    238,00 €
3    Dichtungen und Kleinmaterial               1,00        24,35 €     24,35 €

                                        Nettobetrag                   507,35 €
                                        zzgl. 19 % MwSt.               96,40 €
                                        Rechnungsbetrag               603,75 €

Zahlbar innerhalb 14 Tagen bis zum 19.03.2025 ohne Abzug.
Müller & Söhne Haustechnik GmbH · USt-IdNr. DE284519736 · IBAN DE12 6005 0101 0002 3456 78
"""

FR_INVOICE = """\
Atelier Lumière SAS
42 boulevard Voltaire
75011 Paris
N° TVA : FR83901234567

FACTURE N° FA-00387                                     Client
Date de facture : 20 février 2025                       Maison Bérard
Date d'échéance : 22 mars 2025                          9 allée des Platanes
                                                        33000 Bordeaux

Désignation                                  Quantité     Prix unitaire HT       Total HT
Séance photo produits (demi-journée)             2            450,00 €         900,00 €
Retouche et détourage des photos                24             13,50 €         324,00 €

                                                      Total HT                1 224,00 €
                                                      TVA 20 %                  244,80 €
                                                      Total TTC               1 468,80 €
"""

US_INVOICE = """\
INVOICE
Lakeside Web Studio, Inc.
880 Market St, Suite 400
San Francisco, CA 94102

Invoice #: 1047
Date: 03/04/25
Payment due: 04/03/25

Billed To:
Harper & Vance LLC
12 Elm Street
Austin, TX 78701

Item                               Hours     Rate        Amount
Website maintenance (March)           10    $95.00       $950.00
Hosting, annual                        1   $240.00       $240.00

Subtotal                                               $1,190.00
Sales tax                                                  $0.00
Amount due                                             $1,190.00
"""

CREDIT_NOTE = """\
Nordlicht Software GmbH
Am Hafen 3, 20457 Hamburg
USt-IdNr.: DE812345678

Gutschrift Nr. GS-2025-007 vom 14.02.2025
Rechnungskorrektur zu Rechnung RE-2025-0042

Rechnungsempfänger
Kaiser Logistik AG
Speicherstadt 9
20457 Hamburg

Pos  Beschreibung                          Menge      Preis       Betrag
1    Lizenz Gutschrift (Nutzer)              -5      12,00 €     -60,00 €

                                   Summe netto             -60,00 €
                                   MwSt. 19 %              -11,40 €
                                   Gesamtbetrag            -71,40 €
"""


def test_english_invoice() -> None:
    r = run(INVOICE, EN_INVOICE)
    assert r["invoice_number"] == "BW-2024-0815"
    assert r["invoice_date"] == "2025-03-05"
    assert r["due_date"] == "2025-04-04"
    assert r["vendor_name"] == "Brightwater Supplies Ltd"
    assert r["customer_name"] == "Kestrel Design LLP"
    assert r["currency"] == "GBP"
    assert (r["subtotal"], r["tax"], r["total"]) == ("230.00", "46.00", "276.00")
    assert r["vendor_tax_id"] == "GB 123 4567 89"
    assert [(i["description"], i["quantity"], i["amount"]) for i in r["line_items"]] == [
        ("Printer paper A4, 5 reams", "4", "98.00"),
        ("Toner cartridge black", "2", "122.50"),
        ("Delivery", "1", "9.50"),
    ]


def test_german_invoice_with_sender_line_and_payment_terms() -> None:
    r = run(INVOICE, DE_INVOICE)
    assert r["invoice_number"] == "RE-2025-0188"
    assert r["invoice_date"] == "2025-03-05"
    assert r["due_date"] == "2025-03-19"  # "Zahlbar ... bis zum 19.03.2025"
    assert r["vendor_name"] == "Müller & Söhne Haustechnik GmbH"
    assert r["customer_name"] == "Bäckerei Schäfer e.K."  # the name under the envelope sender line
    assert r["vendor_tax_id"] == "DE284519736"
    assert r["currency"] == "EUR"
    assert (r["subtotal"], r["tax"], r["total"]) == ("507.35", "96.40", "603.75")
    assert [i["unit_price"] for i in r["line_items"]] == ["245.00", "68.00", "24.35"]
    assert r["line_items"][1]["quantity"] == "3.5"


def test_french_invoice_spaced_thousands_and_month_names() -> None:
    r = run(INVOICE, FR_INVOICE)
    assert r["invoice_number"] == "FA-00387"
    assert r["invoice_date"] == "2025-02-20"
    assert r["due_date"] == "2025-03-22"
    assert r["vendor_name"] == "Atelier Lumière SAS"
    assert r["customer_name"] == "Maison Bérard"
    assert r["vendor_tax_id"] == "FR83901234567"
    assert (r["subtotal"], r["tax"], r["total"]) == ("1224.00", "244.80", "1468.80")
    assert len(r["line_items"]) == 2


def test_us_dates_two_digit_years_and_dollars() -> None:
    r = run(INVOICE, US_INVOICE)
    assert r["invoice_number"] == "1047"
    assert r["invoice_date"] == "2025-03-04"  # English + $: month first
    assert r["due_date"] == "2025-04-03"
    assert r["vendor_name"] == "Lakeside Web Studio, Inc."
    assert r["customer_name"] == "Harper & Vance LLC"
    assert r["currency"] == "USD"
    assert r["total"] == "1190.00"
    assert r["tax"] == "0.00"


def test_credit_note_keeps_negative_amounts() -> None:
    r = run(INVOICE, CREDIT_NOTE)
    assert r["invoice_number"] == "GS-2025-007"
    assert r["invoice_date"] == "2025-02-14"
    assert r["vendor_name"] == "Nordlicht Software GmbH"
    assert r["customer_name"] == "Kaiser Logistik AG"
    assert (r["subtotal"], r["tax"], r["total"]) == ("-60.00", "-11.40", "-71.40")
    assert r["line_items"] == [{"description": "Lizenz Gutschrift (Nutzer)", "quantity": "-5",
                                "unit_price": "12.00", "amount": "-60.00"}]


def test_total_is_chosen_to_agree_with_subtotal_and_tax() -> None:
    text = """Acme GmbH
Rechnung Nr. 77
Zwischensumme                      100,00 EUR
Versand                              5,00 EUR
Nettobetrag                        105,00 EUR
MwSt. 19 %                          19,95 EUR
Gesamtbetrag                       124,95 EUR
Bereits bezahlt                     50,00 EUR
Zu zahlen                           74,95 EUR
"""
    r = run(INVOICE, text)
    assert (r["subtotal"], r["tax"], r["total"]) == ("105.00", "19.95", "124.95")


def test_header_row_over_value_row_and_invoice_to_block() -> None:
    text = """Northwind Creative Ltd                                      INVOICE
                                                            No. NWC-1042
ISSUE DATE        DUE DATE         AMOUNT DUE
05/03/2025        04/04/2025       £7,736.40

INVOICE TO
Hollis & Grant Solicitors LLP
12 Queen Street, Bristol BS1 4DZ

Subtotal      £6,447.00
VAT 20%       £1,289.40
Total due     £7,736.40
"""
    r = run(INVOICE, text)
    assert r["invoice_number"] == "NWC-1042"
    assert (r["invoice_date"], r["due_date"]) == ("2025-03-05", "2025-04-04")  # British: day first
    assert r["customer_name"] == "Hollis & Grant Solicitors LLP"
    assert r["total"] == "7736.40"


def test_nothing_found_gives_empty_result() -> None:
    assert run(INVOICE, "") == {}
    assert run(INVOICE, "   \n\n") == {}
    r = run(INVOICE, "Hello, world!")
    assert "total" not in r and "vendor_name" not in r


def test_multi_page_invoice_totals_on_last_page() -> None:
    page1 = EN_INVOICE.split("                                              Subtotal")[0]
    page2 = "Brightwater Supplies Ltd     Page 2\n\nSubtotal   £230.00\nVAT 20%   £46.00\nTotal   £276.00\n"
    r = run(INVOICE, page1, page2)
    assert r["total"] == "276.00" and r["subtotal"] == "230.00"


# --------------------------------------------------------------------------- receipts
RECEIPT_DE = """\
         Bäckerei Kern
              Marktplatz 3
            72764 Reutlingen
           St.-Nr. 78123/45678
----------------------------------------
Datum: 07.03.2025 08:14
----------------------------------------
Laugenbrezel
  3 x 0,85                        2,55 B
Roggenbrot 750 g                   4,20 B
Butterbrezel
  2 x 1,60                        3,20 B
----------------------------------------
SUMME EUR                          9,95
Gegeben BAR                       20,00
Rückgeld                          10,05

B = 7% MwSt.   Netto                9,30
MwSt. 7%                            0,65
Brutto                              9,95
"""

RECEIPT_EN = """\
      HARBOR BEAN COFFEE
   412 Pier Street, Portland, OR 97205
03/14/2025  8:42 AM   Order #1187
2 Latte 12oz          @4.75     9.50
Blueberry Muffin                3.25
Subtotal                       12.75
Sales Tax                       1.02
TOTAL                         $13.77
VISA **** 4421                $13.77
"""


def test_german_receipt() -> None:
    r = run(RECEIPT, RECEIPT_DE)
    assert r["merchant_name"] == "Bäckerei Kern"
    assert r["merchant_address"] == "Marktplatz 3, 72764 Reutlingen"
    assert r["date"] == "2025-03-07"
    assert r["currency"] == "EUR"
    assert (r["total"], r["tax"]) == ("9.95", "0.65")  # not the 20,00 handed over
    assert r["items"] == [
        {"description": "Laugenbrezel", "amount": "2.55", "quantity": "3", "unit_price": "0.85"},
        {"description": "Roggenbrot 750 g", "amount": "4.20"},
        {"description": "Butterbrezel", "amount": "3.20", "quantity": "2", "unit_price": "1.60"},
    ]


def test_us_receipt() -> None:
    r = run(RECEIPT, RECEIPT_EN)
    assert r["merchant_name"] == "HARBOR BEAN COFFEE"
    assert r["date"] == "2025-03-14"
    assert (r["total"], r["tax"], r["currency"]) == ("13.77", "1.02", "USD")
    assert r["items"][0] == {"description": "Latte 12oz", "amount": "9.50", "quantity": "2", "unit_price": "4.75"}


# --------------------------------------------------------------------------- document
LETTER = """\
Hartmann Immobilien GmbH · Lindenallee 4 · 50667 Köln

Frau
Sabine Weber
Rosenweg 12
50823 Köln
                                                  Köln, 12. März 2025
Betreff: Kündigung des Mietvertrags vom 1. April 2019

Sehr geehrte Frau Weber,

hiermit bestätigen wir den Eingang Ihrer Kündigung vom 28. Februar 2025. Das Mietverhältnis endet
fristgerecht zum 31. Mai 2025. Die Kaution in Höhe von 2.400,00 EUR wird nach der Wohnungsübergabe
erstattet.

Mit freundlichen Grüßen
Hartmann Immobilien GmbH
"""


def test_document_letter() -> None:
    r = run(DOCUMENT, LETTER)
    assert r["title"] == "Kündigung des Mietvertrags vom 1. April 2019"
    assert r["document_type"] == "letter"
    assert r["date"] == "2025-03-12"
    assert r["language"] == "de"
    assert r["parties"] == ["Hartmann Immobilien GmbH"]
    assert any("2.400,00 EUR" in f for f in r["key_facts"])
    assert any("31. Mai 2025" in f for f in r["key_facts"])


def test_document_contract_and_invoice_types() -> None:
    contract = """SERVICE AGREEMENT

This Service Agreement (the "Agreement") is entered into as of January 15, 2025 by and between
Brightline Analytics LLC ("Provider") and Redwood Foods Inc. ("Client").

1. Fees. Client shall pay Provider a fixed fee of $4,500.00 per month.
2. Term. This Agreement commences on February 1, 2025 and continues for twelve months.
"""
    r = run(DOCUMENT, contract)
    assert (r["title"], r["document_type"], r["date"], r["language"]) == (
        "SERVICE AGREEMENT", "contract", "2025-01-15", "en")
    assert r["parties"] == ["Brightline Analytics LLC", "Redwood Foods Inc."]
    assert len(r["key_facts"]) <= 8
    assert run(DOCUMENT, FR_INVOICE)["document_type"] == "invoice"
    assert run(DOCUMENT, FR_INVOICE)["language"] == "fr"


# --------------------------------------------------------------------------- user schemas
def test_user_schema_generic_labels() -> None:
    model = create_model(
        "PurchaseOrder",
        po_number=(str | None, Field(None, description="The purchase order number")),
        order_date=(dt.date | None, Field(None, description="Date the order was placed")),
        delivery_date=(dt.date | None, Field(None, description="Requested delivery date")),
        total_value=(Decimal | None, Field(None, description="Order total including tax")),
        item_count=(int | None, Field(None, description="Number of positions")),
        express=(bool | None, Field(None, description="Express shipping requested")),
        priority=(Literal["low", "normal", "high"] | None, None),
        buyer=(str | None, None),
        lines=(list[str], Field(default_factory=list)),
    )
    text = """ACME Procurement
PURCHASE ORDER
PO Number: PO-88231
Order date: 12.03.2025                   Buyer
Requested delivery date: 2 April 2025    Jane Roe
Number of positions: 14
Order total including tax: EUR 12.480,50
Express: yes
Priority: High
"""
    r = run(describe(model), text)
    assert r == {"po_number": "PO-88231", "order_date": "2025-03-12", "delivery_date": "2025-04-02",
                 "total_value": "12480.50", "item_count": 14, "express": True, "priority": "high",
                 "buyer": "Jane Roe"}


def test_user_schema_named_like_builtin_only_gets_its_own_fields() -> None:
    model = create_model("invoice", total=(Decimal | None, None), invoice_number=(int | None, None))
    r = run(describe(model, name="invoice"), EN_INVOICE)
    assert r == {"total": "276.00"}  # "BW-2024-0815" is no int: dropped, never an error


# --------------------------------------------------------------------------- parsing helpers
@pytest.mark.parametrize("text, mark, expected", [
    ("1,234.56", ".", "1234.56"), ("1.234,56", ",", "1234.56"), ("1 234,56 €", ",", "1234.56"),
    ("1'234.56 CHF", ".", "1234.56"), ("€83.20", ".", "83.20"), ("-7,67", ",", "-7.67"),
    ("($144.00)", ".", "-144.00"), ("8,79-", ",", "-8.79"), ("EUR 12.480,50", ",", "12480.50"),
    ("USD 1,000", ".", "1000"), ("3,3333", ",", "3.3333"),
])
def test_amount_formats(text: str, mark: str, expected: str) -> None:
    assert parse_amount(text, mark) == Decimal(expected)


def test_percentages_and_spaced_table_numbers_are_not_amounts() -> None:
    assert [a.value for a in find_amounts("VAT 19 % 163,16", ",")] == [Decimal("163.16")]
    assert [a.value for a in find_amounts("Umsatzsteuer 19 163,16", ",")] == [Decimal(19), Decimal("163.16")]


@pytest.mark.parametrize("text, day_first, expected", [
    ("2025-03-05", True, "2025-03-05"), ("05.03.2025", False, "2025-03-05"), ("05/03/2025", True, "2025-03-05"),
    ("03/05/2025", False, "2025-03-05"), ("March 5, 2025", True, "2025-03-05"), ("5 March 2025", True, "2025-03-05"),
    ("5. März 2025", True, "2025-03-05"), ("5 mars 2025", True, "2025-03-05"), ("1er mars 2025", True, "2025-03-01"),
    ("05.03.25", True, "2025-03-05"), ("13 Sep, 2022", True, "2022-09-13"), ("Oct 31, 2023", True, "2023-10-31"),
    ("31.02.2025", True, None), ("05JAN2018", True, "2018-01-05"), ("DATE 5Mar24 13:45", True, "2024-03-05"),
    ("A1DEC2023", True, None),
])
def test_date_formats(text: str, day_first: bool, expected: str | None) -> None:
    hits = find_dates(text, day_first)
    assert (hits[0].value.isoformat() if hits else None) == expected


def test_document_wide_date_order_from_values_over_12() -> None:
    assert Doc(["Invoice Date 11/03/2017\nPaid on 11/17/2017"]).dmy is False
    assert Doc(["Date de facture 05/11/2017\nRèglement 31/10/2017"]).dmy is True


def test_hundred_pages_in_well_under_a_second() -> None:
    pages = [EN_INVOICE, DE_INVOICE, FR_INVOICE, LETTER] * 25
    for schema in (INVOICE, RECEIPT, DOCUMENT):
        start = time.process_time()
        extract_fields(pages, schema)
        assert time.process_time() - start < 1.0


@pytest.mark.parametrize("title, number, date", [
    ("Schlussrechnung Bau (877)  Nr. 181301674 vom  25.04.2018", "181301674", "2018-04-25"),
    ("Gutschrift (Selbst ausgestellte Rechnung) (389)  Nr. 47110818 vom  31.10.2018", "47110818", "2018-10-31"),
    ("Rechnung # RE-20140703/502 vom 03.07.2014", "RE-20140703/502", "2014-07-03"),
    ("Facture FA-2017-0009", "FA-2017-0009", None),
    ("Rechnung gemäß Bestellung Nr. 2018-471331 vom 01.03.2018", None, None),  # an order number
])
def test_number_and_date_from_title_line(title: str, number: str | None, date: str | None) -> None:
    r = run(INVOICE, f"Lieferant GmbH\n\n{title}\n\nBruttosumme   100,00\n")
    assert r.get("invoice_number") == number
    if date:
        assert r["invoice_date"] == date


def test_prefix_legal_form_and_mail_headers() -> None:
    text = """From: billing@cloudhost.io
To: accounts@example.com

FACTURE D'ACOMPTE
SAS Bâtir Ensemble
12 avenue Jean Jaurès, 69007 Lyon

Facturé à : Mairie de Villeurbanne
Place Lazare Goujon, 69100 Villeurbanne

Facture n° 2025/0042 du 03/02/2025
Acompte 30 % sur devis D-2024-311          12 450,00 € HT
TVA 20 %                                     2 490,00 €
Net à payer                                 14 940,00 €
"""
    r = run(INVOICE, text)
    assert r["vendor_name"] == "SAS Bâtir Ensemble"
    assert r["customer_name"] == "Mairie de Villeurbanne"
    assert r["customer_address"] == "Place Lazare Goujon, 69100 Villeurbanne"
    assert (r["invoice_number"], r["invoice_date"]) == ("2025/0042", "2025-02-03")
    assert (r["subtotal"], r["tax"], r["total"]) == ("12450.00", "2490.00", "14940.00")


def test_swiss_apostrophe_thousands_and_incl_excl_labels() -> None:
    text = """Alpenblick Treuhand AG
Rechnung 2025-118
Datum: 14.01.2025
Leistung                         Betrag CHF
Buchhaltung Q4 2024              1'200.00
Jahresabschluss                  2'450.00
Total exkl. MWST                 3'650.00
MWST 8.1 %                         295.65
Total inkl. MWST                 3'945.65
"""
    r = run(INVOICE, text)
    assert (r["subtotal"], r["tax"], r["total"], r["currency"]) == ("3650.00", "295.65", "3945.65", "CHF")


def test_day_month_name_year_with_dashes_or_slashes() -> None:
    assert [h.value for h in find_dates("Bill Date: 29-Jul-2024  Due: 05/Mar/25")] == [
        dt.date(2024, 7, 29), dt.date(2025, 3, 5)]


def test_totals_with_label_above_value() -> None:
    text = """Harbour Lane Studio Ltd
9 Quay Street, Hull HU1 1AA

Inv. No.
HL-2207
Date of issue
14-Feb-2025

Net amount
£500.00
VAT 20%
£100.00
Balance Due
£600.00
"""
    r = run(INVOICE, text)
    assert r["invoice_number"] == "HL-2207" and r["invoice_date"] == "2025-02-14"
    assert (r["subtotal"], r["tax"], r["total"], r["currency"]) == ("500.00", "100.00", "600.00", "GBP")


def test_sender_line_with_one_bullet_and_rechnung_an() -> None:
    text = """Weiss Fensterbau GmbH · Feldweg 3, 01067 Dresden

Gasthaus Krone
Marktstraße 1, 01069 Dresden

Rechnungs-Nr.: 2025-118
Belegdatum: 07.03.2025

Netto          200,00 EUR
zzgl. 19% USt   38,00 EUR
Endbetrag      238,00 EUR
"""
    r = run(INVOICE, text)
    assert r["customer_name"] == "Gasthaus Krone" and r["vendor_name"] == "Weiss Fensterbau GmbH"
    r2 = run(INVOICE, text.replace("Weiss Fensterbau GmbH · Feldweg 3, 01067 Dresden\n",
                                   "Weiss Fensterbau GmbH\nFeldweg 3, 01067 Dresden\n\nRechnung an:"))
    assert r2["customer_name"] == "Gasthaus Krone"


def test_label_ending_in_hash_takes_glued_number_and_totals_row_is_no_vendor() -> None:
    r = run(INVOICE, "Facture N°F-88\nMontant HT   1\u202f000,00\nTVA (20%)   200,00\nNet à payer   1\u202f200,00")
    assert r["invoice_number"] == "F-88" and r["total"] == "1200.00"
    assert "vendor_name" not in r


def test_a_customer_named_after_a_street_is_the_name_above_its_address() -> None:
    # "Maple Street Dental" has a street word but no number, and a street line under it: it is the name; the
    # table header after the block ("ACTIVITY") is not
    text = """\
Redwood Plumbing & Heating LLC                                   INVOICE
2231 Alder Ave
Sacramento, CA 95816

BILL TO                  SHIP TO                   INVOICE # 1023
Maple Street Dental      Maple Street Dental       DATE 01/15/2025
410 Maple St             410 Maple St              DUE DATE 02/14/2025
Davis, CA 95616          Davis, CA 95616           TERMS Net 30

DATE         ACTIVITY    DESCRIPTION                  QTY    RATE      AMOUNT
01/10/2025   Labor       Water heater replacement    4     95.00          380.00

                                            TOTAL                         380.00
"""
    r = run(INVOICE, text)
    assert r["customer_name"] == "Maple Street Dental" and r["customer_address"] == "410 Maple St, Davis, CA 95616"
    assert r["vendor_name"] == "Redwood Plumbing & Heating LLC"
    # a street line is still no name
    r2 = run(INVOICE, text.replace("Maple Street Dental      Maple Street Dental", ""))
    assert r2.get("customer_name") not in ("410 Maple St", "Davis, CA 95616")


MARKETPLACE_INVOICE = """\
Invoice                                                                Page 1 of 1

Sold by Brixton Home Goods Ltd           Invoice date / Delivery date 28.08.2025
Unit 12, Canal Works                     Invoice # GB5QWERT12AB
Birmingham B7 4RT, GB                    Total payable £86.97
VAT # GB 412 8890 17

Billing address       Delivery address
Priya Raman           Priya Raman
5 Elm Court           5 Elm Court
Reading RG1 2AB       Reading RG1 2AB

Description                Qty   Unit price   VAT rate   Item subtotal
Cotton bath towels          1    £29.99       20%        £29.99
Bamboo bathroom shelf       2    £28.49       20%        £56.98
                                                        Total £86.97

VAT summary

 VAT rate  Item subtotal (excl. VAT)  VAT subtotal
 20%       £72.47                     £14.50
 Total     £72.47                     £14.50
"""


def test_a_vat_summary_table_gives_net_and_vat_and_its_total_row_is_no_invoice_total() -> None:
    r = run(INVOICE, MARKETPLACE_INVOICE)
    assert (r["subtotal"], r["tax"], r["total"], r["currency"]) == ("72.47", "14.50", "86.97", "GBP")
    assert r["vendor_name"] == "Brixton Home Goods Ltd"  # "Sold by" with the name beside it, no colon


def test_a_summary_total_row_without_its_header_still_sums_to_the_total() -> None:
    # the header's cells ran together: the row "Total  72.47  14.50" is read as net and VAT only because their
    # sum is printed as a total
    text = MARKETPLACE_INVOICE.replace(" VAT rate  Item subtotal (excl. VAT)  VAT subtotal",
                                       "VAT rate Item subtotal (excl. VAT) VAT subtotal")
    r = run(INVOICE, text)
    assert (r["subtotal"], r["tax"], r["total"]) == ("72.47", "14.50", "86.97")
    r2 = run(INVOICE, text.replace("£14.50", "£13.50"))  # no sum fits: the weak reading is not taken
    assert r2.get("tax") != "13.50"


def test_the_window_envelope_recipient_comes_with_its_address() -> None:
    text = """\
Elektro Schubert GmbH · Industriestraße 8 · 90431 Nürnberg
Hotel Am Park KG
Parkallee 2
91054 Erlangen

Gutschrift
Gutschrift-Nr.: GS-2025-014
Datum: 21.07.2025
Summe netto        -320,40 €
zzgl. 19% USt.      -60,88 €
Gutschriftsbetrag  -381,28 €
"""
    r = run(INVOICE, text)
    assert (r["customer_name"], r["customer_address"]) == ("Hotel Am Park KG", "Parkallee 2, 91054 Erlangen")
    assert r["vendor_name"] == "Elektro Schubert GmbH" and r["total"] == "-381.28"


def test_no_currency_printed_but_a_euro_countrys_iban_is_euro() -> None:
    text = """\
Sierra Alta Kitchen B.V.
Dorpsweg 170, 2511 CV Den Haag
FACTUUR
Factuurnr.:   45457
Factuurdatum: 11-01-2025
                     Totaalbedrag       15.663,35
IBAN NL91 ABNA 0417 1643 00
"""
    assert run(INVOICE, text)["currency"] == "EUR"
    # a bank elsewhere, or none, says nothing: no currency is better than a guessed one
    assert "currency" not in run(INVOICE, text.replace("IBAN NL91", "IBAN CH93"))
    assert "currency" not in run(INVOICE, text.replace("IBAN NL91 ABNA 0417 1643 00", ""))


def test_a_vendor_name_wrapped_in_a_narrow_column_is_read_whole() -> None:
    text = """\
Invoice
                                                                      Northbeam Web
Email or talk to us about your account or bill
                                                                      Services, Inc.

Bill to Address:            Invoice Summary
ATTN: Finance               Invoice Number: 1623045771
Quarry Labs Inc             Invoice Date: July 2, 2024
77 Pine Street              TOTAL AMOUNT DUE ON July 2, 2024   $812.44
Portland, OR, 97204, US
"""
    r = run(INVOICE, text)
    assert (r["vendor_name"], r["customer_name"], r["total"]) == ("Northbeam Web Services, Inc.", "Quarry Labs Inc",
                                                                  "812.44")
    # a heading above a one-line name is no part of it
    heading = text.replace("Northbeam Web\n", "Billing\n").replace("Services, Inc.", "Northbeam Web Services, Inc.")
    assert run(INVOICE, heading)["vendor_name"] == "Northbeam Web Services, Inc."


XERO_STYLE = """\
                                  Invoice Date        Oakline Joinery Limited
                                  14 Feb 2025         Unit 4, Mill Yard
                                                      York YO1 7HH
TAX INVOICE
                                  Invoice Number      United Kingdom
                                  INV-0042
Pinecrest Gardens Ltd
Attention: Accounts               Reference
7 Kings Road                      PO 1187
Leeds LS1 4AP
                                  VAT Number
                                  GB 293 4471 08

                                                      TOTAL GBP                936.00
"""


def test_an_unlabelled_block_under_the_title_with_the_letterhead_beside_it_is_the_customer() -> None:
    r = run(INVOICE, XERO_STYLE)
    assert (r["vendor_name"], r["customer_name"], r["customer_address"]) == (
        "Oakline Joinery Limited", "Pinecrest Gardens Ltd", "7 Kings Road, Leeds LS1 4AP")
    assert r["invoice_number"] == "INV-0042" and r["total"] == "936.00"
    # the vendor's own letterhead under its title (nothing beside it) is no customer
    own = ("INVOICE\nOakline Joinery Limited\nUnit 4, Mill Yard\nYork YO1 7HH\n\n"
           "Invoice Number: INV-0042\nTotal  £936.00\n")
    r = run(INVOICE, own)
    assert r["vendor_name"] == "Oakline Joinery Limited" and "customer_name" not in r


def test_a_contracts_parties_are_its_names_not_their_descriptions() -> None:
    text = """\
                         MASTER SERVICES AGREEMENT
This Master Services Agreement is entered into as of March 1, 2025 by and between
Harborview Analytics LLC, a Delaware limited liability company ("Provider"), and
Tidewater Freight Inc., a Virginia corporation ("Client").
"""
    r = run(DOCUMENT, text)
    assert r["parties"] == ["Harborview Analytics LLC", "Tidewater Freight Inc."]
    # the lines wrapped elsewhere: a description must not become a party of its own
    wrapped = text.replace("company (\"Provider\"), and\nTidewater Freight Inc.,",
                           "company (\"Provider\"), and Tidewater Freight\nInc.,")
    assert not any("Delaware" in p or "Virginia" in p for p in run(DOCUMENT, wrapped)["parties"])
    assert r["date"] == "2025-03-01" and r["document_type"] == "contract"


def test_a_shops_invoice_for_an_order_is_numbered_by_the_order() -> None:
    text = """\
Fernwood Candle Co.                                        Invoice for Order #1047
hello@fernwoodcandle.example                           Order date: October 14, 2025

Bill to
Nadia Okafor
18 Birch Lane
Asheville, NC 28801

Subtotal            $60.00
Discount (FALL10)   -$6.00
Shipping             $7.50
Tax                  $4.05
Total               $65.55
"""
    r = run(INVOICE, text)
    assert (r["invoice_number"], r["invoice_date"], r["total"]) == ("1047", "2025-10-14", "65.55")
    # an invoice number of its own wins over the order's
    r = run(INVOICE, text.replace("Order date:", "Invoice No: INV-88   Order date:"))
    assert r["invoice_number"] == "INV-88"


def test_vendor_address_under_a_from_label_beside_a_letterhead_or_right_of_the_name() -> None:
    # the name in the letterhead, its address under a "FROM" label further down
    from_label = """\
Brightside Studio                          Invoice
Ltd                                        No. BS-77
Design for print and screen
                                           ISSUE DATE        AMOUNT DUE
                                           05/03/2025        £1,200.00
FROM
2nd Floor, 14 Mill Lane
Leeds LS1 4AB
United Kingdom
                                           BILLED TO
                                           Carver & Lowe LLP
                                           9 Quay Street
                                           Bristol BS1 4DZ
                    Subtotal                £1,000.00
                    VAT 20%                   £200.00
                    Total due               £1,200.00
"""
    r = extract_fields([from_label], INVOICE)
    assert r["vendor_address"] == "2nd Floor, 14 Mill Lane, Leeds LS1 4AB, United Kingdom"
    assert r["customer_address"] == "9 Quay Street, Bristol BS1 4DZ"
    # the sender's street and town in a right-hand column level with the name, contact lines under them
    right = """\
                                                                      Lindenallee 7
Jonas Weber                                                           50667 Köln
                                                          kontakt@jonas-weber.example
Fotografie
An
Brauhaus Kessel GmbH                                    Rechnung Nr.        2025-031
Hafenstraße 3                                           Datum             28.02.2025
20457 Hamburg
 Leistung                                   Anzahl       Preis        Betrag
 Fotoshooting                                    1      800,00    EUR 800,00
                                            Gesamtbetrag          EUR 800,00
"""
    r = extract_fields([right], INVOICE)
    assert r["vendor_name"] == "Jonas Weber"
    assert r["vendor_address"] == "Lindenallee 7, 50667 Köln"
    assert r["customer_address"] == "Hafenstraße 3, 20457 Hamburg"


def test_an_irish_eircode_line_belongs_to_the_address() -> None:
    text = """\
Liffey Print Ltd                                                  INVOICE
Unit 2, Cookstown Estate
Dublin 24, D24 KX81
   INVOICE TO                                                     Invoice number     LP-2025-0042
   Shannon Books Ltd                                              Invoice date       28 February 2025
   3 Bridge Street
   Limerick V94 T9PX
   Ireland
  Total                                                                              €410.00
"""
    r = extract_fields([text], INVOICE)
    assert r["customer_address"] == "3 Bridge Street, Limerick V94 T9PX, Ireland"
    assert r["vendor_address"] == "Unit 2, Cookstown Estate, Dublin 24, D24 KX81"



CA_INVOICE = """\
Tamarack Advisory Inc.
200 Bay Street, Suite 1200
Toronto ON M5J 2J2
GST/HST No. 123456789 RT0001

INVOICE                                  Invoice #: 2025-118
                                         Date: March 12, 2025
                                         Due: April 11, 2025
Bill To:
Aurora Outfitters Ltd.
45 Rue Sainte-Catherine
Montréal QC H2X 1K4

Description                    Hours     Rate        Amount
Strategy workshop                 12    $150.00    $1,800.00
Report writing                     6    $120.00      $720.00

                               Subtotal           $2,520.00
                               HST 13%              $327.60
                               Total              $2,847.60
"""

IN_INVOICE = """\
                                   TAX INVOICE
Kaveri Looms Pvt. Ltd.                              Invoice No: ST/2024-25/0412
14, MG Road, Bengaluru, Karnataka 560001               Invoice Date: 12-03-2025
GSTIN: 29AABCS1429B1ZB                                 Place of Supply: Maharashtra (27)

Bill To:
Desai Apparel LLP
22 Linking Road, Bandra West
Mumbai, Maharashtra 400050
GSTIN: 27AAGFM4521K1Z3

Sr  Description          HSN     Qty   Rate       Amount
1   Cotton fabric roll   5208    10    1,250.00   12,500.00
2   Polyester thread     5401    20    85.00      1,700.00

                                   Taxable Value        14,200.00
                                   CGST @ 2.5%             355.00
                                   SGST @ 2.5%             355.00
                                   Total                14,910.00
Amount in words: Rupees Fourteen Thousand Nine Hundred Ten Only
"""


def test_a_canadian_invoice_keeps_postal_codes_accents_and_its_dollar() -> None:
    r = run(INVOICE, CA_INVOICE)
    assert r["vendor_address"] == "200 Bay Street, Suite 1200, Toronto ON M5J 2J2"  # not its GST/HST number
    assert r["customer_address"] == "45 Rue Sainte-Catherine, Montréal QC H2X 1K4"
    assert (r["currency"], r["tax"], r["total"]) == ("CAD", "327.60", "2847.60")


def test_an_indian_gst_invoice_sums_cgst_and_sgst_and_is_in_rupees() -> None:
    r = run(INVOICE, IN_INVOICE)
    assert (r["subtotal"], r["tax"], r["total"]) == ("14200.00", "710.00", "14910.00")  # "Taxable Value", CGST+SGST
    assert r["currency"] == "INR"  # no symbol printed: a GSTIN and an amount in words in rupees


def test_a_row_whose_price_is_its_amount_in_a_table_of_quantities_is_one_of_it() -> None:
    text = """\
Harbour Supplies Ltd                                   INVOICE
12 Dock Road, Leeds LS1 4AB                            Invoice No. HS-2211
                                                       Date: 03/04/2025
 Item                            Qty      Unit price        Amount
 Espresso beans 1kg                3          249.36        748.08
 Grinder service                              616.57        616.57
                                            Subtotal      1,364.65
                                            VAT 20%         272.93
                                            Total         1,637.58
"""
    items = run(INVOICE, text)["line_items"]
    assert [(i["description"], i["quantity"], i["amount"]) for i in items] == [
        ("Espresso beans 1kg", "3", "748.08"), ("Grinder service", "1", "616.57")]  # its quantity lost to a scan



NL_INVOICE = """\
Bakkerij Zonneveld B.V.
Kerkstraat 12
1017 GC Amsterdam
KvK 12345678  BTW NL001234567B01

FACTUUR
Factuurnummer: 2025-0193
Factuurdatum: 12 maart 2025
Vervaldatum: 11 april 2025

Aan:
Café De Kroon
Prinsengracht 200
1016 HE Amsterdam

Omschrijving              Aantal    Prijs      Bedrag
Volkoren brood               40     2,50       100,00
Croissants                  120     0,85       102,00
Korting 5%                                     -10,10

Subtotaal                                      191,90
BTW 9%                                          17,27
Totaal te betalen                          € 209,17
"""

UK_CREDIT_NOTE = """\
Clearnote Audio Ltd
Unit 4, Riverside Park
Leeds LS10 1AB
VAT Reg No: GB 123 4567 89

CREDIT NOTE
Credit Note No: CN-0042
Date: 14/03/2025
Original Invoice: INV-1187

Customer:
Tunebox Retail Ltd
22 Market Street
York YO1 8AA

Description                         Qty    Unit Price     Amount
Returned headphones (faulty)          2       £85.00    -£170.00

Subtotal                                                -£170.00
VAT 20%                                                  -£34.00
Total credit                                            -£204.00
"""


def test_a_chamber_of_commerce_line_is_not_the_address_and_a_credit_note_has_its_rows() -> None:
    nl = run(INVOICE, NL_INVOICE)
    assert nl["vendor_address"] == "Kerkstraat 12, 1017 GC Amsterdam"  # not "KvK 12345678"
    assert (nl["subtotal"], nl["tax"], nl["total"]) == ("191.90", "17.27", "209.17")
    cn = run(INVOICE, UK_CREDIT_NOTE)
    assert (cn["total"], cn["tax"]) == ("-204.00", "-34.00")
    assert [(i["description"], i["quantity"], i["unit_price"], i["amount"]) for i in cn["line_items"]] == [
        ("Returned headphones (faulty)", "2", "85.00", "-170.00")]  # 2 x 85.00 credited


def test_an_inline_bill_to_line_gives_the_address_after_the_name() -> None:
    text = """\
Harbor Tools Ltd                                    INVOICE
5 Quay Road, Bristol BS1 4DZ                        Invoice No: HT-5521
                                                    Date: 03/04/2025
Bill To: Marlow Builders Ltd, 8 High Street, Bath BA1 1AA

Description                  Qty    Unit Price      Amount
Hammer drill                   2       120.00      240.00
                                   Total           240.00
"""
    r = run(INVOICE, text)
    assert (r["customer_name"], r["customer_address"]) == ("Marlow Builders Ltd", "8 High Street, Bath BA1 1AA")


def test_an_unlabelled_addressee_with_a_title_is_the_customer() -> None:
    text = """\
Kestrel Water plc
PO Box 88, Leeds LS1 1AA
www.kestrelwater.example   VAT No. GB 987 6543 21

Your water bill
Account number: 4410 2290 11          Bill date: 14 March 2025
Bill number: 778812345                Billing period: 10 Feb 2025 - 9 Mar 2025

Mr Owen Hale
3 Larch Close
Otley LS21 3AB

Water charges                                     £41.40
Total amount due                                  £41.40
"""
    r = run(INVOICE, text)
    assert (r["customer_name"], r["customer_address"]) == ("Mr Owen Hale", "3 Larch Close, Otley LS21 3AB")
    assert r["vendor_name"] == "Kestrel Water plc"
