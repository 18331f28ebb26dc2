"""The invoice schema: number, dates, parties, totals, currency and line items."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from .dates import find_dates
from .invoice_number import header_row_number, invoice_id, title_number
from .labels import DUE_DATE_LABELS, INVOICE_DATE_LABELS, INVOICE_NUMBER_LABELS, ORDER_NUMBER_LABELS
from .layout import Doc
from .line_items import find_line_items
from .lookup import first_value, label_hits, leading_date
from .names import fold_name
from .numbers import about_equal, format_money
from .parties import (
    BUYER_RE,
    DELIVERY_RE,
    SELLER_RE,
    addressee,
    bullet_senders,
    envelope_recipient,
    labelled_address,
    labelled_party,
    letterhead_vendor,
    title_vendor,
    top_line_name,
    under_title_party,
)
from .tax_id import vendor_tax_id
from .text import fold
from .totals import Cand, amount_candidates, document_currency, pick_totals
from .vendor_address import letterhead_address

# "zahlbar ... bis 04.07.2013", "Bitte überweisen Sie bis zum ...", "payable by ...": the latest such date
_PAY_SENTENCE_RE = re.compile(r"\b(?:zahlbar|zahlung|uberweisen|bezahlen|payable|pay|payment|due|payer|regler|"
                              r"reglement)\b")
_BY_RE = re.compile(r"\b(?:bis(?:\s+zum)?|by|before|until|avant(?:\s+le)?|spatestens(?:\s+am)?|due)\s*$")


def extract_invoice(doc: Doc) -> dict[str, Any]:
    """Invoice fields; each group has its own rules (see the helpers below)."""
    out: dict[str, Any] = {}
    title = title_number(doc)
    number = first_value(doc, label_hits(doc, INVOICE_NUMBER_LABELS, doc.head_tail()), invoice_id, below=1)
    if number:
        out["invoice_number"] = number[0]
    elif title:
        out["invoice_number"] = title[0]
    elif column := header_row_number(doc):
        out["invoice_number"] = column
    elif order := first_value(doc, label_hits(doc, ORDER_NUMBER_LABELS, doc.head_tail()), invoice_id, below=1):
        out["invoice_number"] = order[0]  # a shop's invoice for an order: the order's number is its number
    out.update(_invoice_dates(doc, title[1] if title else None))
    cands = amount_candidates(doc)
    out.update(_invoice_parties(doc, reads_as_invoice="invoice_number" in out or bool(cands["total"])))
    out.update(_invoice_amounts(doc, cands))
    return out


def _invoice_dates(doc: Doc, title_date: dt.date | None) -> dict[str, str]:
    """Issue date: specific label > 'Nr. X vom DATE' > generic 'Date:' > first date. Due date: labels, then
    payment terms; a due date before the issue date is a misread and dropped."""
    out: dict[str, str] = {}
    hits = label_hits(doc, INVOICE_DATE_LABELS, doc.head_tail())
    specific = first_value(doc, [h for h in hits if h.weight >= 3], leading_date(doc), row_dates=True)
    generic = first_value(doc, [h for h in hits if h.weight < 3], leading_date(doc), below=1, row_dates=True)
    issued = (specific[0] if specific else title_date if title_date else generic[0] if generic
              else next((h.value for ln in doc.nonempty() for h in doc.dates(ln)), None))
    if issued:
        out["invoice_date"] = issued.isoformat()
    due = _due_date(doc)
    if due and (issued is None or due >= issued):
        out["due_date"] = due.isoformat()
    return out


def _due_date(doc: Doc) -> dt.date | None:
    found = first_value(doc, label_hits(doc, DUE_DATE_LABELS, doc.head_tail()), leading_date(doc), below=3,
                        row_dates=True)
    if found:
        return found[0]
    # payment-terms sentences: the latest "... bis/by DATE" is the net due date (earlier ones are discounts)
    best: dt.date | None = None
    for ln in doc.head_tail():
        f = fold(ln.flat)
        if not _PAY_SENTENCE_RE.search(f):
            continue
        for h in find_dates(ln.flat, doc.dmy):
            if _BY_RE.search(f[:h.start]):
                best = h.value if best is None or h.value > best else best
    return best


def _invoice_parties(doc: Doc, reads_as_invoice: bool) -> dict[str, str]:
    """Customer first (its block is then off limits for the vendor), then vendor and the vendor's tax ID.

    Customer: 'Bill to'-style block > name under an envelope sender line > delivery block > the same labels
    with other text beside them. Vendor: seller block > sender line > letterhead company > a saved web page's
    title > first line.
    """
    out: dict[str, str] = {}
    buyer = labelled_party(doc, BUYER_RE, prefer_company=True, strictness=(True,))
    senders = bullet_senders(doc)
    if buyer is None:
        buyer = (envelope_recipient(doc, senders) or
                 labelled_party(doc, DELIVERY_RE, prefer_company=True, strictness=(True,))
                 or labelled_party(doc, BUYER_RE, prefer_company=True, strictness=(False,))
                 or labelled_party(doc, DELIVERY_RE, prefer_company=True, strictness=(False,))
                 or addressee(doc))
    exclude = {(i, s.col) for i, s in buyer.lines} if buyer else set()
    buyer_name = buyer.name if buyer else None
    seller = labelled_party(doc, SELLER_RE, prefer_company=False)
    sender = next((n for _, n in senders if fold_name(n) != fold_name(buyer_name or "\0")), None)
    vendor = ((seller.name if seller else None) or sender or letterhead_vendor(doc, exclude, buyer_name)
              or title_vendor(doc, buyer_name))
    if vendor is None and reads_as_invoice:
        vendor = top_line_name(doc, exclude)
    if vendor:
        out["vendor_name"] = vendor
    if buyer is None and vendor and (buyer := under_title_party(doc, vendor)):
        buyer_name = buyer.name
        exclude |= {(i, s.col) for i, s in buyer.lines}  # its tax number is not the vendor's
    if seller and seller.address:
        out["vendor_address"] = seller.address
    elif vendor and (addr := (letterhead_address(doc, vendor, frozenset(exclude))
                              or labelled_address(doc, SELLER_RE))):
        out["vendor_address"] = addr
    if buyer and buyer_name and fold_name(buyer_name) != fold_name(vendor or ""):
        out["customer_name"] = buyer_name
        if buyer.address:
            out["customer_address"] = buyer.address
    tax_id = vendor_tax_id(doc, exclude)
    if tax_id:
        out["vendor_tax_id"] = tax_id
    return out


def _invoice_amounts(doc: Doc, cands: dict[str, list[Cand]]) -> dict[str, Any]:
    """Totals (consistent triple), currency (label > total's line > most frequent), and the item rows above
    the totals."""
    out: dict[str, Any] = {}
    picked = pick_totals(cands, doc.money_values())
    for name in ("subtotal", "tax", "total"):
        if name in picked:
            out[name] = format_money(picked[name].value)
    currency = document_currency(doc, picked["total"].line if "total" in picked else None)
    if currency:
        out["currency"] = currency
    out["line_items"] = find_line_items(doc, min((c.line for c in picked.values()), default=None))
    lines_sum = sum((Decimal(i["amount"]) for i in out["line_items"]), Decimal(0))
    if "subtotal" not in out and "total" in picked and out["line_items"]:
        tax = picked["tax"].value if "tax" in picked else Decimal(0)
        if about_equal(lines_sum + tax, picked["total"].value):  # the lines add up to the total less the tax
            out["subtotal"] = format_money(lines_sum)
    return out
