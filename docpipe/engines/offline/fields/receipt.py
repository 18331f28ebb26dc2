"""The receipt schema: merchant, date, tax, total, currency and the till rows."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from .amount_labels import classify_receipt_label
from .dates import compact_dates
from .layout import Doc
from .numbers import about_equal, find_amounts, format_money, format_qty, to_decimal
from .receipt_header import merchant_name_and_address
from .receipt_paid import paid_amount
from .text import blank_spans, fold
from .totals import amount_candidates, document_currency, pick_totals

_DATE_LABEL_RE = re.compile(r"\b(?:date|datum|fecha|data|dated|tarikh|le)\b\s*[:.]?")
_OTHER_DATE_RE = re.compile(r"\b(?:exp(?:iry|ires)?|valid|gultig|printed|reprint|best before|due|until|bis)\b")
_RECEIPT_STOP_RE = re.compile(r"\b(?:bar|cash|ruckgeld|change|gegeben|rendu|karte|card|visa|mastercard|girocard|ec\b|"
                              r"mwst|ust|tax|vat|tva|netto|brutto|steuer|summe|total|gesamt|zu zahlen|betrag|"
                              r"payment|zahlung|tse|signatur|transaktion|terminal|espece|especes|visa|cb|subtotal|"
                              r"zwischensumme|jumlah|tunai|baki|合計|小計|消費税等?|お預か?り|お釣り?|合计|小计)\b")


def extract_receipt(doc: Doc) -> dict[str, Any]:
    """Merchant = a company name in the first lines, else the first line that is no greeting or receipt title;
    totals as for invoices but with till labels (SUMME, TOTAL TTC, Zu zahlen; cash handed over ranks last)."""
    out: dict[str, Any] = {}
    lines = list(doc.nonempty())
    merchant_line, name, address = merchant_name_and_address(doc)
    if name:
        out["merchant_name"] = name
    if address:
        out["merchant_address"] = address
    dated = [(ln, h.value) for ln in lines for h in doc.dates(ln)]
    # the purchase date: one a date label names, else the first; not an expiry, validity or print date
    labelled = [d for ln, d in dated if _DATE_LABEL_RE.search(fold(ln.flat))]
    plain = [d for ln, d in dated if not _OTHER_DATE_RE.search(fold(ln.flat))]
    if labelled or plain or dated:
        out["date"] = (labelled or plain or [d for _, d in dated])[0].isoformat()
    else:
        # no printed date: one a till prints without separators ("27032018")
        compact = [h.value for ln in lines for h in compact_dates(ln.flat, doc.dmy)]
        if compact:
            out["date"] = compact[0].isoformat()
    picked = pick_totals(amount_candidates(doc, classify=classify_receipt_label), doc.money_values())
    paid = paid_amount(doc)
    if paid is not None:
        picked["total"] = paid
    for name in ("tax", "total"):
        if name in picked:
            out[name] = format_money(picked[name].value)
    total_line = picked["total"].line if "total" in picked else None
    currency = document_currency(doc, total_line)
    if currency:
        out["currency"] = currency
    start = merchant_line.idx + 1 if merchant_line is not None else 0
    out["items"] = _receipt_items(doc, start, total_line)
    return out


_QTY_X_RE = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d+)?)\s*(?:stk\.?|st\.?|pcs?\.?|kg)?\s*(?:x|\*|×|@)\s*"
                       r"(?:[€$£]\s?)?(\d+[.,]\d{2,3})(?!\d)", re.I)
_LEAD_QTY_RE = re.compile(r"^\s*(\d{1,3})\s*[x×]?\s+(?=[^\W\d_])")  # "2 Latte 12oz  @4.75  9.50"
_AT_PRICE_RE = re.compile(r"@\s*(?:[€$£]\s?)?(\d+[.,]\d{2})")
_TAIL_QTY_RE = re.compile(r"\s(?:[x×]\s?(\d{1,3})|(\d{1,2}))$")
_BARCODE_RE = re.compile(r"(?<![\w.,])\d{8,14}(?:\s+[A-Z](?![\w.,]))*(?![\w.,])")


def _receipt_items(doc: Doc, start: int, stop: int | None) -> list[dict[str, str]]:
    """Receipt rows up to the totals: 'Name ... 1,29 A', with a quantity part '3 x 0,85' on the same line,
    on its own line after the item (REWE) or before it, or with the price under the name (bakery tills)."""
    items: list[dict[str, str]] = []
    pending_name: str | None = None
    pending_qty: tuple[Decimal, Decimal] | None = None

    def dec(text: str) -> Decimal:
        return (to_decimal(text, doc.decimal) or (Decimal(0), 0))[0]

    def with_qty(item: dict[str, str], q: Decimal, u: Decimal) -> bool:
        if "quantity" not in item and about_equal(q * u, Decimal(item["amount"])):
            item.update(quantity=format_qty(q), unit_price=str(u))
            return True
        return False

    for ln in doc.nonempty(start, stop):
        flat = ln.flat
        if _RECEIPT_STOP_RE.search(fold(flat)) or doc.dates(ln):
            if items:
                break
            pending_name = None
            continue
        qx = _QTY_X_RE.search(flat) or None
        qty = (dec(qx.group(1)), dec(qx.group(2))) if qx else None
        rest = flat[:qx.start()] + " " + flat[qx.end():] if qx else flat
        money = [a for a in find_amounts(rest, doc.decimal, spaced=False) if a.is_money]
        desc = blank_spans(rest, ((a.start, a.end) for a in money))
        desc = _BARCODE_RE.sub(" ", desc)                     # "BREAD 007225003712 F": the item's code and flags
        desc = re.sub(r"\s+[A-D]\s*$", "", desc)           # VAT class letter
        desc = re.sub(r"\s+", " ", desc).strip(" *:-@")
        lead = _LEAD_QTY_RE.match(desc)
        at = _AT_PRICE_RE.search(flat)
        letters = re.findall(r"[^\W\d_]", desc)
        has_desc = len(letters) >= 3 or (len(letters) == 2 and all(c >= "\u2e80" for c in letters))  # "緑茶"
        if not money:
            if qty and items and with_qty(items[-1], *qty):
                continue                                     # quantity line after its item
            if qty:
                pending_qty = qty
            elif has_desc:
                pending_name = desc
            continue
        amount = money[-1].value
        if not has_desc and pending_name is None:
            continue
        item = {"description": desc if has_desc else pending_name or "", "amount": format_money(amount)}
        if lead and has_desc and at:
            item["description"] = desc[lead.end():].strip()
            with_qty(item, Decimal(lead.group(1)), dec(at.group(1)))
        elif (tail := _TAIL_QTY_RE.search(desc)) and has_desc and len(money) == 1 and not qty and (
                tail.group(1) or re.search(rf"\S\s{{2,}}{tail.group(2)}\s{{2,}}\S", ln.text)):
            # "Kaya Toast Set  x2  9.00", "Teh Tarik    2    5.00": a count after the name (a quantity column)
            n = Decimal(tail.group(1) or tail.group(2))
            unit = (amount / n).quantize(Decimal("0.01")) if n > 0 else None
            if unit is not None and unit * n == amount:
                item["description"] = desc[:tail.start()].strip()
                item.update(quantity=format_qty(n), unit_price=str(unit))
        elif lead and has_desc and len(money) == 1 and not qty and not re.search(r"\d", desc[lead.end():]):
            # "2 Fish Tacos   25.00": a count before the name, the unit price what the amount divides into
            n = Decimal(lead.group(1))
            unit = (amount / n).quantize(Decimal("0.01")) if 0 < n < 100 else None
            if unit is not None and unit * n == amount:
                item["description"] = desc[lead.end():].strip()
                item.update(quantity=format_qty(n), unit_price=str(unit))
        for cand in (qty, pending_qty):
            if cand and with_qty(item, *cand):
                break
        pending_name, pending_qty = None, None
        items.append(item)
    return items
