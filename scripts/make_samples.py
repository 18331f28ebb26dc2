#!/usr/bin/env python3
"""Generate docpipe's sample documents and their ground truth.

Everything produced here is FICTITIOUS: companies, people, addresses, tax ids,
bank details, phone numbers (555-01xx) and e-mail domains (*.example) are made up.

    python scripts/make_samples.py [--out samples]

Writes into the output folder:

* born-digital invoice PDFs with a real (embedded-font, Unicode) text layer, in
  English, German and French and several layouts (classic, two-column modern,
  DIN-5008 letter, minimal, a 2-page invoice whose totals are on page 2);
* till receipts (80 mm wide): one PDF, one clean PNG, one phone photo (JPEG
  whose pixels are stored rotated, with an EXIF Orientation tag);
* "scanned" images derived from some of the PDFs (rotation, blur, contrast,
  noise, specks): JPEG, PNG and a 2-page TIFF;
* ``truth.jsonl``: one ``{"file", "doc_type", "fields", "notes"}`` object per
  document, same layout as ``/work/shared/devset/*/truth.jsonl``.

Deterministic: fixed seeds, fixed PDF dates and ids, so two runs give identical
truth and identical files. All money is computed with ``Decimal``.

Only PyMuPDF, Pillow and numpy are used. Fonts: MuPDF's built-in Base-14
replacements (Nimbus Sans/Roman/Mono) are embedded as Unicode fonts and subset,
so "€", "œ", "„“" render and extract correctly (the plain Base-14 WinAnsi route
cannot encode "€" through PyMuPDF's insert_text).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import random
import sys
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pymupdf
from PIL import Image, ImageDraw, ImageFilter, ImageOps

SEED = 20250305
GENERATOR = "docpipe scripts/make_samples.py"
PDF_DATE = "D:20250305090000Z"

A4 = (595.28, 841.89)
LETTER = (612.0, 792.0)
MM = 72 / 25.4

# ---------------------------------------------------------------------------
# money, numbers, dates
# ---------------------------------------------------------------------------
CENT = Decimal("0.01")


def q2(x) -> Decimal:
    return Decimal(x).quantize(CENT, rounding=ROUND_HALF_UP)


def _group(d: Decimal, places: int, thousands: str, decimal_sep: str) -> str:
    s = f"{d:,.{places}f}"  # 1,234.56
    return s.replace(",", "\x00").replace(".", decimal_sep).replace("\x00", thousands)


def fmt_num(d: Decimal, loc: str, places: int = 2) -> str:
    if loc == "de":
        return _group(d, places, ".", ",")
    if loc == "fr":
        return _group(d, places, " ", ",")
    return _group(d, places, ",", ".")


def fmt_qty(q: Decimal, loc: str) -> str:
    if q == q.to_integral_value():
        return str(int(q))
    places = max(1, -q.normalize().as_tuple().exponent)
    return fmt_num(q, loc, places)


SYMBOL = {"USD": "$", "GBP": "£", "EUR": "€"}


def fmt_money(d: Decimal, cur: str, style: str) -> str:
    """style: en_sym ($1,234.56) | de_sym (1.234,56 €) | de_code (EUR 1.234,56)
    | fr_sym (1 234,56 €) | plain_en / plain_de / plain_fr (number only)."""
    if style == "en_sym":
        s = SYMBOL[cur] + fmt_num(abs(d), "en")
        return "-" + s if d < 0 else s
    if style == "de_sym":
        return fmt_num(d, "de") + " " + SYMBOL[cur]
    if style == "de_code":
        return cur + " " + fmt_num(d, "de")
    if style == "fr_sym":
        return fmt_num(d, "fr") + " " + SYMBOL[cur]
    if style.startswith("plain_"):
        return fmt_num(d, style[6:])
    raise ValueError(style)


MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July",
             "August", "September", "October", "November", "December"]
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet",
             "août", "septembre", "octobre", "novembre", "décembre"]


def fmt_date(d: date, style: str) -> str:
    if style == "us_long":  # March 5, 2025
        return f"{MONTHS_EN[d.month - 1]} {d.day}, {d.year}"
    if style == "us_short":  # Mar 5, 2025
        return f"{MONTHS_EN[d.month - 1][:3]} {d.day}, {d.year}"
    if style == "gb_slash":  # 05/03/2025
        return d.strftime("%d/%m/%Y")
    if style == "us_slash":  # 03/05/2025
        return d.strftime("%m/%d/%Y")
    if style == "ie_long":  # 28 February 2025
        return f"{d.day} {MONTHS_EN[d.month - 1]} {d.year}"
    if style == "de":  # 05.03.2025
        return d.strftime("%d.%m.%Y")
    if style == "fr_long":  # 20 février 2025
        return f"{d.day} {MONTHS_FR[d.month - 1]} {d.year}"
    raise ValueError(style)


# ---------------------------------------------------------------------------
# document model
# ---------------------------------------------------------------------------
@dataclass
class Item:
    description: str
    quantity: Decimal
    unit_price: Decimal
    unit: str = ""
    detail: str = ""  # optional grey second line (not part of the description)

    @property
    def amount(self) -> Decimal:
        return q2(self.quantity * self.unit_price)


def item(desc, qty, price, unit="", detail="") -> Item:
    return Item(desc, Decimal(str(qty)), Decimal(str(price)), unit, detail)


@dataclass
class Party:
    name: str
    address: list[str]
    tax_id: str = ""

    @property
    def address_str(self) -> str:
        return ", ".join(self.address)


@dataclass
class Invoice:
    file: str
    number: str
    issued: date
    due: date | None
    vendor: Party
    customer: Party
    currency: str
    tax_rate: Decimal
    items: list[Item]
    extra: dict = field(default_factory=dict)

    @property
    def subtotal(self) -> Decimal:
        return sum((i.amount for i in self.items), Decimal("0.00"))

    @property
    def tax(self) -> Decimal:
        return q2(self.subtotal * self.tax_rate / 100)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax

    def truth(self) -> dict:
        f = {
            "invoice_number": self.number,
            "invoice_date": self.issued.isoformat(),
        }
        if self.due:
            f["due_date"] = self.due.isoformat()
        f.update({
            "vendor_name": self.vendor.name,
            "vendor_address": self.vendor.address_str,
            "vendor_tax_id": self.vendor.tax_id,
            "customer_name": self.customer.name,
            "customer_address": self.customer.address_str,
            "currency": self.currency,
            "subtotal": float(self.subtotal),
            "tax": float(self.tax),
            "total": float(self.total),
            "line_items": [items_truth(i) for i in self.items],
        })
        return f


def items_truth(i: Item) -> dict:
    return {"description": i.description, "quantity": float(i.quantity),
            "unit_price": float(i.unit_price), "amount": float(i.amount)}


@dataclass
class Receipt:
    file: str
    merchant: str
    address: list[str]
    when: str  # as printed
    iso_date: date
    currency: str
    items: list[Item]
    tax_rate: Decimal
    tax_included: bool  # True: prices are gross (EU); False: tax added (US)
    extra: dict = field(default_factory=dict)

    @property
    def items_sum(self) -> Decimal:
        return sum((i.amount for i in self.items), Decimal("0.00"))

    @property
    def tax(self) -> Decimal:
        if self.tax_included:
            return q2(self.items_sum - self.items_sum / (1 + self.tax_rate / 100))
        return q2(self.items_sum * self.tax_rate / 100)

    @property
    def total(self) -> Decimal:
        return self.items_sum if self.tax_included else self.items_sum + self.tax

    def truth(self) -> dict:
        return {
            "merchant_name": self.merchant,
            "merchant_address": ", ".join(self.address),
            "date": self.iso_date.isoformat(),
            "currency": self.currency,
            "total": float(self.total),
            "tax": float(self.tax),
            "items": [items_truth(i) for i in self.items],
        }


# ---------------------------------------------------------------------------
# drawing helpers
# ---------------------------------------------------------------------------
FONT_SRC = {
    "sans": "helv", "sansb": "hebo", "sansi": "heit",
    "serif": "tiro", "serifb": "tibo", "serifi": "tiit",
    "mono": "cour", "monob": "cobo",
}
FONTS = {k: pymupdf.Font(v) for k, v in FONT_SRC.items()}

BLACK = (0.1, 0.1, 0.12)
GREY = (0.42, 0.44, 0.47)
LIGHT = (0.93, 0.94, 0.95)
WHITE = (1, 1, 1)


def hexcol(h: str) -> tuple:
    h = h.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))


class Canvas:
    """A PyMuPDF page with lazily embedded Unicode fonts and simple helpers."""

    def __init__(self, doc: pymupdf.Document, size=A4):
        self.doc = doc
        self._page = doc.new_page(width=size[0], height=size[1])
        self.pno = self._page.number
        self.w, self.h = size
        self._fonts: set[str] = set()

    @property
    def page(self) -> pymupdf.Page:
        # PyMuPDF orphans Page objects when pages are added; reload if needed
        if self._page.parent is None:
            self._page = self.doc[self.pno]
        return self._page

    def _font(self, key: str) -> str:
        if key not in self._fonts:
            self.page.insert_font(fontname=key, fontbuffer=FONTS[key].buffer)
            self._fonts.add(key)
        return key

    @staticmethod
    def width(s: str, font="sans", size=10.0) -> float:
        return FONTS[font].text_length(s, fontsize=size)

    def text(self, x, y, s, font="sans", size=10.0, color=BLACK, align="left"):
        if not s:
            return 0.0
        w = self.width(s, font, size)
        if align == "right":
            x -= w
        elif align == "center":
            x -= w / 2
        self.page.insert_text((x, y), s, fontname=self._font(font), fontsize=size, color=color)
        return w

    def lines(self, x, y, rows, font="sans", size=9.5, leading=13.0, color=BLACK, align="left"):
        for r in rows:
            self.text(x, y, r, font, size, color, align)
            y += leading
        return y

    @classmethod
    def wrap(cls, s: str, width: float, font="sans", size=10.0) -> list[str]:
        out, cur = [], ""
        for word in s.split(" "):
            trial = (cur + " " + word).strip()
            if cur and cls.width(trial, font, size) > width:
                out.append(cur)
                cur = word
            else:
                cur = trial
        if cur:
            out.append(cur)
        return out

    def paragraph(self, x, y, s, width, font="sans", size=9.5, leading=13.0, color=BLACK):
        return self.lines(x, y, self.wrap(s, width, font, size), font, size, leading, color)

    def rect(self, x0, y0, x1, y1, fill=None, color=None, width=0.6, radius=None):
        self.page.draw_rect(pymupdf.Rect(x0, y0, x1, y1), color=color, fill=fill,
                            width=width if color else 0, radius=radius)

    def hline(self, x0, x1, y, color=GREY, width=0.6):
        self.page.draw_line((x0, y), (x1, y), color=color, width=width)

    def vline(self, x, y0, y1, color=GREY, width=0.6):
        self.page.draw_line((x, y0), (x, y1), color=color, width=width)


@dataclass
class Col:
    header: str
    x0: float
    x1: float
    align: str = "left"  # left | right | center


def draw_table(cv: Canvas, y: float, cols: list[Col], rows: list[list[str]], *,
               font="sans", bold="sansb", size=9.0, head_size=8.0,
               head_fill=None, head_color=BLACK, head_rule=None,
               zebra=None, grid=None, rule=LIGHT, pad=6.0, leading=11.5,
               details: list[str] | None = None, wrap_col=1,
               max_y: float | None = None, new_page=None):
    """Draw a table; returns (canvas, y_after). Column `wrap_col` wraps.
    If max_y/new_page are given, rows overflowing max_y continue on
    new_page() -> (canvas, y) with the header repeated."""
    x_left, x_right = cols[0].x0, cols[-1].x1
    head_h = head_size + 2 * pad + 2

    def header(cv, y):
        if head_fill:
            cv.rect(x_left, y, x_right, y + head_h, fill=head_fill)
        if grid:
            cv.rect(x_left, y, x_right, y + head_h, color=grid, width=0.7)
        for c in cols:
            tx = {"left": c.x0 + pad, "right": c.x1 - pad, "center": (c.x0 + c.x1) / 2}[c.align]
            cv.text(tx, y + pad + head_size, c.header, bold, head_size, head_color, c.align)
        if head_rule:
            cv.hline(x_left, x_right, y + head_h, head_rule, 0.9)
        return y + head_h

    y = header(cv, y)
    for r_i, row in enumerate(rows):
        wcol = cols[wrap_col]
        wrapped = Canvas.wrap(row[wrap_col], wcol.x1 - wcol.x0 - 2 * pad, font, size)
        det = details[r_i] if details else ""
        det_lines = Canvas.wrap(det, wcol.x1 - wcol.x0 - 2 * pad, font, size - 1.5) if det else []
        h = 2 * pad + leading * (len(wrapped) - 1) + size + (len(det_lines) * (leading - 1))
        if max_y is not None and y + h > max_y:
            cv, y = new_page()
            y = header(cv, y)
        if zebra and r_i % 2 == 1:
            cv.rect(x_left, y, x_right, y + h, fill=zebra)
        base = y + pad + size * 0.85
        for c_i, c in enumerate(cols):
            tx = {"left": c.x0 + pad, "right": c.x1 - pad, "center": (c.x0 + c.x1) / 2}[c.align]
            if c_i == wrap_col:
                yy = cv.lines(tx, base, wrapped, font, size, leading, align=c.align)
                if det_lines:
                    cv.lines(tx, yy - 1, det_lines, font, size - 1.5, leading - 1, GREY, c.align)
            else:
                cv.text(tx, base, row[c_i], font, size, BLACK, c.align)
        if grid:
            cv.rect(x_left, y, x_right, y + h, color=grid, width=0.5)
            for c in cols[1:]:
                cv.vline(c.x0, y - (head_h if r_i == 0 else 0), y + h, grid, 0.5)
        elif rule:
            cv.hline(x_left, x_right, y + h, rule, 0.6)
        y += h
    return cv, y


def draw_totals(cv: Canvas, y, rows, label_x, value_x, *, font="sans", bold="sansb",
                size=9.5, step=16.0, label_align="left", color=BLACK):
    """rows: (label, value, is_bold). Returns y after."""
    for label, value, is_bold in rows:
        f = bold if is_bold else font
        cv.text(label_x, y, label, f, size, color, label_align)
        cv.text(value_x, y, value, f, size, color, "right")
        y += step
    return y


def new_doc(title: str, author: str) -> pymupdf.Document:
    doc = pymupdf.open()
    doc.set_metadata({
        "title": title, "author": author,
        "subject": "Fictitious sample document for docpipe",
        "keywords": "sample, fictitious", "creator": GENERATOR,
        "producer": GENERATOR, "creationDate": PDF_DATE, "modDate": PDF_DATE,
        "trapped": "", "format": "", "encryption": None,
    })
    return doc


def save_pdf(doc: pymupdf.Document, path: pathlib.Path, *, subset: bool = True) -> None:
    """Save reproducibly: fixed dates (new_doc) and a file /ID derived from the
    file name instead of MuPDF's random one."""
    if subset:
        doc.subset_fonts()
    fid = hashlib.md5(path.name.encode()).hexdigest().upper()
    doc.xref_set_key(-1, "ID", f"[<{fid}> <{fid}>]")
    doc.save(path, garbage=4, deflate=True, clean=True, no_new_id=True)
    doc.close()


# ---------------------------------------------------------------------------
# invoice layouts
# ---------------------------------------------------------------------------
def layout_en_classic(inv: Invoice, path: pathlib.Path) -> None:
    """US letter, logo block, right meta block, navy header table, totals box."""
    navy = hexcol("1f3a5f")
    doc = new_doc(f"Invoice {inv.number}", inv.vendor.name)
    cv = Canvas(doc, LETTER)
    L, R = 54, LETTER[0] - 54
    ms = lambda d: fmt_money(d, inv.currency, "en_sym")

    # logo + company
    cv.rect(L, 46, L + 40, 86, fill=navy, radius=0.12)
    cv.text(L + 20, 71, "AIS", "sansb", 13, WHITE, "center")
    cv.text(L + 52, 64, inv.vendor.name, "sansb", 15, navy)
    cv.text(L + 52, 78, inv.extra["tagline"], "sans", 8.5, GREY)
    cv.text(R, 74, "INVOICE", "sansb", 28, navy, "right")

    y = cv.lines(L, 112, inv.vendor.address, size=9, leading=12.5)
    y = cv.lines(L, y, [inv.extra["contact"], f"Tax ID: {inv.vendor.tax_id}"],
                 size=9, leading=12.5, color=GREY)

    meta = [("Invoice No.", inv.number), ("Invoice Date", fmt_date(inv.issued, "us_long")),
            ("Due Date", fmt_date(inv.due, "us_long")), ("Terms", inv.extra["terms"]),
            ("PO Number", inv.extra["po"])]
    my = 112
    for k, v in meta:
        cv.text(R - 118, my, k, "sansb", 9, navy, "right")
        cv.text(R, my, v, "sans", 9, BLACK, "right")
        my += 14
    y = max(y, my) + 8
    cv.hline(L, R, y, navy, 1.2)

    y += 24
    cv.text(L, y, "BILL TO", "sansb", 8, navy)
    cv.text(L + 260, y, "SHIP TO", "sansb", 8, navy)
    cv.lines(L, y + 16, [inv.customer.name] , "sansb", 10)
    cv.lines(L, y + 30, inv.customer.address, size=9.5, leading=13)
    cv.lines(L + 260, y + 16, [inv.customer.name], "sansb", 10)
    cv.lines(L + 260, y + 30, inv.extra["ship_to"], size=9.5, leading=13)
    y += 30 + 13 * max(len(inv.customer.address), len(inv.extra["ship_to"])) + 18

    cols = [Col("DESCRIPTION", L, 330), Col("QTY", 330, 385, "right"),
            Col("UNIT PRICE", 385, 470, "right"), Col("AMOUNT", 470, R, "right")]
    rows = [[fmt_qty(i.quantity, "en"), ms(i.unit_price), ms(i.amount)] for i in inv.items]
    rows = [[i.description] + r for i, r in zip(inv.items, rows)]
    cv, y = draw_table(cv, y, cols, rows, size=9.5, head_size=8, head_fill=navy,
                       head_color=WHITE, zebra=hexcol("f4f6f9"), rule=None, wrap_col=0, pad=7)
    cv.hline(L, R, y, navy, 0.8)

    y += 22
    tx = 385
    y = draw_totals(cv, y, [("Subtotal", ms(inv.subtotal), False),
                            (f"Sales Tax ({fmt_qty(inv.tax_rate, 'en')}%)", ms(inv.tax), False),
                            ("Total", ms(inv.total), True)], tx + 7, R - 7, step=17)
    cv.rect(tx, y - 6, R, y + 20, fill=navy)
    cv.text(tx + 7, y + 11, f"Amount Due ({inv.currency})", "sansb", 10, WHITE)
    cv.text(R - 7, y + 11, ms(inv.total), "sansb", 11, WHITE, "right")

    py = y - 40
    cv.text(L, py, "PAYMENT INSTRUCTIONS", "sansb", 8, navy)
    cv.lines(L, py + 15, inv.extra["payment"], size=8.5, leading=12, color=GREY)

    cv.hline(L, R, LETTER[1] - 62, LIGHT, 0.8)
    cv.text(LETTER[0] / 2, LETTER[1] - 46, "Thank you for your business!", "sansb", 9.5, navy, "center")
    cv.text(LETTER[0] / 2, LETTER[1] - 33, inv.extra["footer"], "sans", 8, GREY, "center")
    save_pdf(doc, path)


def layout_en_modern(inv: Invoice, path: pathlib.Path) -> None:
    """A4, dark sidebar with vendor/payment details, content column on the right."""
    teal = hexcol("15474f")
    mint = hexcol("9fd8cb")
    doc = new_doc(f"Invoice {inv.number}", inv.vendor.name)
    cv = Canvas(doc, A4)
    W, H = A4
    S = 188  # sidebar width
    ms = lambda d: fmt_money(d, inv.currency, "en_sym")

    cv.rect(0, 0, S, H, fill=teal)
    sx = 26
    cv.rect(sx, 48, sx + 30, 78, fill=mint, radius=0.5)
    cv.text(sx + 15, 68, "N", "sansb", 15, teal, "center")
    y = cv.lines(sx, 104, Canvas.wrap(inv.vendor.name, S - 2 * sx, "sansb", 14), "sansb", 14, 17, WHITE)
    cv.text(sx, y - 2, inv.extra["tagline"], "sans", 8, mint)

    def side(y, title, rows):
        cv.text(sx, y, title, "sansb", 7.5, mint)
        return cv.lines(sx, y + 14, rows, "sans", 8.5, 12, WHITE) + 14

    y = side(y + 34, "FROM", inv.vendor.address)
    y = side(y, "CONTACT", inv.extra["contact"])
    y = side(y, "VAT REG. NO.", [inv.vendor.tax_id])
    y = side(y, "COMPANY NO.", [inv.extra["company_no"]])
    side(H - 150, "PAY BY BANK TRANSFER", inv.extra["bank"])

    L, R = S + 36, W - 40
    cv.text(L, 84, "Invoice", "sansb", 32, teal)
    cv.text(L, 104, f"No. {inv.number}", "sans", 11, GREY)

    y = 146
    blocks = [("Issue date", fmt_date(inv.issued, "gb_slash")),
              ("Due date", fmt_date(inv.due, "gb_slash")),
              ("Amount due", ms(inv.total))]
    bw = (R - L) / 3
    for i, (k, v) in enumerate(blocks):
        cv.text(L + i * bw, y, k.upper(), "sansb", 7.5, GREY)
        cv.text(L + i * bw, y + 17, v, "sansb" if i == 2 else "sans", 12, BLACK)
    y += 46
    cv.hline(L, R, y, LIGHT, 1)
    y += 24
    cv.text(L, y, "BILLED TO", "sansb", 7.5, GREY)
    cv.text(L, y + 17, inv.customer.name, "sansb", 11)
    y = cv.lines(L, y + 32, inv.customer.address, size=9.5, leading=13)
    cv.text(L + bw * 2, y - 13 * len(inv.customer.address) - 15, "PROJECT", "sansb", 7.5, GREY)
    cv.lines(L + bw * 2, y - 13 * len(inv.customer.address) + 2,
             Canvas.wrap(inv.extra["project"], bw, "sans", 9.5), size=9.5, leading=13)
    y += 26

    cols = [Col("DESCRIPTION", L, L + 160), Col("QTY", L + 160, L + 200, "right"),
            Col("RATE", L + 200, L + 270, "right"), Col("AMOUNT", L + 270, R, "right")]
    rows = [[i.description, fmt_qty(i.quantity, "en"), ms(i.unit_price), ms(i.amount)] for i in inv.items]
    cv, y = draw_table(cv, y, cols, rows, size=9.5, head_size=7.5, head_color=GREY,
                       head_rule=teal, rule=LIGHT, wrap_col=0, pad=8, leading=12.5)
    # first column flush-left with the rest of the content
    y += 24
    y = draw_totals(cv, y, [("Subtotal", ms(inv.subtotal), False),
                            (f"VAT {fmt_qty(inv.tax_rate, 'en')}%", ms(inv.tax), False)],
                    L + 170, R - 8, step=18)
    cv.hline(L + 162, R, y - 8, teal, 1)
    cv.text(L + 170, y + 10, "Total due", "sansb", 12, teal)
    cv.text(R - 8, y + 10, ms(inv.total), "sansb", 12, teal, "right")

    cv.text(L, H - 96, "NOTES", "sansb", 7.5, GREY)
    cv.paragraph(L, H - 81, inv.extra["notes"], R - L, size=8.5, leading=12, color=GREY)
    save_pdf(doc, path)


def layout_de_din(inv: Invoice, path: pathlib.Path) -> None:
    """German business letter after DIN 5008 (form B): sender line, address
    window, information block, subject, table, footer with bank/tax data."""
    red = hexcol("a4262c")
    doc = new_doc(f"Rechnung {inv.number}", inv.vendor.name)
    cv = Canvas(doc, A4)
    W, H = A4
    L, R = 25 * MM, W - 20 * MM
    ms = lambda d: fmt_money(d, inv.currency, "de_sym")

    # letterhead (top right) and fold/punch marks
    cv.rect(R - 30, 34, R, 64, fill=red)
    cv.text(R - 15, 55, "MS", "sansb", 12, WHITE, "center")
    cv.text(R - 40, 48, inv.vendor.name, "sansb", 14, red, "right")
    cv.text(R - 40, 61, inv.extra["tagline"], "sans", 8.5, GREY, "right")
    for y_mm in (105, 210):
        cv.hline(4 * MM, 9 * MM, y_mm * MM, GREY, 0.5)
    cv.hline(4 * MM, 11 * MM, H / 2, GREY, 0.5)

    # sender line + address window (45 mm from top)
    sender = " · ".join([inv.vendor.name] + inv.vendor.address[:2])
    cv.text(L, 45 * MM + 9, sender, "sans", 6.8, GREY)
    cv.hline(L, L + Canvas.width(sender, "sans", 6.8), 45 * MM + 11, GREY, 0.4)
    cv.lines(L, 45 * MM + 30, [inv.customer.name] + inv.customer.address, size=10.5, leading=14)

    # information block
    ix, vx = 125 * MM, R
    info = [("Kundennummer", inv.extra["customer_no"]), ("Rechnungsnummer", inv.number),
            ("Rechnungsdatum", fmt_date(inv.issued, "de")),
            ("Leistungsdatum", inv.extra["service_date"]),
            ("Fällig am", fmt_date(inv.due, "de"))]
    y = 50 * MM
    cv.text(ix, y, "Ihr Ansprechpartner", "sansb", 8.5)
    y = cv.lines(ix, y + 12, inv.extra["contact"], size=8.5, leading=11.5, color=GREY) + 8
    for k, v in info:
        cv.text(ix, y, k, "sans", 8.5, GREY)
        cv.text(vx, y, v, "sans", 8.5, BLACK, "right")
        y += 12.5

    y = 103 * MM
    cv.text(L, y, f"Rechnung Nr. {inv.number}", "sansb", 13)
    y += 22
    y = cv.lines(L, y, ["Sehr geehrte Damen und Herren,"], size=10, leading=14) + 2
    y = cv.paragraph(L, y, inv.extra["intro"], R - L, size=10, leading=14) + 8

    cols = [Col("Pos.", L, L + 30), Col("Bezeichnung", L + 30, L + 232),
            Col("Menge", L + 232, L + 285, "right"), Col("Einheit", L + 285, L + 330),
            Col("Einzelpreis", L + 330, L + 400, "right"), Col("Gesamtpreis", L + 400, R, "right")]
    rows = [[str(n), i.description, fmt_qty(i.quantity, "de"), i.unit, ms(i.unit_price), ms(i.amount)]
            for n, i in enumerate(inv.items, 1)]
    cv, y = draw_table(cv, y, cols, rows, size=9.5, head_size=8.5, head_fill=LIGHT,
                       rule=hexcol("d5d8dc"), wrap_col=1, pad=6, leading=12)
    y += 20
    lx = L + 285
    y = draw_totals(cv, y, [("Zwischensumme (netto)", ms(inv.subtotal), False),
                            (f"zzgl. MwSt. {fmt_qty(inv.tax_rate, 'de')} %", ms(inv.tax), False)],
                    lx, R - 6, size=10)
    cv.hline(lx, R, y - 9, BLACK, 0.8)
    cv.text(lx, y + 6, "Gesamtbetrag", "sansb", 11)
    cv.text(R - 6, y + 6, ms(inv.total), "sansb", 11, BLACK, "right")
    cv.hline(lx, R, y + 12, BLACK, 0.5)
    cv.hline(lx, R, y + 14, BLACK, 0.5)
    y += 44
    y = cv.paragraph(L, y, inv.extra["closing"], R - L, size=10, leading=14) + 10
    cv.lines(L, y, ["Mit freundlichen Grüßen", inv.vendor.name], size=10, leading=14)

    # footer: three columns
    fy = H - 68
    cv.hline(L, R, fy - 12, hexcol("d5d8dc"), 0.6)
    cw = (R - L) / 3
    for n, col in enumerate(inv.extra["footer"]):
        cv.lines(L + n * cw, fy, col, size=7, leading=9.5, color=GREY)
    save_pdf(doc, path)


def layout_de_minimal(inv: Invoice, path: pathlib.Path) -> None:
    """Freelancer invoice: lots of white space, hairlines, 'EUR 1.234,56'."""
    accent = hexcol("2f6f4f")
    doc = new_doc(f"Rechnung {inv.number}", inv.vendor.name)
    cv = Canvas(doc, A4)
    W, H = A4
    L, R = 64, W - 64
    ms = lambda d: fmt_money(d, inv.currency, "de_code")

    cv.text(L, 92, inv.vendor.name, "sans", 20, BLACK)
    cv.text(L, 110, inv.extra["tagline"], "sans", 9.5, accent)
    cv.lines(R, 80, inv.vendor.address + inv.extra["contact"], size=8.5, leading=11.5,
             color=GREY, align="right")

    y = 176
    cv.text(L, y, "An", "sans", 8, GREY)
    cv.lines(L, y + 15, [inv.customer.name] + inv.customer.address, size=10, leading=14)
    meta = [("Rechnung Nr.", inv.number), ("Datum", fmt_date(inv.issued, "de")),
            ("Leistungszeitraum", inv.extra["period"]), ("Fällig am", fmt_date(inv.due, "de"))]
    my = y + 15
    for k, v in meta:
        cv.text(R - 105, my, k, "sans", 9, GREY, "right")
        cv.text(R, my, v, "sans", 9, BLACK, "right")
        my += 14

    y = 300
    cv.text(L, y, "Rechnung", "sans", 26, BLACK)
    y += 34
    cols = [Col("Leistung", L - 6, L + 260), Col("Anzahl", L + 260, L + 310, "right"),
            Col("Preis", L + 310, L + 390, "right"), Col("Betrag", L + 390, R + 6, "right")]
    rows = [[i.description, fmt_qty(i.quantity, "de"), fmt_num(i.unit_price, "de"), ms(i.amount)]
            for i in inv.items]
    cv, y = draw_table(cv, y, cols, rows, size=9.5, head_size=8, head_color=GREY, bold="sans",
                       head_rule=BLACK, rule=hexcol("e2e4e6"), wrap_col=0, pad=9, leading=12.5)
    y += 24
    lx = L + 270
    y = draw_totals(cv, y, [("Zwischensumme", ms(inv.subtotal), False),
                            (f"MwSt. {fmt_qty(inv.tax_rate, 'de')} %", ms(inv.tax), False)],
                    lx, R, size=9.5, step=17)
    cv.hline(lx, R, y - 7, BLACK, 0.7)
    cv.text(lx, y + 10, "Gesamtbetrag", "sansb", 11, accent)
    cv.text(R, y + 10, ms(inv.total), "sansb", 11, accent, "right")

    y += 60
    y = cv.paragraph(L, y, inv.extra["closing"], R - L, size=9.5, leading=13.5) + 12
    cv.text(L, y, "Vielen Dank für die Zusammenarbeit!", "sans", 9.5, accent)

    cv.hline(L, R, H - 76, hexcol("e2e4e6"), 0.6)
    cv.text(L, H - 60, inv.extra["bank"], "sans", 7.5, GREY)
    cv.text(L, H - 49, f"USt-IdNr. {inv.vendor.tax_id} · {inv.extra['steuernr']}", "sans", 7.5, GREY)
    save_pdf(doc, path)


def layout_fr_classic(inv: Invoice, path: pathlib.Path) -> None:
    """Serif, bordered grids, client block on the right, legal mentions footer."""
    blue = hexcol("23395d")
    doc = new_doc(f"Facture {inv.number}", inv.vendor.name)
    cv = Canvas(doc, A4)
    W, H = A4
    L, R = 50, W - 50
    ms = lambda d: fmt_money(d, inv.currency, "fr_sym")

    cv.text(L, 72, inv.vendor.name, "serifb", 20, blue)
    cv.text(L, 88, inv.extra["tagline"], "serifi", 10, GREY)
    cv.lines(L, 110, inv.vendor.address + inv.extra["contact"], "serif", 10, 13)

    bx = 320
    cv.rect(bx, 128, R, 218, color=blue, width=0.8)
    cv.text(bx + 12, 146, "Client", "serifi", 9.5, GREY)
    cv.lines(bx + 12, 163, [inv.customer.name], "serifb", 11, 14)
    cv.lines(bx + 12, 178, inv.customer.address, "serif", 10.5, 14)

    cv.text(W / 2, 262, "FACTURE", "serifb", 22, blue, "center")
    y = 284
    mcols = [Col("N° de facture", L, L + 124, "center"), Col("Date", L + 124, L + 248, "center"),
             Col("Échéance", L + 248, L + 372, "center"), Col("Code client", L + 372, R, "center")]
    cv, y = draw_table(cv, y, mcols, [[inv.number, fmt_date(inv.issued, "gb_slash"),
                                       fmt_date(inv.due, "gb_slash"), inv.extra["client_code"]]],
                       font="serif", bold="serifb", size=10.5, head_size=9.5, head_fill=LIGHT,
                       grid=blue, wrap_col=0, pad=6)
    y += 26
    cols = [Col("Désignation", L, L + 265), Col("Qté", L + 265, L + 310, "center"),
            Col("P.U. HT", L + 310, L + 395, "right"), Col("Montant HT", L + 395, R, "right")]
    rows = [[i.description, fmt_qty(i.quantity, "fr"), ms(i.unit_price), ms(i.amount)] for i in inv.items]
    cv, y = draw_table(cv, y, cols, rows, font="serif", bold="serifb", size=10.5, head_size=10,
                       head_fill=LIGHT, grid=blue, wrap_col=0, pad=7, leading=13)
    y += 18
    tx0 = L + 310
    trows = [("Total HT", ms(inv.subtotal), False),
             (f"TVA {fmt_qty(inv.tax_rate, 'fr')} %", ms(inv.tax), False),
             ("Total TTC", ms(inv.total), True)]
    for k, v, b in trows:
        h = 22
        cv.rect(tx0, y, R, y + h, color=blue, width=0.7, fill=LIGHT if b else None)
        cv.vline(L + 395, y, y + h, blue, 0.7)
        f = "serifb" if b else "serif"
        cv.text(tx0 + 7, y + 15, k, f, 10.5)
        cv.text(R - 7, y + 15, v, f, 10.5, BLACK, "right")
        y += h
    py = y - 3 * 22
    cv.text(L, py + 12, "Conditions de paiement", "serifb", 10)
    cv.lines(L, py + 27, inv.extra["payment"], "serif", 9.5, 12.5)

    y += 40
    cv.paragraph(L, y, inv.extra["penalties"], R - L, "serifi", 8.5, 11, GREY)
    cv.hline(L, R, H - 62, blue, 0.6)
    fy = H - 48
    for line in Canvas.wrap(inv.extra["legal"], R - L, "serif", 7.5):
        cv.text(W / 2, fy, line, "serif", 7.5, GREY, "center")
        fy += 10
    save_pdf(doc, path)


def layout_fr_modern(inv: Invoice, path: pathlib.Path) -> None:
    """Colour band header, two address cards, light table, long French dates."""
    coral = hexcol("c8553d")
    sand = hexcol("f6efe9")
    doc = new_doc(f"Facture {inv.number}", inv.vendor.name)
    cv = Canvas(doc, A4)
    W, H = A4
    L, R = 48, W - 48
    ms = lambda d: fmt_money(d, inv.currency, "fr_sym")

    cv.rect(0, 0, W, 118, fill=coral)
    cv.text(L, 62, inv.vendor.name, "sansb", 24, WHITE)
    cv.text(L, 82, inv.extra["tagline"], "sans", 10, WHITE)
    cv.text(R, 60, "FACTURE", "sansb", 26, WHITE, "right")
    cv.text(R, 80, f"N° {inv.number}", "sans", 11, WHITE, "right")

    y = 150
    cw = (R - L - 20) / 2
    for n, (title, party, extra) in enumerate([
            ("ÉMETTEUR", inv.vendor, inv.extra["contact"] + [f"N° TVA : {inv.vendor.tax_id}"]),
            ("CLIENT", inv.customer, [f"N° TVA : {inv.customer.tax_id}"])]):
        x = L + n * (cw + 20)
        cv.rect(x, y, x + cw, y + 128, fill=sand, radius=0.06)
        cv.text(x + 14, y + 22, title, "sansb", 8, coral)
        cv.text(x + 14, y + 40, party.name, "sansb", 11)
        yy = cv.lines(x + 14, y + 56, party.address, size=9.5, leading=13)
        cv.lines(x + 14, yy, extra, size=8.5, leading=12, color=GREY)

    y += 160
    meta = [("Date de facture", fmt_date(inv.issued, "fr_long")),
            ("Échéance", fmt_date(inv.due, "fr_long")),
            ("Référence", inv.extra["reference"])]
    mw = (R - L) / 3
    for n, (k, v) in enumerate(meta):
        cv.text(L + n * mw, y, k, "sans", 8.5, GREY)
        cv.text(L + n * mw, y + 16, v, "sansb", 11)
    y += 40

    cols = [Col("Description", L, L + 255), Col("Quantité", L + 255, L + 320, "right"),
            Col("Prix unitaire HT", L + 320, L + 410, "right"), Col("Total HT", L + 410, R, "right")]
    rows = [[i.description, fmt_qty(i.quantity, "fr"), ms(i.unit_price), ms(i.amount)] for i in inv.items]
    cv, y = draw_table(cv, y, cols, rows, size=9.5, head_size=8.5, head_fill=coral,
                       head_color=WHITE, rule=hexcol("eadfd6"), wrap_col=0, pad=8, leading=12.5)
    y += 24
    lx = L + 300
    y = draw_totals(cv, y, [("Total HT", ms(inv.subtotal), False),
                            (f"TVA {fmt_qty(inv.tax_rate, 'fr')} %", ms(inv.tax), False)],
                    lx + 10, R - 10, size=10, step=18)
    cv.rect(lx, y - 8, R, y + 20, fill=coral, radius=0.15)
    cv.text(lx + 10, y + 11, "Total TTC", "sansb", 12, WHITE)
    cv.text(R - 10, y + 11, ms(inv.total), "sansb", 12, WHITE, "right")

    y += 56
    cv.text(L, y, "Modalités de paiement", "sansb", 9.5, coral)
    cv.lines(L, y + 15, inv.extra["payment"], size=9, leading=12.5)
    cv.text(W / 2, H - 40, inv.extra["legal"], "sans", 7.5, GREY, "center")
    save_pdf(doc, path)


def layout_en_multipage(inv: Invoice, path: pathlib.Path) -> None:
    """A4, two pages; the item table runs over and the totals are on page 2."""
    purple = hexcol("3b2a6b")
    lav = hexcol("f1eef8")
    doc = new_doc(f"VAT Invoice {inv.number}", inv.vendor.name)
    W, H = A4
    L, R = 46, W - 46
    ms = lambda d: fmt_money(d, inv.currency, "en_sym")
    pages: list[Canvas] = []

    def footer_all():
        n = len(pages)
        for i, c in enumerate(pages, 1):
            c.hline(L, R, H - 50, LIGHT, 0.8)
            c.text(L, H - 36, inv.extra["footer"], "sans", 7, GREY)
            c.text(R, H - 36, f"Page {i} of {n}", "sans", 7.5, GREY, "right")

    cv = Canvas(doc, A4)
    pages.append(cv)
    cv.rect(0, 0, W, 8, fill=purple)
    cv.text(L, 62, inv.vendor.name, "sansb", 18, purple)
    cv.text(L, 78, inv.extra["tagline"], "sans", 9, GREY)
    cv.text(R, 62, "VAT INVOICE", "sansb", 20, purple, "right")
    cv.text(R, 78, inv.number, "sans", 10, GREY, "right")
    y = cv.lines(L, 104, inv.vendor.address, size=9, leading=12)
    cv.lines(L, y, [f"VAT No. {inv.vendor.tax_id}", inv.extra["contact"]], size=9, leading=12, color=GREY)

    y = 180
    cv.rect(L, y, R, y + 112, fill=lav)
    cv.text(L + 14, y + 20, "INVOICE TO", "sansb", 7.5, purple)
    cv.lines(L + 14, y + 37, [inv.customer.name], "sansb", 10.5)
    cv.lines(L + 14, y + 52, inv.customer.address + [f"VAT No. {inv.customer.tax_id}"], size=9, leading=12)
    meta = [("Invoice number", inv.number), ("Invoice date", fmt_date(inv.issued, "ie_long")),
            ("Tax point", fmt_date(inv.issued, "ie_long")), ("Due date", fmt_date(inv.due, "ie_long")),
            ("Account ID", inv.extra["account"]), ("Billing period", inv.extra["period"])]
    my = y + 20
    for k, v in meta:
        cv.text(L + 300, my, k, "sans", 8.5, GREY)
        cv.text(R - 14, my, v, "sans", 8.5, BLACK, "right")
        my += 14.5
    y += 140
    y = cv.paragraph(L, y, inv.extra["intro"], R - L, size=9.5, leading=13) + 12

    def next_page():
        prev = pages[-1]
        prev.text(R, H - 78, "Continued on next page", "sansi", 8.5, GREY, "right")
        c = Canvas(doc, A4)
        pages.append(c)
        c.rect(0, 0, W, 8, fill=purple)
        c.text(L, 52, inv.vendor.name, "sansb", 12, purple)
        c.text(R, 52, f"VAT Invoice {inv.number} (continued)", "sans", 9, GREY, "right")
        c.hline(L, R, 62, LIGHT, 0.8)
        return c, 84

    cols = [Col("Service", L, L + 250), Col("Qty", L + 250, L + 310, "right"),
            Col("Unit price", L + 310, L + 400, "right"), Col("Amount", L + 400, R, "right")]
    rows = [[i.description, fmt_qty(i.quantity, "en"), ms(i.unit_price), ms(i.amount)] for i in inv.items]
    cv, y = draw_table(cv, y, cols, rows, size=9.5, head_size=8, head_fill=purple, head_color=WHITE,
                       rule=LIGHT, wrap_col=0, pad=7, leading=12,
                       details=[i.detail for i in inv.items], max_y=H - 120, new_page=next_page)
    if len(pages) == 1:
        raise RuntimeError("multipage layout did not overflow: add items")
    y += 22
    lx = L + 300
    y = draw_totals(cv, y, [("Subtotal (excl. VAT)", ms(inv.subtotal), False),
                            (f"VAT @ {fmt_qty(inv.tax_rate, 'en')}%", ms(inv.tax), False)],
                    lx, R - 7, size=9.5, step=17)
    cv.rect(lx - 7, y - 6, R, y + 20, fill=purple)
    cv.text(lx, y + 11, f"Total due ({inv.currency})", "sansb", 10.5, WHITE)
    cv.text(R - 7, y + 11, ms(inv.total), "sansb", 11, WHITE, "right")
    y += 58
    cv.text(L, y, "How to pay", "sansb", 10, purple)
    y = cv.lines(L, y + 16, inv.extra["bank"], size=9, leading=12.5) + 10
    cv.paragraph(L, y, inv.extra["terms"], R - L, size=8.5, leading=12, color=GREY)
    footer_all()
    save_pdf(doc, path)


def layout_en_minimal(inv: Invoice, path: pathlib.Path) -> None:
    """Word-processor style freelancer invoice, serif, no due date."""
    doc = new_doc(f"Invoice {inv.number}", inv.vendor.name)
    cv = Canvas(doc, LETTER)
    W, H = LETTER
    L, R = 72, W - 72
    ms = lambda d: fmt_money(d, inv.currency, "en_sym")

    cv.text(L, 96, inv.vendor.name, "serifb", 22)
    y = cv.lines(L, 116, inv.vendor.address + inv.extra["contact"] + [f"EIN {inv.vendor.tax_id}"],
                 "serif", 10.5, 14, GREY)
    cv.text(R, 96, "INVOICE", "serif", 22, GREY, "right")
    cv.lines(R, 116, [f"Invoice #{inv.number}", fmt_date(inv.issued, "us_long")], "serif", 10.5, 14,
             BLACK, "right")

    y += 22
    cv.text(L, y, "Bill to:", "serifi", 10.5, GREY)
    y = cv.lines(L, y + 16, [inv.customer.name] + inv.customer.address, "serif", 11, 15) + 20

    cols = [Col("Description", L - 6, L + 290), Col("Qty", L + 290, L + 330, "right"),
            Col("Rate", L + 330, L + 395, "right"), Col("Amount", L + 395, R + 6, "right")]
    rows = [[i.description, fmt_qty(i.quantity, "en"), ms(i.unit_price), ms(i.amount)] for i in inv.items]
    cv, y = draw_table(cv, y, cols, rows, font="serif", bold="serifb", size=11, head_size=10.5,
                       head_rule=BLACK, rule=hexcol("cccccc"), wrap_col=0, pad=7, leading=14)
    y += 22
    lx = L + 250
    y = draw_totals(cv, y, [("Subtotal", ms(inv.subtotal), False),
                            (f"NY sales tax ({fmt_qty(inv.tax_rate, 'en')}%)", ms(inv.tax), False),
                            ("Total", ms(inv.total), True)], lx, R, font="serif", bold="serifb",
                    size=11, step=18)
    y += 30
    cv.lines(L, y, inv.extra["closing"], "serif", 10.5, 15)
    save_pdf(doc, path)


# ---------------------------------------------------------------------------
# receipts
# ---------------------------------------------------------------------------
RECEIPT_W = 80 * MM


def draw_receipt(doc: pymupdf.Document, rc: Receipt, height: float) -> float:
    """Monospace till receipt; returns the y where content ends."""
    cv = Canvas(doc, (RECEIPT_W, height))
    L, R = 4.5 * MM, RECEIPT_W - 4.5 * MM
    C = RECEIPT_W / 2
    loc = rc.extra["loc"]
    num = lambda d: fmt_num(d, loc)
    size, lead = 8.2, 10.6
    y = 30
    for n, line in enumerate(rc.extra["header"]):
        big = n == 0
        cv.text(C, y, line, "monob" if big else "mono", 11 if big else size, BLACK, "center")
        y += 15 if big else lead
    y += 4
    dash = "-" * 40
    cv.text(C, y, dash, "mono", size, BLACK, "center")
    y += lead
    for line in rc.extra["pre"]:
        cv.text(L, y, line, "mono", size)
        y += lead
    cv.text(C, y, dash, "mono", size, BLACK, "center")
    y += lead + 2
    for it in rc.items:
        tag = rc.extra.get("tag", "")
        cv.text(L, y, it.description, "mono", size)
        if it.quantity != 1:
            y += lead
            q = fmt_qty(it.quantity, loc) + (" " + it.unit if it.unit else "")
            cv.text(L + 12, y, f"{q} x {num(it.unit_price)}", "mono", size)
        cv.text(R, y, num(it.amount) + (" " + tag if tag else ""), "mono", size, BLACK, "right")
        y += lead
    y += 2
    cv.text(C, y, dash, "mono", size, BLACK, "center")
    y += lead + 2
    for label, value, bold in rc.extra["totals"](rc):
        f = "monob" if bold else "mono"
        sz = 10 if bold else size
        cv.text(L, y, label, f, sz)
        cv.text(R, y, value, f, sz, BLACK, "right")
        y += lead + (4 if bold else 0)
    y += 4
    cv.text(C, y, dash, "mono", size, BLACK, "center")
    y += lead
    for line in rc.extra["post"]:
        cv.text(C, y, line, "mono", size - 0.6, BLACK, "center")
        y += lead - 0.6
    y += 8
    # a fake barcode made of bars (drawn, not text)
    rng = random.Random(rc.file)
    x = C - 60
    while x < C + 60:
        w = rng.choice([0.8, 0.8, 1.6, 2.4])
        cv.rect(x, y, x + w, y + 26, fill=BLACK)
        x += w + rng.choice([0.8, 1.6, 2.4])
    y += 38
    cv.text(C, y, rc.extra["bye"], "mono", size, BLACK, "center")
    return y + 26


def make_receipt_pdf(rc: Receipt) -> pymupdf.Document:
    tmp = pymupdf.open()
    h = draw_receipt(tmp, rc, 2000)
    tmp.close()
    doc = new_doc(f"Receipt {rc.merchant}", rc.merchant)
    draw_receipt(doc, rc, h)
    doc.subset_fonts()
    return doc


# ---------------------------------------------------------------------------
# scan / photo simulation
# ---------------------------------------------------------------------------
def render_grey(doc: pymupdf.Document, pno: int, dpi: int) -> Image.Image:
    pix = doc[pno].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    return Image.frombytes("L", (pix.width, pix.height), pix.samples)


def scanify(img: Image.Image, rng: np.random.Generator, *, angle: float, blur: float,
            contrast: float, brightness: float, noise: float, specks: int,
            whiten: int | None = None) -> Image.Image:
    """Rotate (expand, white fill), blur, change contrast, add uneven lighting,
    Gaussian noise and dust specks. `whiten`: clip values above it to 255
    (scanner background removal, keeps PNG/TIFF small)."""
    img = img.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=255)
    # where specks may go: 8x8 blocks with no ink in them or their neighbours,
    # so that dust never lands on (and changes) printed characters
    a0 = np.asarray(img)
    h, w = a0.shape
    B = 8
    hb, wb = h // B, w // B
    ink = (a0[:hb * B, :wb * B] < 235).reshape(hb, B, wb, B).any(axis=(1, 3))
    near = ink.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(ink, dy, 0), dx, 1)
    free = np.argwhere(~near)
    img = img.filter(ImageFilter.GaussianBlur(blur))
    a = np.asarray(img, dtype=np.float32)
    a = (a - 128.0) * contrast + 128.0 + brightness
    # gentle illumination fall-off towards one edge
    gy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    gx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    a -= 10.0 * (gx * 0.6 + gy * 0.4) ** 2
    a += rng.normal(0.0, noise, size=a.shape).astype(np.float32)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    draw = ImageDraw.Draw(img)
    for _ in range(specks):
        by, bx = free[int(rng.integers(0, len(free)))]
        x, y = int(bx * B + rng.integers(2, B - 2)), int(by * B + rng.integers(2, B - 2))
        r = float(rng.uniform(0.8, 3.0))
        draw.ellipse([x - r, y - r * rng.uniform(0.5, 1.3), x + r, y + r], fill=int(rng.integers(20, 110)))
    # one faint hair/scratch line
    by, bx = free[int(rng.integers(0, len(free)))]
    x0, y0 = int(bx * B), int(by * B)
    draw.line([x0, y0, x0 + int(rng.integers(-40, 40)), y0 + int(rng.integers(30, 90))],
              fill=170, width=1)
    if whiten is not None:
        a = np.asarray(img, dtype=np.float32)
        a = np.where(a >= whiten, 255.0, a * (255.0 / whiten))
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    return img


def photo_of_receipt(doc: pymupdf.Document, rng: np.random.Generator) -> Image.Image:
    """Phone photo: receipt on a table, warm light, slight tilt, vignetting."""
    paper = render_grey(doc, 0, 230)
    pw, ph = paper.size
    # thermal paper: slightly warm, text a bit faded
    pa = np.asarray(paper, dtype=np.float32)
    pa = 60 + pa * (190 / 255)
    rgb = np.stack([pa * 1.0 + 10, pa * 0.985 + 8, pa * 0.94], axis=-1)
    rec = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").convert("RGBA")
    rec = rec.rotate(-1.4, resample=Image.BICUBIC, expand=True)
    W, H = rec.width + 260, rec.height + 240
    # wooden-ish table: brown with horizontal grain
    yy = np.arange(H, dtype=np.float32)[:, None]
    xx = np.arange(W, dtype=np.float32)[None, :]
    wave = yy / 11.0 + 2.5 * np.sin(xx / 260.0) + 1.2 * np.sin(xx / 37.0 + yy / 90.0)
    grain = 7 * np.sin(wave) + 4 * np.sin(wave * 2.7 + 1.0) + rng.normal(0, 5, (H, W))
    base = np.stack([120 + grain, 84 + grain * 0.8, 56 + grain * 0.6], axis=-1)
    table = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    # soft shadow
    shadow = Image.new("L", (W, H), 0)
    alpha = rec.split()[3]
    shadow.paste(alpha.point(lambda v: 110 if v > 0 else 0), (146, 132))
    shadow = shadow.filter(ImageFilter.GaussianBlur(14))
    table = Image.composite(Image.new("RGB", (W, H), (40, 28, 18)), table, shadow)
    table.paste(rec, (130, 112), rec)
    a = np.asarray(table, dtype=np.float32)
    # vignette + warm light from the top-left
    cy, cx = H * 0.4, W * 0.35
    d = np.sqrt(((yy - cy) / H) ** 2 + ((xx - cx) / W) ** 2)
    a *= (1.08 - 0.55 * d ** 2)[..., None]
    a += rng.normal(0, 4.0, a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    img = img.filter(ImageFilter.GaussianBlur(0.7))
    return img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.LANCZOS)


# ---------------------------------------------------------------------------
# the sample set
# ---------------------------------------------------------------------------
def invoices() -> list[tuple[Invoice, callable]]:
    out = []

    out.append((Invoice(
        file="invoice_en_classic_acme.pdf", number="INV-2025-0347",
        issued=date(2025, 3, 5), due=date(2025, 4, 4),
        vendor=Party("Acme Industrial Supply Co.",
                     ["1450 Foundry Street, Suite 200", "Dayton, OH 45402", "USA"], "31-4728105"),
        customer=Party("Bluebird Logistics LLC", ["88 Riverside Drive", "Columbus, OH 43215", "USA"]),
        currency="USD", tax_rate=Decimal("7.5"),
        items=[item("Steel shelving unit, 5-tier, 48 x 24 in", 4, "189.00"),
               item("Hydraulic pallet jack, 5,500 lb capacity", 1, "429.99"),
               item("Nitrile-coated work gloves (box of 12)", 10, "18.75"),
               item("LED shop light, 4 ft, 5000K", 6, "42.50"),
               item("Delivery & handling", 1, "75.00")],
        extra={"tagline": "Industrial equipment & workplace supplies",
               "contact": "(937) 555-0142 · billing@acme-industrial.example",
               "terms": "Net 30", "po": "BL-7781",
               "ship_to": ["Warehouse 3", "1901 Industrial Pkwy", "Columbus, OH 43219"],
               "payment": ["ACH / wire: First Meridian Bank, Dayton OH",
                           "Routing 000000017 · Account 0045 1187 2290",
                           "Checks payable to Acme Industrial Supply Co.",
                           "Please include the invoice number with your payment."],
               "footer": "Questions about this invoice? billing@acme-industrial.example · (937) 555-0142"}),
        layout_en_classic))

    out.append((Invoice(
        file="invoice_en_modern_northwind.pdf", number="NWC-1042",
        issued=date(2025, 3, 5), due=date(2025, 4, 4),
        vendor=Party("Northwind Creative Ltd",
                     ["4th Floor, 27 Hatton Garden", "London EC1N 8BX", "United Kingdom"], "GB 318 4471 62"),
        customer=Party("Hollis & Grant Solicitors LLP",
                       ["12 Queen Street", "Bristol BS1 4DZ", "United Kingdom"]),
        currency="GBP", tax_rate=Decimal("20"),
        items=[item("Brand discovery workshop (1 day)", 1, "1200.00"),
               item("Logo design & brand guidelines", 1, "2850.00"),
               item("Website page templates", 6, "375.00"),
               item("Stock photography licences", 3, "49.00")],
        extra={"tagline": "Brand & digital design studio",
               "contact": ["hello@northwind-creative.example", "+44 20 7946 0321",
                           "northwind-creative.example"],
               "company_no": "Registered in England 09876543",
               "bank": ["Thamesbridge Bank plc", "Account name: Northwind Creative Ltd",
                        "Sort code: 40-11-62", "Account no.: 31926819"],
               "project": "Rebrand & website, phase 1",
               "notes": "Payment within 30 days of the invoice date. Please quote NWC-1042 as the "
                        "payment reference. Thank you for working with us!"}),
        layout_en_modern))

    out.append((Invoice(
        file="invoice_de_din_mueller.pdf", number="RE-2025-0188",
        issued=date(2025, 3, 5), due=date(2025, 3, 19),
        vendor=Party("Müller & Söhne Haustechnik GmbH",
                     ["Industriestraße 14", "70565 Stuttgart", "Deutschland"], "DE284519736"),
        customer=Party("Bäckerei Schäfer e.K.", ["Hauptstraße 7", "71032 Böblingen"]),
        currency="EUR", tax_rate=Decimal("19"),
        items=[item("Jahreswartung Gas-Brennwertheizung", 1, "245.00", "Pausch."),
               item("Austausch Umwälzpumpe, Hocheffizienz 25-60", 1, "389.90", "Stk."),
               item("Arbeitszeit Monteur", "3.5", "68.00", "Std."),
               item("Dichtungen und Kleinmaterial", 1, "24.35", "Pausch."),
               item("Anfahrtspauschale Zone 2", 1, "45.00", "Pausch.")],
        extra={"tagline": "Heizung · Sanitär · Klima",
               "contact": ["Frau S. Krämer", "Tel. 0711 555 0193", "rechnung@mueller-haustechnik.example"],
               "customer_no": "K-10442", "service_date": "27.02.2025",
               "intro": "vielen Dank für Ihren Auftrag. Für die am 27.02.2025 in Ihrer Filiale "
                        "ausgeführten Arbeiten berechnen wir Ihnen wie folgt:",
               "closing": "Bitte überweisen Sie den Gesamtbetrag ohne Abzug bis zum 19.03.2025 unter "
                          "Angabe der Rechnungsnummer auf das unten genannte Konto.",
               "footer": [["Müller & Söhne Haustechnik GmbH", "Industriestraße 14, 70565 Stuttgart",
                           "Geschäftsführer: Thomas Müller", "Amtsgericht Stuttgart HRB 734512"],
                          ["Bankverbindung", "Neckartaler Volksbank eG", "IBAN DE00 6009 0100 0123 4567 89",
                           "BIC NECKDE6SXXX"],
                          ["USt-IdNr. DE284519736", "Steuernummer 99012/34567",
                           "Tel. 0711 555 0190", "www.mueller-haustechnik.example"]]}),
        layout_de_din))

    out.append((Invoice(
        file="invoice_de_minimal_hoffmann.pdf", number="2025-014",
        issued=date(2025, 2, 28), due=date(2025, 3, 14),
        vendor=Party("Lena Hoffmann", ["Körnerstraße 23", "04107 Leipzig"], "DE317204589"),
        customer=Party("Verlag Sonnenberg GmbH", ["Zeppelinstraße 3", "81669 München"]),
        currency="EUR", tax_rate=Decimal("19"),
        items=[item("Illustrationen Kinderbuch „Der kleine Fuchs“, 12 Motive", 12, "180.00"),
               item("Umschlaggestaltung inkl. Rückseite", 1, "650.00"),
               item("Korrekturschleife (Stunden)", "2.5", "65.00")],
        extra={"tagline": "Illustration & Grafikdesign",
               "contact": ["post@lena-hoffmann.example", "0341 555 0177"],
               "period": "Februar 2025",
               "closing": "Bitte überweisen Sie den Gesamtbetrag bis zum 14.03.2025 auf das unten "
                          "genannte Konto. Die Nutzungsrechte gehen mit vollständiger Zahlung auf den "
                          "Auftraggeber über.",
               "bank": "Lena Hoffmann · Sparkasse Westsachsen · IBAN DE00 8605 5592 0000 4471 23 · BIC WESADE8LXXX",
               "steuernr": "Steuernummer 231/245/01234"}),
        layout_de_minimal))

    out.append((Invoice(
        file="invoice_fr_classique_dupont.pdf", number="F-2025-0212",
        issued=date(2025, 3, 12), due=date(2025, 4, 11),
        vendor=Party("Dupont & Fils SARL", ["18 rue des Tanneurs", "69002 Lyon", "France"], "FR47812345678"),
        customer=Party("Boulangerie Lefèvre", ["5 place de la République", "38000 Grenoble"]),
        currency="EUR", tax_rate=Decimal("20"),
        items=[item("Fourniture chauffe-eau électrique 200 L", 1, "689.00"),
               item("Main-d'œuvre installation (heures)", 6, "55.00"),
               item("Raccords, flexibles et groupe de sécurité", 1, "47.80"),
               item("Évacuation de l'ancien appareil", 1, "60.00"),
               item("Frais de déplacement", 1, "35.00")],
        extra={"tagline": "Plomberie – Chauffage – Sanitaire depuis 1987",
               "contact": ["Tél. 04 78 55 01 42", "contact@dupont-fils.example"],
               "client_code": "CL-0457",
               "payment": ["Virement à 30 jours date de facture", "IBAN FR76 0000 1234 5678 9012 3456 789",
                           "BIC LYONFRPPXXX"],
               "penalties": "En cas de retard de paiement, une pénalité égale à trois fois le taux "
                            "d'intérêt légal sera exigible, ainsi qu'une indemnité forfaitaire pour "
                            "frais de recouvrement de 40 €. Pas d'escompte pour paiement anticipé.",
               "legal": "Dupont & Fils SARL au capital de 20 000 € – RCS Lyon 812 345 678 – "
                        "SIRET 812 345 678 00021 – Code APE 4322A – N° TVA intracom. FR47812345678"}),
        layout_fr_classic))

    out.append((Invoice(
        file="invoice_fr_moderne_atelier.pdf", number="FA-00387",
        issued=date(2025, 2, 20), due=date(2025, 3, 22),
        vendor=Party("Atelier Lumière SAS", ["42 boulevard Voltaire", "75011 Paris"], "FR83901234567"),
        customer=Party("Maison Bérard", ["9 allée des Platanes", "33000 Bordeaux"], "FR19532876401"),
        currency="EUR", tax_rate=Decimal("20"),
        items=[item("Séance photo produits (demi-journée)", 2, "450.00"),
               item("Retouche et détourage des photos", 24, "13.50"),
               item("Droits d'utilisation web et réseaux sociaux (1 an)", 1, "300.00")],
        extra={"tagline": "Studio photo & direction artistique",
               "contact": ["bonjour@atelier-lumiere.example", "01 84 55 02 17"],
               "reference": "Devis D-2025-031",
               "payment": ["Paiement par virement sous 30 jours.",
                           "IBAN FR76 0000 9876 5432 1098 7654 321 · BIC PARIFRPPXXX"],
               "legal": "Atelier Lumière SAS – capital 5 000 € – RCS Paris 901 234 567 – "
                        "SIRET 901 234 567 00018"}),
        layout_fr_modern))

    out.append((Invoice(
        file="invoice_en_2page_globex.pdf", number="GCS-2025-00981",
        issued=date(2025, 2, 28), due=date(2025, 3, 30),
        vendor=Party("Globex Cloud Services Ltd",
                     ["Unit 5, Block B, Grand Canal Quay", "Dublin 2, D02 X576", "Ireland"], "IE9876543W"),
        customer=Party("Harbour Point Retail Ltd",
                       ["14 Patrick Street", "Cork T12 X2F7", "Ireland"], "IE3344556T"),
        currency="EUR", tax_rate=Decimal("23"),
        items=[item("Managed Kubernetes cluster – production", 1, "1850.00",
                    detail="3 worker nodes, 99.95% SLA, eu-west-1a/b/c"),
               item("Managed Kubernetes cluster – staging", 1, "620.00",
                    detail="1 worker node, best-effort support"),
               item("Managed PostgreSQL, 2 vCPU / 8 GB", 2, "310.00",
                    detail="Primary + replica, point-in-time recovery 14 days"),
               item("Object storage (TB-month)", "4.2", "21.50",
                    detail="Standard tier, averaged over the billing period"),
               item("Data egress (TB)", "1.35", "80.00",
                    detail="Internet egress beyond the included 1 TB"),
               item("Load balancer hours", 672, "0.03",
                    detail="2 load balancers, 14 days after go-live"),
               item("Managed backup vault (TB-month)", "2.5", "35.00",
                    detail="Daily snapshots, 30-day retention"),
               item("24/7 Premium support", 1, "600.00",
                    detail="15-minute response time for P1 incidents"),
               item("Migration consulting (hours)", 12, "145.00",
                    detail="Database cut-over, 17-19 February 2025"),
               item("Security review & penetration test", 1, "1250.00",
                    detail="External test of 2 public endpoints, report delivered 24/02/2025"),
               item("Training workshop (half day, remote)", 1, "480.00",
                    detail="Kubernetes operations for 6 attendees")],
        extra={"tagline": "Cloud infrastructure & managed services",
               "contact": "accounts@globex-cloud.example · +353 1 555 0164",
               "account": "HPR-20417", "period": "1-28 Feb 2025",
               "intro": "Thank you for choosing Globex Cloud Services. This invoice covers the managed "
                        "services and usage for your account during the billing period shown above, "
                        "under Master Services Agreement MSA-2291 dated 14 October 2024. Usage-based "
                        "items are measured in accordance with the MSA, schedule 3.",
               "bank": ["Bank: Liffey Commercial Bank, Dublin",
                        "IBAN: IE00 LCBK 9900 1234 5678 90   BIC: LCBKIE2DXXX",
                        "Reference: GCS-2025-00981"],
               "terms": "Payment terms: 30 days from the invoice date. Late payments may incur "
                        "interest under the European Communities (Late Payment in Commercial "
                        "Transactions) Regulations 2012. Queries: accounts@globex-cloud.example.",
               "footer": "Globex Cloud Services Ltd · Registered in Ireland No. 654321 · "
                         "Unit 5, Block B, Grand Canal Quay, Dublin 2"}),
        layout_en_multipage))

    out.append((Invoice(
        file="invoice_en_minimal_ellis.pdf", number="0057",
        issued=date(2025, 1, 17), due=None,
        vendor=Party("Jordan Ellis Photography", ["310 Maple Avenue, Apt 4B", "Brooklyn, NY 11215"],
                     "47-2918365"),
        customer=Party("Greenleaf Market Co.", ["220 Hudson Street", "New York, NY 10013"]),
        currency="USD", tax_rate=Decimal("8.875"),
        items=[item("Product photography, half-day session", 1, "650.00"),
               item("Edited high-resolution images", 25, "18.00")],
        extra={"contact": ["jordan@ellisphoto.example", "(718) 555-0109"],
               "closing": ["Payment is due upon receipt.",
                           "Zelle or check to Jordan Ellis. Thank you!"]}),
        layout_en_minimal))
    return out


def receipts() -> list[Receipt]:
    de = Receipt(
        file="receipt_de_baeckerei_kern.pdf", merchant="Bäckerei Kern",
        address=["Marktplatz 3", "72764 Reutlingen"],
        when="07.03.2025 08:14", iso_date=date(2025, 3, 7), currency="EUR",
        items=[item("Laugenbrezel", 3, "0.85"), item("Roggenbrot 750 g", 1, "4.20"),
               item("Butterbrezel", 2, "1.60"), item("Apfelstrudel", 1, "2.95"),
               item("Dinkelbrötchen", 4, "0.65")],
        tax_rate=Decimal("7"), tax_included=True)
    de.extra = {
        "loc": "de", "tag": "B",
        "header": ["Bäckerei Kern", "Marktplatz 3", "72764 Reutlingen", "Tel. 07121 555 013",
                   "St.-Nr. 78123/45678"],
        "pre": [f"Datum: {de.when}", "Bon-Nr. 4711   Kasse 2", "Es bediente Sie: Frau Weber"],
        "totals": lambda r: [("SUMME EUR", fmt_num(r.total, "de"), True),
                             ("Gegeben BAR", fmt_num(Decimal("20.00"), "de"), False),
                             ("Rückgeld", fmt_num(Decimal("20.00") - r.total, "de"), False),
                             ("", "", False),
                             ("B = 7% MwSt.   Netto", fmt_num(r.total - r.tax, "de"), False),
                             ("MwSt. 7%", fmt_num(r.tax, "de"), False),
                             ("Brutto", fmt_num(r.total, "de"), False)],
        "post": ["TSE-Seriennr.: 4f1c9a07e2d3", "TSE-Start: 2025-03-07T08:13:52",
                 "TSE-Signatur-Nr.: 18842"],
        "bye": "Vielen Dank und bis bald!"}

    us = Receipt(
        file="receipt_en_harbor_bean.png", merchant="Harbor Bean Coffee Roasters",
        address=["512 Pine Street", "Seattle, WA 98101"],
        when="03/14/2025 09:42 AM", iso_date=date(2025, 3, 14), currency="USD",
        items=[item("Oat Latte 16oz", 2, "5.75"), item("Blueberry Muffin", 1, "3.95"),
               item("Drip Coffee 12oz", 1, "3.25"), item("Whole Bean 12oz Bag", 1, "17.50")],
        tax_rate=Decimal("10.35"), tax_included=False)
    us.extra = {
        "loc": "en",
        "header": ["HARBOR BEAN", "Coffee Roasters", "512 Pine Street", "Seattle, WA 98101",
                   "(206) 555-0187"],
        "pre": [f"{us.when}", "Order #2291     Register 1", "Server: Maya"],
        "totals": lambda r: [("Subtotal", fmt_num(r.items_sum, "en"), False),
                             ("Sales Tax 10.35%", fmt_num(r.tax, "en"), False),
                             ("TOTAL USD", fmt_num(r.total, "en"), True),
                             ("VISA ****4821", fmt_num(r.total, "en"), False),
                             ("Auth code", "083154", False)],
        "post": ["Join Harbor Rewards and earn", "a free drink every 10 visits!"],
        "bye": "Thank you! See you soon."}

    fr = Receipt(
        file="photo_receipt_fr_superette.jpg", merchant="Supérette Les Halles",
        address=["14 rue Saint-Rémi", "51100 Reims"],
        when="15/03/2025 18:27", iso_date=date(2025, 3, 15), currency="EUR",
        items=[item("Baguette tradition", 2, "1.20"), item("Comté AOP 250 g", 1, "5.90"),
               item("Pommes Gala", "1.25", "2.99", "kg"), item("Eau minérale 6 x 1,5 L", 1, "3.45"),
               item("Chocolat noir 70 %", 2, "2.15"), item("Yaourts nature x8", 1, "2.79")],
        tax_rate=Decimal("5.5"), tax_included=True)
    fr.extra = {
        "loc": "fr",
        "header": ["SUPÉRETTE LES HALLES", "14 rue Saint-Rémi", "51100 Reims", "Tél. 03 26 55 01 88",
                   "SIRET 532 198 764 00015"],
        "pre": [f"Le {fr.when}", "Ticket 000318   Caisse 01", "Caissier : Julien"],
        "totals": lambda r: [("TOTAL TTC EUR", fmt_num(r.total, "fr"), True),
                             ("CB SANS CONTACT", fmt_num(r.total, "fr"), False),
                             ("", "", False),
                             ("dont TVA 5,5 %", fmt_num(r.tax, "fr"), False),
                             ("Total HT", fmt_num(r.total - r.tax, "fr"), False)],
        "post": [f"{len(fr.items)} articles", "Ticket à conserver"],
        "bye": "Merci de votre visite !"}
    return [de, us, fr]


def write_all(out: pathlib.Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    truth: list[dict] = []
    by_file: dict[str, dict] = {}

    for inv, layout in invoices():
        assert inv.subtotal + inv.tax == inv.total
        layout(inv, out / inv.file)
        rec = {"file": inv.file, "doc_type": "invoice", "fields": inv.truth(), "notes": []}
        if inv.due is None:
            rec["notes"].append("no due date printed ('Payment is due upon receipt')")
        if inv.file.startswith("invoice_en_2page"):
            rec["notes"].append("2 pages; line items continue on page 2, totals on page 2")
        truth.append(rec)
        by_file[inv.file] = rec

    for rc in receipts():
        doc = make_receipt_pdf(rc)
        rec = {"file": rc.file, "doc_type": "receipt", "fields": rc.truth(), "notes": []}
        if rc.file.endswith(".pdf"):
            save_pdf(doc, out / rc.file, subset=False)
            doc = None
        elif rc.file.endswith(".png"):
            # clean e-receipt screenshot: 203 dpi grey (thermal printer resolution)
            img = render_grey(doc, 0, 203)
            img.save(out / rc.file, "PNG", optimize=True, dpi=(203, 203))
            rec["notes"].append("image only (clean render, 203 dpi grey), no text layer")
        else:
            photo = photo_of_receipt(doc, rng)
            # store the pixels rotated 90° counter-clockwise; EXIF orientation 6
            # tells viewers to rotate 90° clockwise to display it upright
            stored = photo.transpose(Image.Transpose.ROTATE_90)
            exif = Image.Exif()
            exif[0x0112] = 6  # Orientation
            exif[0x010F] = "Fictitious"  # Make
            exif[0x0110] = "docpipe sample phone"  # Model
            exif[0x010E] = "Fictitious sample receipt (docpipe)"  # ImageDescription
            exif[0x0132] = "2025:03:15 18:31:07"  # DateTime
            stored.save(out / rc.file, "JPEG", quality=72, exif=exif.tobytes(), dpi=(72, 72))
            with Image.open(out / rc.file) as chk:
                assert chk.getexif().get(0x0112) == 6
                upright = ImageOps.exif_transpose(chk)
                assert upright.size == photo.size, (upright.size, photo.size)
                diff = np.abs(np.asarray(upright, np.int16) - np.asarray(photo, np.int16)).mean()
                assert diff < 6, diff
            rec["notes"].append("phone photo, JPEG pixels stored rotated 90° CCW with EXIF "
                                "Orientation=6; upright after EXIF transpose")
        if doc is not None:
            doc.close()
        truth.append(rec)
        by_file[rc.file] = rec

    scans = [
        ("scan_invoice_de_din_noisy.jpg", "invoice_de_din_mueller.pdf",
         dict(angle=1.3, blur=0.8, contrast=0.86, brightness=-6, noise=5.0, specks=40), "JPEG"),
        ("scan_invoice_fr_moderne_grey.png", "invoice_fr_moderne_atelier.pdf",
         dict(angle=-0.7, blur=0.6, contrast=0.92, brightness=-4, noise=3.5, specks=25, whiten=222), "PNG"),
        ("scan_invoice_en_2page_globex.tif", "invoice_en_2page_globex.pdf",
         dict(angle=0.6, blur=0.4, contrast=1.05, brightness=0, noise=4.0, specks=30), "TIFF"),
        ("scan_invoice_en_classic_skewed.jpg", "invoice_en_classic_acme.pdf",
         dict(angle=-1.9, blur=0.9, contrast=0.8, brightness=8, noise=4.5, specks=30), "JPEG"),
    ]
    for name, src, params, fmt in scans:
        doc = pymupdf.open(out / src)
        rec = {"file": name, "doc_type": "invoice", "fields": by_file[src]["fields"],
               "notes": [f"scan-like image of {src}"]}
        if fmt == "TIFF":
            frames = []
            for pno in range(doc.page_count):
                g = scanify(render_grey(doc, pno, 200), rng, **params)
                # office scanner style: 1-bit, CCITT G4
                frames.append(g.point(lambda v: 255 if v > 185 else 0).convert("1", dither=Image.Dither.NONE))
            frames[0].save(out / name, "TIFF", save_all=True, append_images=frames[1:],
                           compression="group4", dpi=(200, 200))
            rec["notes"].append(f"{len(frames)}-frame TIFF, 1-bit CCITT G4, 200 dpi, both pages")
        else:
            dpi = 200 if fmt == "JPEG" else 150
            g = scanify(render_grey(doc, 0, dpi), rng, **params)
            if fmt == "JPEG":
                g.save(out / name, "JPEG", quality=70, dpi=(dpi, dpi), optimize=True)
            else:
                g.save(out / name, "PNG", optimize=True, dpi=(dpi, dpi))
            rec["notes"].append(f"{dpi} dpi grey {fmt}, rotated {params['angle']}°, noise, specks")
        doc.close()
        truth.append(rec)

    with open(out / "truth.jsonl", "w", encoding="utf-8") as fh:
        for rec in truth:
            if not rec["notes"]:
                del rec["notes"]
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return truth


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="samples", type=pathlib.Path)
    args = ap.parse_args(argv)
    truth = write_all(args.out)
    total = 0
    for rec in truth:
        size = (args.out / rec["file"]).stat().st_size
        total += size
        print(f"{size / 1024:8.1f} KiB  {rec['file']}")
    print(f"{total / 1024:8.1f} KiB  total ({len(truth)} documents) + truth.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
