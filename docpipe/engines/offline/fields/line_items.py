"""Invoice line items: table rows whose numbers multiply out (quantity × unit price ≈ amount)."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal

from .dates import blank_dates
from .layout import Doc, Line
from .numbers import Amount, about_equal, find_amounts, format_money, format_qty

_UNIT_WORDS = re.compile(r"^\s*(?:x\b|stk\.?|st\.?|stuck|pcs?\.?|pieces?|units?|unit\(s\)|liters?|liter\(s\)|"
                         r"kg|g|m2|m²|"
                         r"m|h|hrs?|hours?|std\.?|tag\(e\)|tage?|days?|monate?|months?|pauschal|psch|lfm|l|ea|each|"
                         r"qty|pkt|karton|fl)\b", re.I)
_GROUPED_CELL_RE = re.compile(r"[-−]?(?:[€$£] ?)?\d{1,3}(?:[ \u00a0\u202f]\d{3})+,\d{2}(?: ?(?:[€$£]|[A-Z]{3}))?")
_DIGIT_RUN_RE = re.compile(r"\d+(?:[.,]\d+)*")
_SKIP_ITEM_LINE_RE = re.compile(r"\W*(?:(?:sub)?total|summe|netto|brutto|mwst|ust|vat|tva|tax|steuer|betrag|"
                                r"amount due|zwischensumme|rabatt|skonto|discount|payment|zahlung|bezahlt|paid|"
                                r"balance|solde|gesamt)\b")


def _num_tokens(doc: Doc, ln: Line) -> list[Amount]:
    """Numbers on an item line, without percentages, dates, codes glued to letters or long article numbers."""
    text = blank_dates(ln.text, doc.dates(ln))
    out = []
    for a in _cell_amounts(text, ln, doc.decimal):
        after = text[a.end:a.end + 2]
        if a.currency is None and (after[:1].isalpha() or re.match(r"[/\-]\d", after)):
            continue  # part of a word or code: "3m", "250g", "20/0500", "25-60"
        if a.decimals == 0 and len(str(abs(a.value))) > 7:
            continue
        out.append(a)
    return out


def _cell_amounts(text: str, ln: Line, decimal: str) -> list[Amount]:
    """Amounts cell by cell: with a decimal comma, '1 234,56' inside one cell is one number (French grouping),
    while a quantity and a price stay apart since cells are separated by runs of spaces."""
    if decimal != ",":
        return find_amounts(text, decimal, spaced=False)
    out = []
    for seg in ln.segs:
        cell = text[seg.col:seg.end]
        whole = bool(_GROUPED_CELL_RE.fullmatch(cell.strip()))  # the cell is one grouped number
        for a in find_amounts(cell, decimal, spaced=True, space_plain=whole):
            out.append(replace(a, start=a.start + seg.col, end=a.end + seg.col))
    return out


def _item_from(nums: list[Amount], amount: Amount | None, text: str) -> tuple[Amount, Amount, Amount] | None:
    """(qty, unit price, amount) with qty × unit ≈ amount (or less a line discount %); the amount is the last
    money value. Among several fitting pairs, a quantity with a unit word wins, then the pair nearest the amount
    (position numbers open the line)."""
    pool = nums + ([amount] if amount else [])
    while pool and not pool[-1].is_money:
        pool.pop()  # trailing VAT rate or tax code column
    if len(pool) < 3 or len(pool) > 10:
        return None
    a = pool[-1]
    discounts = [Decimal(1)] + [1 - Decimal(p.replace(",", ".")) / 100
                                for p in re.findall(r"(?<![\d.,])(\d{1,2}(?:[.,]\d+)?)\s?%", text)]
    best: tuple[tuple[int, int, int], tuple[Amount, Amount, Amount]] | None = None
    for rank, factor in enumerate(discounts[:3]):
        for i in range(len(pool) - 1):
            for j in range(i + 1, len(pool) - 1):
                x, y = pool[i], pool[j]
                if not about_equal(abs(x.value * y.value * factor), abs(a.value)):
                    continue  # a credit note prints its amounts negative ("2  £85.00  -£170.00")
                q, u = _qty_first(x, y, text)
                if q.value == 0 or q.value < 0 < a.value:
                    continue  # "0 % × base = 0,00" in VAT breakdowns is no item
                key = (-rank, int(bool(_UNIT_WORDS.match(text[q.end:]))), i + j)
                if best is None or key > best[0]:
                    best = (key, (q, u, a))
        if best:
            break
    return best[1] if best else None


def _qty_first(x: Amount, y: Amount, text: str) -> tuple[Amount, Amount]:
    """Which of two numbers is the quantity: the one followed by a unit word, else the one without cents."""
    for a, b in ((x, y), (y, x)):
        if _UNIT_WORDS.match(text[a.end:]) and not _UNIT_WORDS.match(text[b.end:]):
            return a, b
    if x.currency or (y.decimals == 0 and x.decimals >= 2):
        return y, x
    return x, y


def _description(ln: Line, used: list[Amount]) -> str | None:
    """The item's text: the longest cell with words once the row's quantity, price and amount are taken out
    (other numbers stay: 'Zone 2', '24/7', '48 x 24 in'); article codes are skipped."""
    spans = [(a.start, a.end) for a in used]
    best = ""
    for seg in ln.segs:
        text = seg.text
        for s, e in spans:
            if seg.col <= s < seg.end:
                text = text[:s - seg.col] + " " * (e - s) + text[e - seg.col:] if e <= seg.end else text[:s - seg.col]
        for piece in re.split(r"\s{2,}", text):
            piece = re.sub(r"\s+\d+(?:[.,]\d+)?\s*%.*$", "", piece).strip(" :;-€$£")
            piece = _UNIT_WORDS.sub("", piece).strip() if _UNIT_WORDS.fullmatch(piece) else piece
            if re.fullmatch(r"[A-Z0-9\-./]+", piece) and re.search(r"\d", piece):
                continue  # article number
            letters = len(re.findall(r"[^\W\d_]", piece))
            if letters >= 3 and letters > len(re.findall(r"[^\W\d_]", best)):
                best = piece
    return best or None


def find_line_items(doc: Doc, stop_line: int | None) -> list[dict[str, str]]:
    """Table rows whose numbers multiply out (qty × unit price ≈ amount); the amount may sit one line below."""
    items: list[dict[str, str]] = []
    lines = list(doc.nonempty(0, stop_line))
    for i, ln in enumerate(lines):
        if len(_DIGIT_RUN_RE.findall(ln.text)) < (2 if items else 3) or _SKIP_ITEM_LINE_RE.match(ln.segs[0].folded):
            continue  # too few numbers for qty × price = amount (or price = amount, below), or a totals row
        nums = _num_tokens(doc, ln)
        if len(nums) < 2:
            continue
        found = _item_from(nums, None, ln.text)
        money = [a for a in nums if a.is_money]
        if found is None and items and len(money) == 2 and money[0].value == money[1].value > 0 \
                and "quantity" in items[-1]:
            # "Espresso beans 1kg   616,57 €   616,57 €" in a table of quantities: the unit price is the amount, so
            # one of it (a scan may lose a lone "1" in the quantity column)
            one = Amount(money[0].start, money[0].start, Decimal(1), 0, None, "1")
            found = (one, money[0], money[1])
        if found is None and i + 1 < len(lines):
            below = [a for a in _num_tokens(doc, lines[i + 1]) if a.is_money]
            if len(below) == 1 and not re.search(r"[^\W\d_]{4,}", blank_dates(lines[i + 1].text, [])
                                                 .replace(below[0].raw, "")):
                found = _item_from(nums, below[0], ln.text)
        if found is None:
            continue
        q, u, a = found
        desc = _description(ln, [q, u, a])
        if desc is None:
            continue
        items.append({"description": desc, "quantity": format_qty(q.value), "unit_price": str(u.value),
                      "amount": format_money(a.value)})
    return items
