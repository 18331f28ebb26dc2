"""Invoices saved from a web page ("Print > Save as PDF"): the browser's date, title, URL and page counter around
the page are not the invoice's, but its title names the issuer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import docpipe
from docpipe.engines.offline.fields import extract_fields
from docpipe.schemas import resolve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INVOICE = resolve("invoice")

BILLING_PAGE = """<html><head><title>Invoice | Brightloop</title></head><body style="font-family:sans-serif">
<p>3/14/24</p><h2>Cedar Analytics</h2><p>Invoice ID #9kq2xz</p>
<p>Subscription details:</p>
<table><tr><td>Team plan, monthly</td><td>5 @ $12.00</td><td>$60.00</td></tr>
<tr><td>Subscription total:</td><td></td><td>$60.00</td></tr></table>
<p>The Visa ending in 4242 was charged $60.00 USD.</p>
<p>Questions? Contact billing@brightloop.io</p>
<h3>Address</h3><p>Brightloop<br>400 Market Street<br>Portland, OR 97204</p>
</body></html>"""


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs the OS's chromium (apt-get install chromium)")
def test_a_billing_page_printed_by_chromium_reads_as_its_issuers_invoice(tmp_path: Path) -> None:
    html = tmp_path / "billing.html"
    html.write_text(BILLING_PAGE)
    pdf = tmp_path / "brightloop.pdf"
    # Chromium's own print: a header with today's date, time and the title; a footer with the URL and 1/1
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    f"--print-to-pdf={pdf}", html.as_uri()], check=True, capture_output=True, timeout=120)
    db = tmp_path / "books.duckdb"
    report = docpipe.ingest(pdf, schema="invoice", engine="offline", db=db)
    assert report.counts["ok"] == 1
    with docpipe.connect(db) as store:
        row = store.records("SELECT vendor_name, invoice_date, total, currency FROM invoice")[0]
    assert row["vendor_name"] == "Brightloop"  # the title's issuer, not the customer on the page's first lines
    assert str(row["invoice_date"]) == "2024-03-14"  # the page's date, not the day it was printed
    assert str(row["total"]) == "60.00" and row["currency"] == "USD"


SCANNED_PRINT = """\
02.04.24, 09:15                                 Invoice | Brightloop

10/3/24

Cedar Analytics

 Invoice ID #9kq2xz
Team plan, monthly                          5 @ $12.00            $60.00
 Subscription total:                                             $60.00

Questions? billing@brightloop.io

Address
Brightloop
400 Market Street
Portland, OR 97204

https://app.brightloop.io/billing/invoices/9kq2xz                         1/1"""


def test_a_date_after_the_print_date_is_read_the_other_way_round() -> None:
    # printed on 2 April 2024: "10/3/24" cannot be 3 October 2024, so it is 10 March
    out = extract_fields([SCANNED_PRINT], INVOICE)
    assert out["invoice_date"] == "2024-03-10"
    assert out["vendor_name"] == "Brightloop"


def test_a_date_and_time_line_without_a_url_is_the_documents_own() -> None:
    # no URL at the page's edge: no browser printed this, and its first date is the one to read
    page = SCANNED_PRINT.replace("https://app.brightloop.io/billing/invoices/9kq2xz", "Thank you")
    out = extract_fields([page], INVOICE)
    assert out["invoice_date"] == "2024-04-02"


def test_a_title_the_page_never_names_is_no_vendor() -> None:
    # a title may name a portal or a product: only a name the page states too is taken
    page = SCANNED_PRINT.replace("Invoice | Brightloop", "Invoice | Paydesk").replace("billing@brightloop.io", "")
    out = extract_fields([page], INVOICE)
    assert out.get("vendor_name") != "Paydesk"


def test_a_title_the_pages_web_address_names_is_the_vendor() -> None:
    page = (SCANNED_PRINT.replace("Invoice | Brightloop", "Invoice | Paydesk")
            .replace("billing@brightloop.io", "https://help.paydesk.co.uk/billing")
            .replace("Brightloop\n400 Market Street", "400 Market Street"))
    assert extract_fields([page], INVOICE)["vendor_name"] == "Paydesk"


def test_a_till_receipts_date_line_and_web_address_stay() -> None:
    receipt = """15/07/2017 12:07
KEDAI MAJU JAYA SDN BHD
NO.32, JALAN SR 1/9, 43300 SERI KEMBANGAN
MILO 1KG               1    18.90   18.90
TOTAL                               18.90
www.kedaimaju.my"""
    out = extract_fields([receipt], resolve("receipt"))
    assert out["date"] == "2017-07-15" and out["total"] == "18.90"


def test_firefoxs_layout_title_and_url_on_top_counter_and_date_below() -> None:
    page = """\
Invoice | Brightloop                                   https://app.brightloop.io/billing/9kq2xz

3/1/24

Cedar Analytics
Invoice ID #9kq2xz
Subscription total:              $60.00
Address
Brightloop
400 Market Street
Portland, OR 97204

1 of 1                                                              3/14/24, 10:56:01 AM"""
    out = extract_fields([page], INVOICE)
    assert (out["vendor_name"], out["invoice_date"], out["total"]) == ("Brightloop", "2024-03-01", "60.00")
