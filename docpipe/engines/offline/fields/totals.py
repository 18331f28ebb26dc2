"""Subtotal, tax and total: amounts filed under their labels, the consistent triple chosen; their currency."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from .amount_labels import classify_amount_label, norm_label
from .dates import blank_dates
from .labels import CURRENCY_LABELS
from .layout import Doc, Line
from .lookup import label_hits, values_after
from .numbers import (
    AU_STATE_POSTCODE,
    CA_PROVINCE_POSTCODE,
    CURRENCY_CODES,
    CURRENCY_SYMBOLS,
    Amount,
    about_equal,
    currency_counts,
)
from .text import fold

_RATE_RE = re.compile(r"%|\b(?:von|of|sur|auf)\b")


@dataclass
class Cand:
    value: Decimal
    score: float
    line: int
    currency: str | None
    pair_only: bool = False  # taken only as part of a triple that adds up, never alone


def amount_candidates(doc: Doc, lines: Iterable[Line] | None = None,
                      classify: Callable[[str], tuple[str, int] | None] = classify_amount_label
                      ) -> dict[str, list[Cand]]:
    """Split each line into (label, amounts) groups and file each group's amounts under the label's field."""
    cands: dict[str, list[Cand]] = {"total": [], "subtotal": [], "tax": []}
    pending: tuple[int, str, bool] | None = None  # a label alone on its line: (line, label, has_rate)
    header: list[tuple[int, int, tuple[str, int] | None]] = []  # a row of labels: (start, end, (field, score))
    rate_rows: list[int] = []  # lines of the current label row's values rows that carry a rate ("19,0%")
    for ln in lines if lines is not None else doc.nonempty():
        amounts = doc.amounts(ln)
        below, over = pending, header
        pending, header = None, []
        if not over:
            _weaken_rate_rows(cands, rate_rows)
            rate_rows = []
        if not amounts:
            if len(ln.segs) == 1 and not doc.dates(ln) and (label := norm_label(ln.text)):
                pending = (ln.idx, label, bool(_RATE_RE.search(fold(ln.text))))
            elif len(ln.segs) > 1 and not doc.dates(ln):
                header = _label_row(ln, classify)
            continue
        if over and _values_row(ln, amounts):
            # "Subtotal   VAT 20%   Total" over "100.00   20.00   120.00": each value under its label; the rows
            # after it too while they are rows of values ("20%  72.47  14.50", "Total  72.47  14.50" of a VAT
            # summary, whose "Total" names the row, not the columns)
            for a in amounts:  # the label nearest by centre or right edge (centred or right-aligned columns)
                if not a.is_money:
                    continue
                mid = (a.start + a.end) / 2
                _, _, cls = min(over, key=lambda h: min(abs((h[0] + h[1]) / 2 - mid), abs(h[1] - a.end)))
                if cls is not None:
                    cands[cls[0]].append(Cand(a.value, cls[1] - 0.5, ln.idx, a.currency))
            if _RATE_RE.search(ln.text):
                rate_rows.append(ln.idx)
            header = over
            continue
        if below and _stacked_value(doc, ln, amounts, below[0]):
            # "Balance Due" on one line, "$1,035.67" alone on the next: a little less sure than side by side
            cls = classify(below[1])
            if cls is not None:
                cands[cls[0]].append(Cand(amounts[0].value, cls[1] - 0.5, ln.idx, amounts[0].currency))
            continue
        text = blank_dates(ln.text, doc.dates(ln))
        groups: list[tuple[str, bool, list[Amount]]] = []
        pos = 0
        for a in amounts + [None]:  # type: ignore[list-item]
            piece = text[pos:a.start if a else len(text)]
            label = norm_label(piece)
            if label:
                groups.append((label, bool(_RATE_RE.search(fold(piece))), []))
            elif groups and _RATE_RE.search(fold(piece)):
                groups[-1] = (groups[-1][0], True, groups[-1][2])
            if a is None:
                break
            if groups:
                groups[-1][2].append(a)
            pos = a.end
        for label, has_rate, amts in groups:
            money = [a for a in amts if a.is_money]
            cls = classify(label) if money else None
            if cls is None:
                continue
            fname, score = cls
            if fname == "total" and len(money) == 3 and about_equal(money[0].value + money[1].value, money[2].value) \
                    and money[0].value > money[1].value > 0:
                # "Gesamtbetrag   4,97   0,37   5,33" of a VAT summary: net, VAT and gross in a row that adds up
                for field, a in zip(("subtotal", "tax", "total"), money):
                    cands[field].append(Cand(a.value, score, ln.idx, a.currency))
                continue
            if fname == "total" and len(money) == 2 and money[0].value > money[1].value > 0:
                # "Total   72.47   14.50" closing a VAT summary: net and VAT, the total printed elsewhere
                # (weak: only a sum that some total candidate equals makes them the answer)
                cands["subtotal"].append(Cand(money[0].value, 0.5, ln.idx, money[0].currency, pair_only=True))
                cands["tax"].append(Cand(money[1].value, 0.5, ln.idx, money[1].currency, pair_only=True))
            pref = len(money) - 1 if (fname == "tax" and has_rate and len(money) > 1) else 0
            for i, a in enumerate(money):
                cands[fname].append(Cand(a.value, score - (0 if i == pref else 1.5), ln.idx, a.currency))
    _weaken_rate_rows(cands, rate_rows)
    return cands


def _weaken_rate_rows(cands: dict[str, list[Cand]], rate_rows: list[int]) -> None:
    """Two or more rows of one rate each under a label row are a VAT breakdown ("A= 19,0%  0,21  0,04  0,25"):
    parts of the document's amounts, taken only where they add up, never as its total on their own."""
    if len(rate_rows) < 2:
        return
    rows = set(rate_rows)
    for field, found in cands.items():
        cands[field] = [replace(c, score=0.5, pair_only=True) if c.line in rows else c for c in found]


def _label_row(ln: Line, classify: Callable[[str], tuple[str, int] | None]
               ) -> list[tuple[int, int, tuple[str, int] | None]]:
    """A row of labels with what each names, when at least two of its cells name two different amount fields."""
    row = [(seg.col, seg.end, classify(norm_label(seg.text))) for seg in ln.segs]
    if row and row[0][2] and row[0][2][0] == "tax" and len(row) >= 3:
        # "TVA   BASE   TAUX   MONTANT": a VAT table's head; its amount column is the tax, its base the net
        row = [row[0]] + [(a, b, _VAT_COLUMNS.get(norm_label(seg.text), cls))
                          for (a, b, cls), seg in zip(row[1:], ln.segs[1:])]
    return row if len({cls[0] for _, _, cls in row if cls}) >= 2 else []


_VAT_COLUMNS: dict[str, tuple[str, int]] = {
    **dict.fromkeys(("montant", "amount", "betrag", "importe", "importo", "bedrag", "tax amount", "cuota"), ("tax", 2)),
    **dict.fromkeys(("base", "net", "netto", "base ht", "imponibile", "base imponible", "grondslag"), ("subtotal", 2)),
}


_ROW_NAME_RE = re.compile(r"^\W*(?:totals?|sum|summe|gesamt|totaux|totale|totaal)\W*$")


def _values_row(ln: Line, amounts: list[Amount]) -> bool:
    """A row of money amounts under a row of labels: no words, or only a total's name at its start; a rate
    ("20%") may stand in it."""
    rest = blank_dates(ln.text, [])
    for a in reversed(amounts):
        rest = rest[:a.start] + rest[a.end:]
    money = [a for a in amounts if a.is_money]
    if len(money) < 2 or (len(money) < len(amounts) and not _RATE_RE.search(ln.text)):
        return False
    return not re.search(r"[^\W\d_]{2,}", rest) or bool(_ROW_NAME_RE.match(fold(rest)))


def _stacked_value(doc: Doc, ln: Line, amounts: list[Amount], label_line: int) -> bool:
    """The line right under a lone label holds one money amount and nothing else."""
    prev = next(iter(doc.nonempty(label_line + 1, ln.idx)), None)
    if prev is not None or len(amounts) != 1 or not amounts[0].is_money or len(ln.segs) != 1:
        return False
    text = ln.text
    return not norm_label(text[:amounts[0].start] + " " + text[amounts[0].end:])


def pick_totals(cands: dict[str, list[Cand]], printed: set[Decimal]) -> dict[str, Cand]:
    """Choose subtotal, tax, total: the best-scored triple with subtotal + tax == total, else the best of each,
    then fill one missing value from the other two when that value is printed somewhere."""
    def top(name: str) -> list[Cand]:
        # best score first; among equals the later line (summary blocks sit at the end)
        return sorted(cands[name], key=lambda c: (-c.score, -c.line))[:8]

    subs, taxes, totals = top("subtotal"), top("tax"), top("total")
    tax_lines = {c.line: c for c in cands["tax"] if c.score >= 3}
    if len(tax_lines) > 1:  # several VAT rates: their sum may be the tax total
        rows = list(tax_lines.values())
        total_tax = sum((c.value for c in rows), Decimal(0))
        taxes.append(Cand(total_tax, min(c.score for c in rows) - 1, rows[-1].line, None))
    best: tuple[float, dict[str, Cand]] | None = None
    for s in subs:
        for t in taxes:
            for T in totals:
                if abs(s.value + t.value - T.value) <= Decimal("0.011") and T.value != 0:
                    score = s.score + t.score + T.score
                    if best is None or score > best[0]:
                        best = (score, {"subtotal": s, "tax": t, "total": T})
    if best:
        return best[1]
    alone = [[c for c in lst if not c.pair_only] for lst in (subs, taxes, totals)]
    out = {name: lst[0] for name, lst in zip(("subtotal", "tax", "total"), alone, strict=True) if lst}
    s, t, T = out.get("subtotal"), out.get("tax"), out.get("total")
    if s and T and not t and abs(T.value - s.value) in printed | {Decimal(0)}:
        out["tax"] = Cand(T.value - s.value, 0, T.line, None)
    elif s and t and not T and abs(s.value + t.value) in printed:
        out["total"] = Cand(s.value + t.value, 0, t.line, None)
    elif t and T and not s and abs(T.value - t.value) in printed:
        out["subtotal"] = Cand(T.value - t.value, 0, T.line, None)
    elif s and t and T and abs(s.value + t.value - T.value) > Decimal("0.011"):
        # inconsistent and no triple fits: keep total, derive tax when it is printed, drop what contradicts
        diff = T.value - s.value
        if abs(diff) in printed and any(abs(c.value - diff) <= Decimal("0.011") for c in cands["tax"]):
            out["tax"] = Cand(diff, 0, T.line, None)
    return out


def document_currency(doc: Doc, total_line: int | None) -> str | None:
    """Currency label > marks on the total's line > most frequent code/symbol in the document."""
    for hit in label_hits(doc, CURRENCY_LABELS):
        for _, text in values_after(doc, hit, below=1):
            m = re.match(rf"\s*(?:[:=]\s*)?({'|'.join(CURRENCY_CODES)})\b", text)
            if m:
                return m.group(1)
            m = re.match(r"\s*(?:[:=]\s*)?([€£$¥₹])", text)
            if m:
                return CURRENCY_SYMBOLS[m.group(1)]
            break
    if total_line is not None:
        c = currency_counts(doc.lines[total_line].text, doc.text)
        if c:
            return c.most_common(1)[0][0]
    c = currency_counts(doc.text)
    if c:
        return c.most_common(1)[0][0]
    # no mark at all: the bank the invoice is paid to says euro when its IBAN is of a euro country
    m = _IBAN_RE.search(doc.text)
    if m:
        return "EUR" if m.group(1) in _EURO_IBAN else None
    return address_currency(doc.text)


_US_STATES = ("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
              "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY").split()
# the first postal address in the text (the issuer's, as a letterhead comes first) names the country's money
_ADDRESS_CURRENCY = (
    ("USD", re.compile(rf"\b(?:{'|'.join(_US_STATES)})\s+\d{{5}}(?:-\d{{4}})?\b")),
    ("GBP", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}\b")),
    ("AUD", re.compile(AU_STATE_POSTCODE)),
    ("CAD", re.compile(CA_PROVINCE_POSTCODE)),
    ("INR", re.compile(r"\bGSTIN\b|\bRupees\b", re.I)),  # an Indian GST number; amounts in words in rupees
    ("SGD", re.compile(r"\bSingapore\s+\d{6}\b|\bUEN\b")),
)


def address_currency(text: str) -> str | None:
    """The currency of the first US, UK, Australian, Canadian or Singapore address in ``text`` (or an Indian
    GSTIN)."""
    hits = [(m.start(), code) for code, rx in _ADDRESS_CURRENCY if (m := rx.search(text))]
    return min(hits)[1] if hits else None


_IBAN_RE = re.compile(r"\bIBAN\W{0,3}([A-Z]{2})\s?\d{2}")
_EURO_IBAN = frozenset("AT BE CY DE EE ES FI FR GR HR IE IT LT LU LV MC MT NL PT SI SK SM VA AD".split())
