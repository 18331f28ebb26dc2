"""Rule-based field extraction for the offline engine: page texts -> a schema's fields, no ML.

Works on the text as PyMuPDF (``sort=True``) or OCR lays it out: lines in reading order, columns separated
by runs of spaces. A line is split into *segments* at 2+ spaces so that labels can find their values to
the right (same segment or the next one) or below (a segment in the same column on the next lines).

Everything returned is JSON-able: dates as ISO strings, money as decimal strings ("1234.56"). A field is
left out when no rule finds it: a missing value is cheaper downstream than a wrong one.
"""

from __future__ import annotations

import datetime as dt
import re
from bisect import bisect_right
import types
import typing
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Iterable

from pydantic import BaseModel, ValidationError

from .summary import text_units

if TYPE_CHECKING:  # pragma: no cover
    from ..schemas import SchemaInfo

__all__ = ["extract_fields", "Doc", "find_dates", "parse_amount", "detect_language"]


# =========================================================================== text model
MAX_LINE = 2000  # characters kept per line: real lines are far shorter; this bounds the per-line work
_SEG_RE = re.compile(r"\S+(?: \S+)*")  # a run of words separated by single spaces


class _FoldTable(dict[int, str]):
    """str.translate table filled on first sight of a character: lowercase base letter, one char per char."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        base = unicodedata.normalize("NFKD", ch)[:1].lower() or ch
        value = "s" if ch == "ß" else base if len(base) == 1 else ch
        self[code] = value
        return value


_FOLD_TABLE = _FoldTable()


def fold(s: str) -> str:
    """Lowercase without diacritics, same length as ``s``: regexes on it give offsets valid in ``s``.

    Labels are matched folded so that OCR dropping accents ("Fallig", "Echeance") still matches.
    """
    return s.translate(_FOLD_TABLE)


@dataclass(frozen=True)
class Seg:
    """A column cell: text between runs of 2+ spaces, with its start column."""

    line: int
    col: int
    text: str
    folded: str = ""

    def __post_init__(self) -> None:
        if not self.folded:
            object.__setattr__(self, "folded", fold(self.text))

    @property
    def end(self) -> int:
        return self.col + len(self.text)


@dataclass(frozen=True)
class Line:
    idx: int
    page: int
    text: str
    segs: tuple[Seg, ...]

    @property
    def flat(self) -> str:
        """The line with column gaps collapsed: for patterns that read across cells."""
        return " ".join(s.text for s in self.segs)


class Doc:
    """Pages split into lines and segments, plus document-wide cues (language, decimal mark, date order)."""

    def __init__(self, pages: list[str]) -> None:
        self.lines: list[Line] = []
        for pno, page in enumerate(pages):
            for raw in unicodedata.normalize("NFC", page or "").splitlines():
                raw = raw.expandtabs(8).rstrip()[:MAX_LINE]
                idx = len(self.lines)
                self.lines.append(Line(idx, pno, raw, tuple(Seg(idx, m.start(), m.group())
                                                            for m in _SEG_RE.finditer(raw))))
        self.text = "\n".join(ln.text for ln in self.lines)
        self.lang = detect_language(self.text)
        self.dmy = _day_first(self.text, self.lang)
        self.decimal = _decimal_mark(self.text, self.lang)
        self._dates: dict[int, list[DateHit]] | None = None
        self._amounts: dict[int, list[Amount]] | None = None
        self._furniture: set[str] | None = None
        self._head_tail: tuple[int, list[Line]] | None = None

    def nonempty(self, start: int = 0, stop: int | None = None) -> Iterable[Line]:
        for ln in self.lines[start:stop]:
            if ln.segs:
                yield ln

    def head_tail(self, head: int = 3, max_head: int = 400, max_tail: int = 200) -> list[Line]:
        """Lines of the first pages and the last page (bounded): where letterheads, addresses, numbers and dates
        live. Keeps a 100-page document from costing 100 pages of party and number searching."""
        if self._head_tail is None or self._head_tail[0] != head:
            last = self.lines[-1].page if self.lines else 0
            first = [ln for ln in self.nonempty() if ln.page < head][:max_head]
            tail = [ln for ln in self.nonempty() if ln.page == last and ln.page >= head][-max_tail:]
            self._head_tail = (head, first + tail)
        return self._head_tail[1]

    def dates(self, ln: Line) -> list[DateHit]:
        """Dates on a line, offsets within the line."""
        if self._dates is None:
            self._scan()
        return self._dates.get(ln.idx, [])  # type: ignore[union-attr]

    def amounts(self, ln: Line) -> list[Amount]:
        """Amounts on a line (dates blanked first so '05.06.2018' never reads as money)."""
        if self._amounts is None:
            self._scan()
        return self._amounts.get(ln.idx, [])  # type: ignore[union-attr]

    def _scan(self) -> None:
        """Dates and amounts of the whole text in one pass each (patterns never cross a line break), filed by
        line: one regex scan over the document is much cheaper than thousands of small ones."""
        starts = [0] * len(self.lines)
        pos = 0
        for i, ln in enumerate(self.lines):
            starts[i] = pos
            pos += len(ln.text) + 1
        dates = find_dates(self.text, self.dmy)
        amounts = find_amounts(_blank_dates(self.text, dates), self.decimal, space_plain=self.lang == "fr")
        self._dates, self._amounts = {}, {}
        for d in dates:
            i = bisect_right(starts, d.start) - 1
            self._dates.setdefault(i, []).append(DateHit(d.start - starts[i], d.end - starts[i], d.value))
        for a in amounts:
            i = bisect_right(starts, a.start) - 1
            self._amounts.setdefault(i, []).append(
                Amount(a.start - starts[i], a.end - starts[i], a.value, a.decimals, a.currency, a.raw))

    def money_values(self) -> set[Decimal]:
        """Every money-looking value in the document: to verify a derived figure is really printed."""
        return {abs(a.value) for ln in self.nonempty() for a in self.amounts(ln) if a.is_money}


# =========================================================================== language & locale
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and of to in for is on with by this that are be your you from as at or we our will "
                    "please total amount invoice date due payment".split()),
    "de": frozenset("der die das und ist nicht mit von für den dem zu im ein eine des auf wir sie bitte ihre "
                    "rechnung betrag datum zahlbar bis oder".split()),
    "fr": frozenset("le la les et des du de est pour une un en au avec par sur nous vous votre facture montant "
                    "date paiement ce qui".split()),
    "es": frozenset("el la los las y de del que en por para con una un es su factura fecha importe".split()),
    "it": frozenset("il lo la gli le e di del della che per con una un è fattura data importo totale".split()),
    "nl": frozenset("de het een en van is dat op te voor met niet zijn factuur bedrag datum totaal u uw".split()),
}
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_STOPWORD_LANGS: dict[str, list[str]] = {}
for _lang, _words in _STOPWORDS.items():
    for _w in _words:
        _STOPWORD_LANGS.setdefault(_w, []).append(_lang)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code by stopword counts (first 50,000 characters); None when there is too little text to tell."""
    counts: Counter[str] = Counter()
    for w in _WORD_RE.findall(text[:50_000].lower()):
        for lang in _STOPWORD_LANGS.get(w, ()):
            counts[lang] += 1
    if not counts:
        return None
    lang, n = counts.most_common(1)[0]
    return lang if n >= 2 else None


def _day_first(text: str, lang: str | None) -> bool:
    """Order of numeric d/m/y dates for the whole document: values > 12 decide, else language/currency."""
    day_first = month_first = 0
    for m in re.finditer(r"(?<![\d.])(\d{1,2})[/-](\d{1,2})[/-](?:\d{4}|\d{2})(?!\d)", text):
        a, b = int(m.group(1)), int(m.group(2))
        if a > 12 >= b:
            day_first += 1
        elif b > 12 >= a:
            month_first += 1
    if day_first != month_first:
        return day_first > month_first
    us = lang == "en" and bool(re.search(r"\$|\bUSD\b", text)) and not re.search(r"[€£]|\b(?:EUR|GBP)\b", text)
    return not us


def _decimal_mark(text: str, lang: str | None) -> str:
    """',' or '.': the mark seen more often before exactly two final digits, else by language.
    ('05.06.2018' does not count: its '.06' is followed by another dot.)"""
    comma = len(re.findall(r"\d,\d\d(?![\d.,])", text))
    dot = len(re.findall(r"\d\.\d\d(?![\d.,])", text))
    if comma != dot:
        return "," if comma > dot else "."
    return "," if lang in ("de", "fr", "es", "it", "nl") else "."


# =========================================================================== dates
_MONTHS: dict[str, int] = {}
for _num, _names in enumerate((
        "january jan januar janner janvier janv enero gennaio januari",
        "february feb februar fevrier fevr fev febrero febbraio februari",
        "march mar marz maerz mrz mars marzo maart",
        "april apr avril avr abril aprile",
        "may mai mayo maggio mei",
        "june jun juni juin junio giugno",
        "july jul juli juillet juil julio luglio",
        "august aug aout agosto augustus",
        "september sep sept septembre septiembre settembre",
        "october oct oktober okt octobre octubre ottobre",
        "november nov novembre noviembre",
        "december dec dezember dez decembre diciembre dicembre"), start=1):
    for _n in _names.split():
        _MONTHS[_n] = _num
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))

_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ymd", re.compile(r"(?<![\d.,/])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\d]|[.,/-]\d)")),
    ("num", re.compile(r"(?<![\d.,/])(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?![\d]|[.,/-]\d)")),
    ("dmy_name", re.compile(rf"(?<![\d.])(\d{{1,2}})(?:\.|er|st|nd|rd|th)?[^\S\n]*(?:of[^\S\n]+|de[^\S\n]+)?"
                            rf"({_MONTH_ALT})\b\.?,?[^\S\n]*(?:de[^\S\n]+)?'?(\d{{4}}|\d{{2}})(?![\d])")),
    ("mdy_name", re.compile(rf"\b({_MONTH_ALT})\b\.?[^\S\n]+(\d{{1,2}})(?:st|nd|rd|th)?,?[^\S\n]+(\d{{4}})(?!\d)")),
)


@dataclass(frozen=True)
class DateHit:
    start: int
    end: int
    value: dt.date


def _year(y: str) -> int:
    n = int(y)
    return n if len(y) == 4 else (2000 + n if n < 70 else 1900 + n)


def _mk_date(y: int, m: int, d: int) -> dt.date | None:
    if not 1900 <= y <= 2100:
        return None
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def find_dates(text: str, day_first: bool = True) -> list[DateHit]:
    """All dates in ``text``: ISO, d.m.y, d/m/y or m/d/y (``day_first``), '5 March 2025', 'March 5, 2025',
    '5. März 2025', '5 mars 2025', two-digit years. Dots always mean day first."""
    folded = fold(text)
    hits: list[DateHit] = []
    taken = bytearray(len(text))  # characters already part of a date (earlier patterns win)
    for kind, rx in _DATE_PATTERNS:
        for m in rx.finditer(folded):
            if any(taken[m.start():m.end()]):
                continue
            if kind == "ymd":
                d = _mk_date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
            elif kind == "num":
                a, b, y = int(m.group(1)), int(m.group(3)), _year(m.group(4))
                dayfirst = day_first or m.group(2) == "."
                d = _mk_date(y, b, a) if dayfirst else _mk_date(y, a, b)
            elif kind == "dmy_name":
                d = _mk_date(_year(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)))
            else:
                d = _mk_date(int(m.group(3)), _MONTHS[m.group(1)], int(m.group(2)))
            if d is not None:
                hits.append(DateHit(m.start(), m.end(), d))
                taken[m.start():m.end()] = b"\x01" * (m.end() - m.start())
    return sorted(hits, key=lambda h: h.start)


def _blank_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with the given (sorted, disjoint) spans replaced by spaces: offsets stay valid."""
    out, pos = [], 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(" " * (end - start))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _blank_dates(text: str, hits: list[DateHit]) -> str:
    return _blank_spans(text, ((h.start, h.end) for h in hits)) if hits else text


def parse_date(text: str, day_first: bool = True) -> dt.date | None:
    hits = find_dates(text, day_first)
    return hits[0].value if hits else None


# =========================================================================== amounts & currencies
_CODES = ("EUR", "USD", "GBP", "CHF", "CAD", "AUD", "NZD", "JPY", "CNY", "SEK", "NOK", "DKK", "PLN", "CZK",
          "HUF", "INR", "BRL", "MXN", "ZAR", "SGD", "HKD", "RUB", "ILS", "AED", "RON", "BGN", "ISK", "KRW")
_SYMBOLS: dict[str, str] = {"US$": "USD", "CA$": "CAD", "C$": "CAD", "AU$": "AUD", "A$": "AUD", "NZ$": "NZD",
                            "S$": "SGD", "HK$": "HKD", "R$": "BRL", "€": "EUR", "£": "GBP", "$": "USD", "¥": "JPY",
                            "₹": "INR", "₽": "RUB", "₪": "ILS", "zł": "PLN", "Kč": "CZK", "Fr.": "CHF"}
_CUR_RE = ("|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True) if s != "Fr.")
           + r"|(?<![A-Za-z])(?:" + "|".join(_CODES) + r")(?![A-Za-z])")
_NUM_CORE = r"\d{1,3}(?:(?P<g>[.,'’])\d{3})(?:(?P=g)\d{3})*(?:[.,]\d{1,4})?|\d+(?:[.,]\d{1,4})?"
# French "1 234,56": only with decimals, so a quantity and a price never merge
_NUM_SPACED = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+,\d{2}"


def _amount_re(spaced: bool) -> re.Pattern[str]:
    num = (_NUM_SPACED + "|" if spaced else "") + _NUM_CORE
    return re.compile(  # the lookahead fails fast on the letters and spaces that make up most text
        rf"(?=[-−–(\d€$£¥₹₽₪A-Zzk])(?<![\w.,/\-])(?P<lp>\()?(?P<sign>[-−–] ?)?"
        rf"(?:(?P<c1>{_CUR_RE}) ?)?(?P<sign2>[-−])?"
        rf"(?P<num>{num})(?![.,]?\d)(?: ?(?P<c2>{_CUR_RE}))?(?P<tail>-(?![\w])|\))?(?! ?%)")


_AMOUNT_RE = _amount_re(spaced=True)
_NUMBER_RE = _amount_re(spaced=False)


@dataclass(frozen=True)
class Amount:
    start: int
    end: int
    value: Decimal
    decimals: int
    currency: str | None
    raw: str

    @property
    def is_money(self) -> bool:
        """Two decimals or a currency mark: bare integers are quantities, years, rates."""
        return self.decimals == 2 or (self.currency is not None and self.decimals == 0)


_GROUP_CHARS_RE = re.compile(r"[ '’\u00a0\u202f]")
_SPACED_DIGITS_RE = re.compile(r"\d\s\d")
_RATE_RE = re.compile(r"%|\b(?:von|of|sur|auf)\b")


def _to_decimal(num: str, decimal_mark: str) -> tuple[Decimal, int] | None:
    """'1.234,56' / '1,234.56' / "1'234.56" / '1 234,56' -> (Decimal, decimals printed)."""
    s = _GROUP_CHARS_RE.sub("", num)
    marks = [c for c in s if c in ".,"]
    if not marks:
        return Decimal(s), 0
    last = max(s.rfind("."), s.rfind(","))
    tail = len(s) - last - 1
    dec: str | None
    if len(set(marks)) == 2:
        dec = s[last]
    elif len(marks) > 1:
        dec = None  # one mark repeated: thousands grouping
    elif tail == 3 and s[last] != decimal_mark:
        dec = None  # "1.000" in an English-style document is a thousand, in a German one it is too
    elif tail == 3 and last <= 3:
        dec = s[last] if decimal_mark == s[last] and not re.fullmatch(r"\d{1,3}[.,]000", s) else None
    else:
        dec = s[last]
    try:
        if dec is None:
            return Decimal(s.replace(".", "").replace(",", "")), 0
        intpart, frac = s[:last], s[last + 1:]
        return Decimal(intpart.replace(".", "").replace(",", "") + "." + frac), len(frac)
    except InvalidOperation:
        return None


def _currency_of(mark: str | None) -> str | None:
    if not mark:
        return None
    return _SYMBOLS.get(mark, mark if mark in _CODES else None)


def find_amounts(text: str, decimal_mark: str = ".", spaced: bool = True, space_plain: bool = False) -> list[Amount]:
    """Numbers with optional currency marks and signs: '-7,67', '(144.00)', '€83.20', '160,00 €', '8,79-'.

    Space-grouped thousands ('1 234,56') need a currency mark unless ``space_plain`` (French text): in a table
    '19 163,16' is a VAT rate and an amount.
    """
    out: list[Amount] = []
    for m in (_AMOUNT_RE if spaced else _NUMBER_RE).finditer(text):
        if _SPACED_DIGITS_RE.search(m.group("num")) and not (space_plain or m.group("c1") or m.group("c2")):
            out.extend(replace(a, start=a.start + m.start(), end=a.end + m.start())
                       for a in find_amounts(m.group(), decimal_mark, spaced=False))
            continue
        parsed = _to_decimal(m.group("num"), decimal_mark)
        if parsed is None:
            continue
        value, decimals = parsed
        negative = bool(m.group("sign") or m.group("sign2") or (m.group("tail") == "-")
                        or (m.group("lp") and m.group("tail") == ")"))
        out.append(Amount(m.start(), m.end(), -value if negative else value, decimals,
                          _currency_of(m.group("c1") or m.group("c2")), m.group()))
    return out


def parse_amount(text: str, decimal_mark: str = ".") -> Decimal | None:
    found = [a for a in find_amounts(text, decimal_mark) if a.is_money] or find_amounts(text, decimal_mark)
    return found[0].value if found else None


def _money(d: Decimal) -> str:
    return str(d.quantize(Decimal("0.01")))


def _qty(d: Decimal) -> str:
    """Quantity without trailing zeros: '3', '2.5' (prices keep the decimals printed)."""
    return format(d.normalize(), "f")


_CODE_WORD_RE = re.compile(rf"\b({'|'.join(_CODES)})\b")
_DOLLAR_VARIANTS = re.compile(r"(?<![A-Za-z])(US|CA|AU|NZ|HK|[CASR])\$")


def _currency_counts(text: str) -> Counter[str]:
    """Currency evidence in the text: ISO codes and symbols ($ only counts as USD when no other dollar is named)."""
    c: Counter[str] = Counter(_CODE_WORD_RE.findall(text))
    for sym, code in _SYMBOLS.items():
        if len(sym) == 1 and sym != "$" and sym in text:
            c[code] += text.count(sym)
    for m in _DOLLAR_VARIANTS.finditer(text):
        c[_SYMBOLS[m.group(0)]] += 1
    plain_dollars = text.count("$") - len(_DOLLAR_VARIANTS.findall(text))
    if plain_dollars > 0:
        other = [k for k in ("CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "BRL") if c[k]]
        c[other[0] if other else "USD"] += plain_dollars
    return +c  # drop zero counts


# =========================================================================== label tables
# Amount labels are matched against a *normalised* label (folded, no punctuation, percentages, currency
# marks or parentheses; filler words like "zzgl."/"in"/"von" stripped). Weight: how sure the label names the
# field. An exact match adds 3, the label's last words 2, its first words 0 (e.g. "total at checkout").
_VAT = r"(?:vat|tax|taxes|mwst|ust|umsatzsteuer|tva|gst|iva|btw)"
_INCL = r"(?:incl|including|inkl|inklusive|inclusive|ttc|avec)"
_EXCL = r"(?:excl|excluding|exkl|exklusive|exclusive|ohne|hors|before|without|w o|net of|sans)"
_AMOUNT_LABELS: dict[str, tuple[tuple[str, int], ...]] = {
    "total": (
        (rf"(?:grand |invoice |order |final )?total(?: amount| sum| due| payable)?(?: {_INCL} {_VAT})?", 3),
        (rf"(?:gesamt|rechnungs|brutto|end)(?:betrag|summe)(?: brutto)?(?: {_INCL} {_VAT})?|amount {_INCL} {_VAT}", 3),
        (r"total (?:ttc|general|facture|a payer|brut|gross|eur|net a payer)", 3),
        (r"(?:summe|gesamt|rechnungssumme|betrag) (?:brutto|inkl (?:mwst|ust|umsatzsteuer))", 3),
        (r"brutto|gesamt|summe|montant (?:total )?ttc|montant total|total gross|gross amount|importe total|totale", 2),
        (r"amount due|balance due|amount payable|zahlbetrag|zu zahlen(?:der betrag)?|net a payer|"
         r"solde a payer|reste a payer|montant du|a payer", 1),
        (r"invoice amount|rechnungsbetrag netto|offener betrag|restbetrag|balance|residual|amount|betrag|montant", 0),
    ),
    "subtotal": (
        (rf"sub ?total|net(?: amount| total| value)?|total net|(?:total|amount|summe|betrag|montant) {_EXCL} {_VAT}|"
         r"total ht|montant ht|sous ?total|"
         r"total hors taxes?|netto(?:betrag|summe)?|summe netto|gesamt netto|nettobetrag gesamt|"
         r"rechnungssumme (?:netto|ohne (?:ust|mwst|umsatzsteuer))|(?:gesamt|rechnungs)betrag netto|"
         r"summe (?:ohne|exkl|excl) (?:ust|mwst)", 3),
        (r"zwischensumme|warenwert|sous total ht|base ht", 2),
        (r"positionssumme|items total|summe positionen", 1),
    ),
    "tax": (
        (r"(?:total |sales |vat |value added )?(?:tax|taxes|vat)(?: total| amount)?|total (?:vat|tax|taxes)|"
         r"(?:mwst|ust|umsatzsteuer|mehrwertsteuer|steuer)(?: ?betrag)?|summe (?:umsatzsteuer|mwst|ust|steuern?)|"
         r"(?:gesamt|total) (?:mwst|ust)|steuerbetrag gesamt|tva|total tva|montant (?:de la )?tva|total taxes|"
         r"taxe|taxes|iva|btw|gst|hst", 3),
    ),
}
_LEAD_FILLER = frozenset("zzgl zuzugl zuzuglich plus inkl incl including inklusive davon thereof enthaltene enthalten "
                         "enth dont abzgl the la le les der die das".split())
_TRAIL_FILLER = frozenset("in von of on sur auf a de du zu at x".split())


_PAREN_RE = re.compile(r"\([^)]*\)?")
_PERCENT_RE = re.compile(r"\d+(?:[.,]\d+)?\s*%")
_CUR_ANY_RE = re.compile(_CUR_RE, re.I)
_NON_WORD_RE = re.compile(r"[^a-z0-9ß ]+")


@lru_cache(maxsize=16384)
def _norm_label(piece: str) -> str:
    s = fold(piece)
    s = _PAREN_RE.sub(" ", s)
    s = _PERCENT_RE.sub(" ", s)
    s = _CUR_ANY_RE.sub(" ", s)
    s = _NON_WORD_RE.sub(" ", s)
    words = s.split()
    while words and (words[0] in _LEAD_FILLER or words[0].isdigit()):
        words.pop(0)
    while words and (words[-1] in _TRAIL_FILLER or words[-1].isdigit()):
        words.pop()
    return " ".join(words)


def _compile_table(table: dict[str, tuple[tuple[str, int], ...]]) -> list[tuple[str, re.Pattern[str], int]]:
    return [(fname, re.compile(rx), weight) for fname, entries in table.items() for rx, weight in entries]


_AMOUNT_TABLE = _compile_table(_AMOUNT_LABELS)


def _classify(label: str, table: list[tuple[str, re.Pattern[str], int]], prefix_bonus: int) -> tuple[str, int] | None:
    """(field, score) for a normalised label: exact > last words > first words; one field per label."""
    if not label:
        return None
    words = label.split()
    best: tuple[str, int] | None = None
    variants = ((3, [label]), (2, [" ".join(words[-k:]) for k in range(1, min(4, len(words)))]),
                (prefix_bonus, [" ".join(words[:k]) for k in range(1, min(4, len(words)))]))
    for fname, rx, weight in table:
        for bonus, texts in variants:
            if any(rx.fullmatch(v) for v in texts):
                if best is None or weight + bonus > best[1]:
                    best = (fname, weight + bonus)
                break
    return best


@lru_cache(maxsize=8192)
def _classify_amount_label(label: str) -> tuple[str, int] | None:
    return _classify(label, _AMOUNT_TABLE, 0)


# Field labels for label -> value lookups, as folded regexes. "anywhere": may start mid-cell (after a
# non-letter); otherwise the label must open its cell (generic words like "Date" are too common elsewhere).
@dataclass(frozen=True)
class Label:
    rx: str
    weight: int = 2
    anywhere: bool = True


def _labels(weight: int, anywhere: bool, *rxs: str) -> tuple[Label, ...]:
    return tuple(Label(r, weight, anywhere) for r in rxs)


INVOICE_NUMBER_LABELS = _labels(
    3, True,
    r"invoice\s*(?:no\b\.?|number|nr\b\.?|num\b\.?|#|id\b)", r"inv\.?\s*(?:no\b\.?|#)",
    r"rechnungs?\s*-?\s*(?:nummer|nr\b\.?|no\b\.?)", r"rechnungsnr\b\.?", r"beleg\s*-?\s*(?:nummer|nr\b\.?)",
    r"gutschrifts?\s*-?\s*(?:nummer|nr\b\.?)", r"(?:n[°o]|no\.|numero)\s*(?:de\s+)?(?:la\s+)?facture",
    r"facture\s*(?:n\s?°|no\b\.?|numero)", r"credit\s*note\s*(?:no\b\.?|number|#)",
    r"avoir\s*(?:n\s?°|no\b\.?)", r"bill\s*(?:no\b\.?|number|#)",
    r"(?:numero|n[°o])\s*(?:de\s+)?(?:facture|avoir)",
) + _labels(1, False, r"re\.?\s*-?\s*nr\b\.?", r"document\s*(?:no\b\.?|number|nr\b\.?)", r"belegnr\b\.?")

INVOICE_DATE_LABELS = _labels(
    3, True,
    r"invoice\s*date", r"date\s*of\s*(?:issue|invoice)", r"issue\s*date", r"date\s*issued", r"issued\s*(?:on|date)",
    r"billing\s*date", r"rechnungs\s*-?\s*datum", r"beleg\s*-?\s*datum", r"ausstellungsdatum",
    r"datum\s*der\s*rechnung", r"date\s*(?:de\s*(?:la\s*)?)?facture", r"date\s*d\s*'?\s*emission",
    r"date\s*de\s*facturation", r"facture\s*du", r"rechnung\s*vom", r"gutschriftsdatum",
) + _labels(1, False, r"date", r"datum", r"dated")

DUE_DATE_LABELS = _labels(
    3, True,
    r"due\s*date", r"date\s*due", r"payment\s*due(?:\s*date)?", r"due\s*(?:on|by)", r"payable\s*(?:by|until|on)",
    r"pay\s*by", r"fallig(?:\s*(?:am|bis|zum))?", r"falligkeit(?:sdatum)?", r"zahlbar\s*bis(?:\s*zum)?",
    r"zahlungsziel", r"zahlungsfrist", r"(?:date\s*d\s*'?\s*)?echeance",
    r"date\s*limite\s*(?:de\s*)?(?:paiement|reglement)",
    r"a\s*payer\s*avant(?:\s*le)?", r"payable\s*le", r"zu\s*zahlen\s*bis",
) + _labels(1, False, r"due", r"fallig", r"payable")
_DATE_LABEL_RES = [re.compile(r"(?<![^\W\d_])(?:" + lab.rx + r")(?![^\W\d_])")
                   for lab in INVOICE_DATE_LABELS + DUE_DATE_LABELS if lab.weight > 1 or "dat" in lab.rx]
# "zahlbar ... bis 04.07.2013", "Bitte überweisen Sie bis zum ...", "payable by ...": the latest such date
_PAY_SENTENCE_RE = re.compile(r"\b(?:zahlbar|zahlung|uberweisen|bezahlen|payable|pay|payment|due|payer|regler|"
                              r"reglement)\b")
_BY_RE = re.compile(r"\b(?:bis(?:\s+zum)?|by|before|until|avant(?:\s+le)?|spatestens(?:\s+am)?|due)\s*$")

SELLER_LABELS = (r"verkaufer", r"lieferant", r"rechnungs?(?:er)?steller", r"aussteller", r"absender",
                 r"leistungserbringer", r"auftragnehmer", r"seller", r"vendor", r"supplier", r"from",
                 r"issued\s+by", r"sold\s+by", r"(?:[\w()]+\s+){0,2}provided\s+by", r"bill\s+from",
                 r"fournisseur", r"vendeur", r"emetteur", r"prestataire", r"expediteur", r"remit\s+to")
BUYER_LABELS = (r"bill(?:ed)?\s+to", r"invoice(?:d)?\s+to", r"sold\s+to", r"customer", r"client", r"buyer",
                r"recipient", r"to", r"kunde", r"rechnungsempfanger", r"rechnungsadresse",
                r"kaufer(?:\s*/\s*leistungsempfanger)?", r"leistungsempfanger", r"auftraggeber", r"an",
                r"empfanger", r"facture\s+a", r"factures?\s+a", r"adresse\s+de\s+facturation", r"destinataire",
                r"acheteur", r"billing\s+address", r"customer\s+details", r"client\s+factur[ée]")
DELIVERY_LABELS = (r"ship(?:ped)?\s+to", r"deliver(?:y|ed)\s*(?:to|address)", r"lieferanschrift", r"lieferadresse",
                   r"warenempfanger", r"adresse\s+de\s+livraison", r"livre\s+a")


def _block_label_re(alts: Iterable[str]) -> re.Pattern[str]:
    """A label that *is* its cell ("Bill to", "Verkäufer:"), optionally followed by ': value'."""
    return re.compile(r"^[^\w]*(?:" + "|".join(alts) + r")\s*(?:(?:[:\-–—])\s*(?P<rest>.*))?$")


def _relaxed_label_re(alts: Iterable[str]) -> re.Pattern[str]:
    """Label opening a cell with other text after it ("BILL TO SHIP TO" when OCR merged columns); the block is
    then read below. Only unmistakable labels: short or common ones ("To", "Client") start ordinary sentences."""
    return re.compile(r"^[^\w]*(?:" + "|".join(alts) + r")\s+(?P<after>(?!(?i:" + "|".join(_LEGAL_CI) + r")\b)\S.*)$")


RELAXED_LABELS = {
    "seller": (r"verkaufer", r"rechnungs?(?:er)?steller", r"leistungserbringer", r"(?:[\w()]+\s+){0,2}provided\s+by",
               r"issued\s+by", r"sold\s+by", r"fournisseur", r"emetteur"),
    "buyer": (r"bill(?:ed)?\s+to", r"invoice(?:d)?\s+to", r"sold\s+to", r"rechnungsempfanger", r"rechnungsadresse",
              r"kaufer\s*/\s*leistungsempfanger", r"leistungsempfanger", r"adresse\s+de\s+facturation",
              r"billing\s+address"),
    "delivery": (r"ship(?:ped)?\s+to", r"lieferanschrift", r"lieferadresse", r"adresse\s+de\s+livraison",
                 r"delivery\s+address"),
}


_SELLER_RE = _block_label_re(SELLER_LABELS)
_BUYER_RE = _block_label_re(BUYER_LABELS)
_DELIVERY_RE = _block_label_re(DELIVERY_LABELS)
_OTHER_BLOCK_RE = _block_label_re((r"abweichender\s+\w+", r"bemerkungen?", r"positionsdaten", r"zahlungsbedingungen",
                                   r"payment\s+(?:details|terms|information)", r"details", r"notes?", r"description",
                                   r"conditions\s+de\s+paiement", r"bank\w*", r"steuerbevollmachtigter.*",
                                   r"contact", r"kontakt", r"project", r"projekt", r"projet", r"references?",
                                   r"referenz", r"vat\s+reg\.?\s*no\.?", r"company\s+no\.?"))

_LEGAL_CI = (r"gmbh(?:\s*&\s*co\.?\s*(?:kg(?:aa)?|ohg)?)?", r"mbh", r"ltd\.?", r"limited", r"llc", r"l\.l\.c\.",
             r"inc\.?",
             r"incorporated", r"corp\.?", r"corporation", r"plc", r"llp", r"sarl", r"s\.a\.r\.l\.", r"sasu?", r"eurl",
             r"s\.a\.s\.", r"s\.a\.", r"s\.p\.a\.", r"s\.r\.l\.", r"b\.v\.", r"n\.v\.", r"pty\.?\s+ltd\.?", r"gbr",
             r"e\.\s?v\.", r"a\.\s?g\.", r"ohg", r"kgaa", r"ug(?:\s*\(haftungsbeschr[aä]nkt\))?")
# Case-sensitive short forms; "AB"/"AS"/"Oy" are left out: in running text they are more often not companies.
_LEGAL_CS = (r"AG", r"KG", r"SA", r"SE", r"BV", r"NV", r"A/S", r"ApS", r"SpA", r"Srl", r"S\.L\.", r"Co\.",
             r"GmbH & Co\.? KG")
_LEGAL_RE = re.compile(r"(?<![\w])(?:(?i:" + "|".join(_LEGAL_CI) + r")|" + "|".join(_LEGAL_CS) + r")(?![\w])")
_RELAXED = {rx.pattern: _relaxed_label_re(RELAXED_LABELS[kind])
            for rx, kind in ((_SELLER_RE, "seller"), (_BUYER_RE, "buyer"), (_DELIVERY_RE, "delivery"))}
_SALUTATIONS = frozenset("herr herrn frau firma mr mrs ms miss m mme monsieur madame dr attn z.hd. zhd".split())
_COUNTRIES = frozenset(fold(c) for c in (
    "Germany Deutschland France Frankreich Austria Österreich Switzerland Schweiz Suisse Italy Italia Spain España "
    "Netherlands Nederland Belgium Belgique Ireland Canada USA UK Luxembourg Poland Polska Sweden Denmark Norway "
    "Israel Portugal").split()) | {"united states", "united kingdom", "united states of america", "great britain"}

_VAT_ID_RE = re.compile(r"(?<![A-Z0-9])(?:ATU\d{8}|BE[01]?\d{9}|DE ?\d{3} ?\d{3} ?\d{3}|FR ?[0-9A-Z]{2} ?\d{9}|"
                        r"GB ?\d{3} ?\d{4} ?\d{2}(?:\d{3})?|IE\d[0-9A-Z+*]\d{5}[A-Z]{1,2}|NL\d{9}B\d{2}|IT\d{11}|"
                        r"ES[0-9A-Z]\d{7}[0-9A-Z]|CHE-?\d{3}\.?\d{3}\.?\d{3}(?: ?(?:MWST|TVA|IVA))?|"
                        r"(?:LU|DK|FI|HU|SI|MT)\d{8}|(?:PL|SK|HR|LT|PT|SE|CZ|EL|BG|RO|EE|LV|CY)[0-9A-Z]{8,12}|EU\d{9})"
                        r"(?![A-Z0-9])")
_TAX_NO_LABEL_RE = re.compile(r"(?:steuer\s*-?\s*(?:nummer|nr\b\.?)|st\.?\s*-?\s*nr\b\.?|tax\s*(?:id|number|no\b\.?)|"
                              r"siren|siret|n[°o]\s*tva|abn|ein\b)")
_VAT_CONTEXT_RE = re.compile(r"(?:ust|vat|tva|mwst|uid|iva|btw|tax|steuer|siret|vies)")
_BUYER_CONTEXT_RE = re.compile(r"(?:client|customer|kunde|ihre|your|buyer|acheteur|destinataire|empfanger|kaufer)")


# =========================================================================== label -> value lookups
@dataclass(frozen=True)
class Hit:
    """Where a label was found and the text that follows it (same cell, next cell, or the cell below)."""

    line: int
    seg: Seg
    label_end: int  # column where the label ends
    weight: int


@lru_cache(maxsize=64)
def _compile_labels(labels: tuple[Label, ...]) -> tuple[re.Pattern[str], list[tuple[re.Pattern[str], int]]]:
    """One regex per label, plus their union as a cheap first test for a cell."""
    parts = [(r"(?<![^\W\d_])" if lab.anywhere else r"^[^\w]*") + rf"(?:{lab.rx})(?![^\W\d_])" for lab in labels]
    anywhere = "|".join(f"(?:{lab.rx})" for lab in labels if lab.anywhere) or "(?!)"
    anchored = "|".join(f"(?:{lab.rx})" for lab in labels if not lab.anywhere) or "(?!)"
    # lookbehind hoisted out of the alternation: only word starts get to try the alternatives
    union = re.compile(rf"(?<![^\W\d_])(?:{anywhere})|^[^\w]*(?:{anchored})")
    return union, [(re.compile(p), lab.weight) for p, lab in zip(parts, labels)]


def _label_hits(doc: Doc, labels: tuple[Label, ...], lines: Iterable[Line] | None = None) -> list[Hit]:
    union, compiled = _compile_labels(labels)
    hits: list[Hit] = []
    for ln in lines if lines is not None else doc.nonempty():
        for seg in ln.segs:
            if not union.search(seg.folded):
                continue
            for rx, weight in compiled:
                m = rx.search(seg.folded)
                if m:
                    hits.append(Hit(ln.idx, seg, seg.col + m.end(), weight))
                    break
    return hits


def _row_date_text(doc: Doc, hit: Hit) -> str | None:
    """Header row of date labels over a row of dates ('ISSUE DATE DUE DATE' / '05/03/2025 04/04/2025', even
    when OCR merged the cells): the k-th label gets the k-th date."""
    ln = doc.lines[hit.line]
    f = fold(ln.text)
    found = sorted({(m.start(), m.end()) for rx in _DATE_LABEL_RES for m in rx.finditer(f)},
                   key=lambda sp: (sp[0], -sp[1]))
    order: list[tuple[int, int]] = []
    for sp in found:  # leftmost-longest, no overlaps: "ISSUE DATE DUE DATE" is two labels, not three
        if not order or sp[0] >= order[-1][1]:
            order.append(sp)
    row = next(iter(doc.nonempty(hit.line + 1)), None)
    if len(order) < 2 or row is None or doc.dates(ln):
        return None
    dates = doc.dates(row)
    k = next((i for i, (a, b) in enumerate(order) if a < hit.label_end <= b), None)
    if k is None or len(dates) != len(order):
        return None
    return row.text[dates[k].start:dates[k].end]


def _values_after(doc: Doc, hit: Hit, below: int = 3, row_dates: bool = False) -> Iterable[tuple[int, str]]:
    """Candidate value texts for a label, nearest first: rest of its cell, next cell, cells below in its column."""
    ln = doc.lines[hit.line]
    rest = hit.seg.text[hit.label_end - hit.seg.col:]
    rest = re.sub(r"^[\s:#.\-–—=]+(?=\S)", "", rest) if rest.strip(" :#.-–—=") else ""
    if rest:
        yield hit.line, rest
    nxt = [s for s in ln.segs if s.col > hit.seg.col]
    if nxt:
        yield hit.line, nxt[0].text
    if row_dates:
        text = _row_date_text(doc, hit)
        if text:
            yield hit.line + 1, text
    row = next(iter(doc.nonempty(hit.line + 1)), None)
    if row is not None and len(ln.segs) > 1 and len(row.segs) == len(ln.segs):
        yield row.idx, row.segs[ln.segs.index(hit.seg)].text  # header row over a value row: match by position
    seen = 0
    for below_ln in doc.nonempty(hit.line + 1):
        cell = _cell_below(below_ln, hit.seg.col, max(hit.label_end, hit.seg.end))
        if cell is not None:
            yield below_ln.idx, cell.text
        seen += 1
        if seen >= below:
            break


def _cell_below(ln: Line, col: int, end: int, slack: int = 12) -> Seg | None:
    """The cell of ``ln`` that sits under columns [col, end] (layouts drift a few characters)."""
    best, best_score = None, 0.0
    for s in ln.segs:
        overlap = min(end + slack, s.end) - max(col - slack, s.col)
        if overlap > 0:
            score = overlap - abs(s.col - col) * 0.1
            if best is None or score > best_score:
                best, best_score = s, score
    return best


def _first_value(doc: Doc, hits: list[Hit], parse: Callable[[str], Any], below: int = 3,
                 row_dates: bool = False) -> tuple[Any, Hit] | None:
    """Best label (by weight, then position) whose nearby text parses."""
    for hit in sorted(hits, key=lambda h: (-h.weight, h.line)):
        for _, text in _values_after(doc, hit, below, row_dates):
            value = parse(text)
            if value is not None:
                return value, hit
    return None


def _leading_date(doc: Doc) -> Callable[[str], dt.date | None]:
    """A date that opens the text (after at most a few characters): don't read far-away dates for a label."""
    def parse(text: str) -> dt.date | None:
        hits = find_dates(text, doc.dmy)
        if hits and hits[0].start <= 6:
            return hits[0].value
        return None
    return parse


# =========================================================================== invoice
_ID_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/._]*[A-Za-z0-9]|[0-9]")
_DOC_WORDS = r"(?:\w*rechnung|invoice|facture|gutschrift|credit\s+note|avoir|rechnungskorrektur|bill|quittung|receipt)"
_TITLE_STRICT_RE = re.compile(rf"\b{_DOC_WORDS}\b(?:\s*\([^)]*\))*\s*(?P<mark>n\s?°|(?:nr|no|number|nummer|numero|"
                              rf"num)\b\.?|#)?\s*[:#—–-]*\s*(?P<id>[A-Za-z0-9][A-Za-z0-9\-/._]*)")
_TITLE_LOOSE_RE = re.compile(rf"\b{_DOC_WORDS}\b(?P<filler>[^:\n]{{1,30}}?)"
                             rf"(?:\b(?:nr|no|number|nummer|numero)\b\.?|n\s?°)\s*[:#]?\s*"
                             rf"(?P<id>[A-Za-z0-9][A-Za-z0-9\-/._]*)")
_OTHER_REF_RE = re.compile(r"bestell|order|commande|liefer|deliver|auftrag|kunden|customer|client|vertrag|contract|"
                           r"referenz|reference|gemass|according|selon|account|konto")
_VOM_RE = re.compile(r"^\s*(?:vom|du|dated|of|from|le|date[d:]?)\s*[:]?\s*")


def _invoice_id(text: str, strict: bool = False) -> str | None:
    """An invoice number token: has a digit, is not a date or an amount with cents."""
    m = _ID_TOKEN_RE.match(text.strip().lstrip("#:№").strip())
    if not m:
        return None
    tok = m.group().rstrip(".-/")
    if not re.search(r"\d", tok) or len(tok) > 40:
        return None
    if find_dates(tok) and find_dates(tok)[0].end - find_dates(tok)[0].start == len(tok):
        return None
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})*[.,]\d{2}", tok):
        return None
    if strict and (len(tok) < 4 or re.fullmatch(r"(?:19|20)\d\d", tok)):
        return None
    return tok


def _title_number(doc: Doc) -> tuple[str, dt.date | None] | None:
    """'Rechnung Nr. 471102 vom 05.03.2018', 'Invoice FA-2017-0008': number (and date) from a title line."""
    lines = doc.head_tail()
    for i, ln in enumerate(lines):
        flat = ln.flat
        f = fold(flat)
        for rx in (_TITLE_STRICT_RE, _TITLE_LOOSE_RE):
            for m in rx.finditer(f):
                if rx is _TITLE_LOOSE_RE and _OTHER_REF_RE.search(m.group("filler")):
                    continue
                if rx is _TITLE_STRICT_RE:
                    after_mark = m.end("mark") if m.group("mark") else m.start("id")
                    if re.match(r"\s*(?:date|datum|to|an|a)\b", f[after_mark:]):
                        continue  # "Invoice date", "Invoice to"
                ident = _invoice_id(flat[m.start("id"):], strict=not (rx is _TITLE_LOOSE_RE or m.group("mark")))
                if not ident:
                    continue
                after = flat[m.start("id") + len(ident):]
                if _VOM_RE.match(fold(after)) and not find_dates(after, doc.dmy) and i + 1 < len(lines):
                    after += " " + lines[i + 1].flat
                date = None
                vm = _VOM_RE.match(fold(after))
                if vm:
                    dh = find_dates(after, doc.dmy)
                    date = dh[0].value if dh and dh[0].start <= vm.end() + 2 else None
                return ident, date
    for i, ln in enumerate(lines[:30]):  # "INVOICE" with "No. NWC-1042" in the cell below it
        if re.search(rf"\b{_DOC_WORDS}\s*$", fold(ln.flat)):  # title ends the line, number ends a line below
            for below in lines[i + 1:i + 3]:
                m = re.search(r"(?:^|\s)(?:nr|no|n\s?°|nº|number|#)\.?\s*[:#]?\s*(\S+)\s*$", fold(below.flat))
                ident = _invoice_id(below.flat[m.start(1):]) if m else None
                if ident:
                    return ident, None
        for seg in ln.segs:
            if not re.fullmatch(_DOC_WORDS, seg.folded.strip(" :")):
                continue
            for below in doc.nonempty(ln.idx + 1, ln.idx + 3):
                cells = [_cell_below(below, seg.col, seg.end, slack=6)]
                if seg is ln.segs[-1]:
                    cells.append(below.segs[-1])  # right-aligned title block: big fonts drift in text columns
                for cell in cells:
                    m = cell and re.match(r"(?:nr|no|n\s?°|nº|number|#)\.?\s*[:#]?\s*", fold(cell.text))
                    ident = _invoice_id(cell.text[m.end():]) if cell and m else None
                    if ident:
                        return ident, None
    return None


def _due_date(doc: Doc) -> dt.date | None:
    found = _first_value(doc, _label_hits(doc, DUE_DATE_LABELS, doc.head_tail()), _leading_date(doc), below=3,
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


@dataclass
class Party:
    name: str | None = None
    address: str | None = None
    lines: list[tuple[int, Seg]] = field(default_factory=list)


def _block(doc: Doc, line_idx: int, seg: Seg, rest: str | None, max_lines: int = 8) -> list[tuple[int, Seg]]:
    """Cells that belong to the address block under a label: same column, until another block label."""
    out: list[tuple[int, Seg]] = []
    if rest and rest.strip():
        out.append((line_idx, Seg(line_idx, seg.end - len(rest), rest.strip())))
    misses = 0
    for ln in doc.nonempty(line_idx + 1):
        if ln.page != doc.lines[line_idx].page:
            break
        cell = _cell_below(ln, seg.col, seg.end, slack=12)
        if cell is None:
            misses += 1
            if misses > 2:
                break
            continue
        f = fold(cell.text)
        if _SELLER_RE.match(f) or _BUYER_RE.match(f) or _DELIVERY_RE.match(f) or _OTHER_BLOCK_RE.match(f):
            break
        if cell.text.rstrip().endswith(":"):  # "Name:" with its value in the next cell
            nxt = [s for s in ln.segs if s.col > cell.col]
            if nxt:
                cell = Seg(ln.idx, cell.col, cell.text + " " + nxt[0].text)
        out.append((ln.idx, cell))
        if len(out) >= max_lines:
            break
    return out


_KV_RE = re.compile(r"^([^\W\d][\w.\- /]{0,30}?)\s*[:：]\s*(.*)$")
_NAME_KV_RE = re.compile(r"^\W*(?:name|firma|company|raison sociale|nom)\s*[:：]?\s+(.+)$", re.I)
_ADDRESS_HINT_RE = re.compile(r"\d{4,5}\s+\w|\b\d+(?:st|nd|rd|th)\s+floor|\bfloor\b|etage|stock\b|building|"
                              r"geb[aä]ude|\b\d+[a-z]?\s*$|^\d+\s+\w|strasse|str\.|straße|weg\b|platz\b|allee\b|"
                              r"road|street|\bst\b|avenue|\bave\b|rue\b|chemin|boulevard|suite|p\.?o\.? box|"
                              r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b", re.I)
_CONTACT_RE = re.compile(r"@|https?:|www\.|\+?\d[\d ()/.-]{8,}\d|^(?:tel|fon|fax|phone|e-?mail|mobil)\b", re.I)


def _clean_name(name: str) -> str:
    """Cut a name after its legal form: what follows on the line belongs to another column."""
    m = _LEGAL_RE.search(name)
    if m and m.start() > 0:
        end = m.end()
        tail = re.match(r"\s*&\s*Co\.?(?:\s*KG)?", name[end:])
        name = name[:end + (tail.end() if tail else 0)]
    return name.strip(" ,;")


def _looks_like_name(text: str) -> bool:
    t = text.strip()
    f = fold(t).strip(" .,:")
    if len(re.findall(r"[^\W\d_]", t)) < 2 or f in _COUNTRIES or f in _SALUTATIONS:
        return False
    if _CONTACT_RE.search(t) or (_ADDRESS_HINT_RE.search(t) and not _LEGAL_RE.search(t)):
        return False
    if re.fullmatch(r"[\W\d]*", t) or len(t) > 80 or (t[:1].isdigit() and not _LEGAL_RE.search(t)):
        return False
    return True


def _party_from_block(doc: Doc, cells: list[tuple[int, Seg]], prefer_company: bool, inline: bool = False) -> Party:
    """Name = a 'Name:' cell, else the first name-like cell (a company one line below a person wins for buyers).
    ``inline``: the label had its value beside it ('To: ...'), so only that first cell may be the name."""
    party = Party(lines=cells)
    texts = [c.text for _, c in cells]
    if inline:
        first = _clean_name(texts[0]) if texts else ""
        if _looks_like_name(first):
            party.name = first
            party.address = _address(texts[1:5])
        return party
    name_i: int | None = None
    for i, t in enumerate(texts[:4]):
        m = _NAME_KV_RE.match(t)
        if m and _looks_like_name(m.group(1)):
            party.name, name_i = m.group(1).strip(), i
            break
    if party.name is None:
        for i, t in enumerate(texts):
            t = _clean_name(t)
            kv = _KV_RE.match(t)
            if kv and not _LEGAL_RE.search(kv.group(1)):
                continue  # "Nummer: 549910", "GLN: ..."
            if re.fullmatch(r"(?i)(?:herrn?|frau|mr|mrs|ms|m|mme|monsieur|madame|firma|attn)\.?", t.strip()):
                continue
            if _looks_like_name(t):
                party.name, name_i = t.strip(), i
                break
            if i >= 3:
                break
        if (prefer_company and party.name and name_i is not None and not _LEGAL_RE.search(party.name)
                and name_i + 1 < len(texts) and _LEGAL_RE.search(texts[name_i + 1])
                and _looks_like_name(texts[name_i + 1])):
            party.name, name_i = texts[name_i + 1].strip(), name_i + 1
    if party.name is not None and name_i is not None:
        party.name = _clean_name(party.name)
        party.address = _address(texts[name_i + 1:name_i + 5])
    return party


_POSTCODE_RE = re.compile(r"\b\d{4,5}\s+[^\W\d_]|\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b|\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")


def _address(texts: list[str]) -> str | None:
    """Address lines under a name, up to the postcode line (and a country line after it)."""
    addr: list[str] = []
    done = False
    for t in texts:
        t = re.sub(r"(?i)^(?:anschrift|adresse|address)\s*:?\s*", "", t).strip()
        if not t or _CONTACT_RE.search(t) or (_KV_RE.match(t) and not _ADDRESS_HINT_RE.search(t)):
            continue
        if done:
            if fold(t) in _COUNTRIES:
                addr.append(t)
            break
        if _ADDRESS_HINT_RE.search(t) or fold(t) in _COUNTRIES:
            addr.append(t)
            done = bool(_POSTCODE_RE.search(t))
        elif addr:
            break
    return ", ".join(addr) or None


def _labelled_party(doc: Doc, label_re: re.Pattern[str], prefer_company: bool,
                    strictness: tuple[bool, ...] = (True, False)) -> Party | None:
    """Party under a block label; labels that are the whole cell first, then labels with text after them."""
    relaxed = _RELAXED[label_re.pattern]
    for strict in strictness:
        for ln in doc.head_tail():
            for seg in ln.segs:
                m = (label_re if strict else relaxed).match(seg.folded)
                if not m:
                    continue
                rest = seg.text[m.start("rest"):] if strict and m.group("rest") else None
                cells = _block(doc, ln.idx, seg, rest)
                party = _party_from_block(doc, cells, prefer_company, inline=bool(rest and rest.strip()))
                if party.name:
                    return party
    return None


_BULLET_RE = re.compile(r"[●•·|∙▪]")
_BANK_RE = re.compile(r"(?i)bank|sparkasse|iban|bic\b|swift|raiffeisen|credit agricole|caisse")


def _bullet_senders(doc: Doc) -> list[tuple[Line, str]]:
    """Lines like 'Firma GmbH · Straße 1 · 12345 Ort' (envelope sender line, letter footer): (line, first part).

    Both name the issuer first; a first part that is a bank or an address is no name and is skipped.
    """
    out = []
    for ln in doc.head_tail():
        if len(_BULLET_RE.findall(ln.text)) < 2 or not re.search(r"\b\d{4,5}\b", ln.text):
            continue
        first = next((s for s in ln.segs if not _BULLET_RE.fullmatch(s.text)), None)
        if first is None:
            continue
        sender = _BULLET_RE.split(first.text)[0].strip()
        if _looks_like_name(sender) and not _BANK_RE.search(sender) and not _ADDRESS_HINT_RE.search(sender):
            out.append((ln, sender))
    return out


def _envelope_recipient(doc: Doc, senders: list[tuple[Line, str]]) -> str | None:
    """The name right under a sender line near the top of page 1 (window envelope): the customer."""
    top = [ln.idx for ln in doc.nonempty() if ln.page == 0][:30]
    for ln, _ in senders:
        if ln.idx not in top:
            continue
        for below in doc.nonempty(ln.idx + 1, ln.idx + 4):
            cell = _cell_below(below, ln.segs[0].col, ln.segs[0].col + 20, slack=4)
            if cell and _looks_like_name(cell.text):
                return cell.text.strip()
    return None


_NAME_BREAKS = frozenset("on through by with from for to at via von durch bei mit fur par pour chez is are ist est "
                         "purchased paid made issued sold account name".split())


_PREFIX_LEGAL_RE = re.compile(r"^(?:SAS|SARL|SA|EURL|SCI|SASU|SNC|SELARL)\s+((?:[A-ZÀ-Ý][\w'’\-]*\s*){1,4})$")


def _company_names(text: str) -> list[tuple[str, bool]]:
    """Company names with a legal form in a cell: (name, whether the name is the whole cell part).
    The form usually ends the name ('Acme GmbH'); French forms may open it ('SAS Bâtir Ensemble')."""
    out: list[tuple[str, bool]] = []
    for part in re.split(r"\s+[-–|]\s+|[●•·|∙▪]", text):
        part = part.strip(" ,;")
        if _PREFIX_LEGAL_RE.match(part):
            out.append((part, True))
            continue
        for m in _LEGAL_RE.finditer(part):
            end = m.end()
            tail = re.match(r"\s*&\s*Co\.?(?:\s*KG)?", part[end:])
            if tail:
                end += tail.end()
            words = part[:m.start()].split()
            if not words:
                continue
            name_words: list[str] = []
            if (len(words) <= 5 and words[0][:1].isupper() and not any(fold(w) in _NAME_BREAKS for w in words)
                    and not any(w.isdigit() for w in words)):
                name_words = words  # the part is the name: "Au bon moulin SARL"
            for k, w in enumerate(reversed(words if not name_words else [])):
                if re.search(r"[:\"“”()\[\]]", w) or (w.endswith(",") and k > 0):
                    break
                if (w[:1].isupper() or w in ("&", "und", "and", "et", "de", "du", "des", "of", "the")) \
                        and len(name_words) < 6:
                    name_words.insert(0, w)
                else:
                    break
            while name_words and name_words[0].lower() in ("&", "und", "and", "et", "de", "du", "des", "of", "the"):
                name_words.pop(0)
            if not name_words or not re.search(r"[^\W\d_]{2}", " ".join(name_words)):
                continue
            name = (" ".join(name_words) + " " + part[m.start():end]).strip()
            name = re.sub(r"\s+,", ",", name)
            out.append((name, len(name_words) == len(words) and end >= len(part.rstrip(". ")) - 1))
    return out


def _letterhead_vendor(doc: Doc, exclude: set[tuple[int, int]], customer: str | None) -> str | None:
    """The issuer's company name: earliest legal-form name outside the buyer block, whole cells first."""
    best: tuple[float, str] | None = None
    first_page = [ln for ln in doc.nonempty() if ln.page == 0]
    top = {ln.idx for ln in first_page[:12]}
    cust = _fold_name(customer) if customer else None
    prev: Line | None = None
    for rank, ln in enumerate(doc.head_tail(head=1)):
        for seg in ln.segs:
            if (ln.idx, seg.col) in exclude:
                continue
            text = seg.text
            if not _LEGAL_RE.search(text):
                continue
            above = _cell_below(prev, seg.col, seg.end, slack=4) if prev is not None else None
            if _LEGAL_RE.fullmatch(text.strip()) and above is not None and _looks_like_name(above.text):
                text = above.text + " " + text  # "Northwind Creative" / "Ltd" on two lines
            for name, whole in _company_names(text):
                fn = _fold_name(name)
                if cust and (fn in cust or cust in fn) or _BANK_RE.search(name):
                    continue
                score = ((3 if whole else 0) + (2 if ln.idx in top else 0) - rank * 0.01
                         - (3 if _BANK_RE.search(ln.text) else 0))
                if best is None or score > best[0]:
                    best = (score, name)
        prev = ln
    return best[1] if best else None


def _fold_name(s: str) -> str:
    return re.sub(r"[\W_]+", "", fold(s))


def _top_line_name(doc: Doc, exclude: set[tuple[int, int]]) -> str | None:
    """Last resort for the issuer: a short capitalised cell among the first lines that is no title or label."""
    for ln in list(doc.nonempty())[:3]:
        for seg in ln.segs:
            if re.match(rf"\W*{_DOC_WORDS}\b", seg.folded):
                continue  # "FACTURE D'ACOMPTE" is a title
            t = re.sub(rf"(?i)\s+{_DOC_WORDS}\s*$", "", seg.text).strip()  # "Jordan Ellis Photography INVOICE"
            f = fold(t)
            if (ln.idx, seg.col) in exclude or re.search(rf"\b{_DOC_WORDS}\b", f) or ":" in t or re.search(r"\d", t):
                continue
            if _looks_like_name(t) and len(t.split()) <= 5 and t[:1].isupper():
                return t
    return None


def _vendor_tax_id(doc: Doc, exclude: set[tuple[int, int]]) -> str | None:
    """Seller's VAT ID (EU formats) or tax number: skipping the buyer block and 'your/customer VAT' lines."""
    fallback: str | None = None
    for ln in doc.head_tail():
        f = fold(ln.text)
        if not (_VAT_ID_RE.search(ln.text) or (fallback is None and _TAX_NO_LABEL_RE.search(f))):
            continue
        for seg in ln.segs:
            if (ln.idx, seg.col) in exclude:
                continue
            sf = seg.folded
            prefix = fold(ln.text[:seg.col + 1]) + sf
            if _BUYER_CONTEXT_RE.search(prefix[-60:]):
                continue
            m = _VAT_ID_RE.search(seg.text)
            if m and (_VAT_CONTEXT_RE.search(f) or m.start() == 0):
                return m.group()
            if fallback is None:
                lm = _TAX_NO_LABEL_RE.search(sf)
                if lm:
                    rest = seg.text[lm.end():].strip(" :.#") or next(
                        (s.text for s in ln.segs if s.col > seg.col), "")
                    tm = re.match(r"[A-Z]{0,3}\s?[\d][\d /.\-]{5,18}\d", rest)
                    if tm:
                        fallback = tm.group().strip()
    return fallback


@dataclass
class Cand:
    value: Decimal
    score: float
    line: int
    currency: str | None


def _amount_candidates(doc: Doc, lines: Iterable[Line] | None = None,
                       classify: Callable[[str], tuple[str, int] | None] = _classify_amount_label
                       ) -> dict[str, list[Cand]]:
    """Split each line into (label, amounts) groups and file each group's amounts under the label's field."""
    cands: dict[str, list[Cand]] = {"total": [], "subtotal": [], "tax": []}
    for ln in lines if lines is not None else doc.nonempty():
        amounts = doc.amounts(ln)
        if not amounts:
            continue
        text = _blank_dates(ln.text, doc.dates(ln))
        groups: list[tuple[str, bool, list[Amount]]] = []
        pos = 0
        for a in amounts + [None]:  # type: ignore[list-item]
            piece = text[pos:a.start if a else len(text)]
            label = _norm_label(piece)
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
            pref = len(money) - 1 if (fname == "tax" and has_rate and len(money) > 1) else 0
            for i, a in enumerate(money):
                cands[fname].append(Cand(a.value, score - (0 if i == pref else 1.5), ln.idx, a.currency))
    return cands


def _pick_totals(cands: dict[str, list[Cand]], printed: set[Decimal]) -> dict[str, Cand]:
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
    out = {name: lst[0] for name, lst in (("subtotal", subs), ("tax", taxes), ("total", totals)) if lst}
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


_CURRENCY_LABEL_RE = re.compile(r"(?:rechnungs)?wahrung|currency|devise|monnaie|betrage\s+in|amounts?\s+in|"
                                r"montants?\s+en|all\s+amounts\s+(?:are\s+)?in|payment\s+currency|invoice\s+currency")


def _currency(doc: Doc, total_line: int | None) -> str | None:
    """Currency label > marks on the total's line > most frequent code/symbol in the document."""
    for hit in _label_hits(doc, (Label(_CURRENCY_LABEL_RE.pattern, 3, False),)):
        for _, text in _values_after(doc, hit, below=1):
            m = re.match(rf"\s*(?:[:=]\s*)?({'|'.join(_CODES)})\b", text)
            if m:
                return m.group(1)
            m = re.match(r"\s*(?:[:=]\s*)?([€£$¥₹])", text)
            if m:
                return _SYMBOLS[m.group(1)]
            break
    if total_line is not None:
        c = _currency_counts(doc.lines[total_line].text)
        if c:
            return c.most_common(1)[0][0]
    c = _currency_counts(doc.text)
    return c.most_common(1)[0][0] if c else None


# ----------------------------------------------------------------------------- line items
_UNIT_WORDS = re.compile(r"^\s*(?:x\b|stk\.?|st\.?|stuck|pcs?\.?|pieces?|units?|unit\(s\)|liters?|liter\(s\)|"
                         r"kg|g|m2|m²|"
                         r"m|h|hrs?|hours?|std\.?|tag\(e\)|tage?|days?|monate?|months?|pauschal|psch|lfm|l|ea|each|"
                         r"qty|pkt|karton|fl)\b", re.I)
_DIGIT_RUN_RE = re.compile(r"\d+(?:[.,]\d+)*")
_SKIP_ITEM_LINE_RE = re.compile(r"\W*(?:(?:sub)?total|summe|netto|brutto|mwst|ust|vat|tva|tax|steuer|betrag|"
                                r"amount due|zwischensumme|rabatt|skonto|discount|payment|zahlung|bezahlt|paid|"
                                r"balance|solde|gesamt)\b")


def _num_tokens(doc: Doc, ln: Line) -> list[Amount]:
    """Numbers on an item line, without percentages, dates, codes glued to letters or long article numbers."""
    text = _blank_dates(ln.text, doc.dates(ln))
    out = []
    for a in find_amounts(text, doc.decimal, spaced=False):
        after = text[a.end:a.end + 2]
        if a.currency is None and (after[:1].isalpha() or re.match(r"[/\-]\d", after)):
            continue  # part of a word or code: "3m", "250g", "20/0500", "25-60"
        if a.decimals == 0 and len(str(abs(a.value))) > 7:
            continue
        out.append(a)
    return out


def _close(a: Decimal, b: Decimal) -> bool:
    """Equal up to rounding: unit prices are often printed rounded (20 × 2,77 printed as 55,46)."""
    return abs(a - b) <= max(Decimal("0.011"), abs(b) * Decimal("0.002"))


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
                if not _close(x.value * y.value * factor, a.value):
                    continue
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


def _line_items(doc: Doc, stop_line: int | None) -> list[dict[str, str]]:
    """Table rows whose numbers multiply out (qty × unit price ≈ amount); the amount may sit one line below."""
    items: list[dict[str, str]] = []
    lines = list(doc.nonempty(0, stop_line))
    for i, ln in enumerate(lines):
        if len(_DIGIT_RUN_RE.findall(ln.text)) < 3 or _SKIP_ITEM_LINE_RE.match(ln.segs[0].folded):
            continue  # too few numbers for qty × price = amount, or a totals row
        nums = _num_tokens(doc, ln)
        if len(nums) < 2:
            continue
        found = _item_from(nums, None, ln.text)
        if found is None and i + 1 < len(lines):
            below = [a for a in _num_tokens(doc, lines[i + 1]) if a.is_money]
            if len(below) == 1 and not re.search(r"[^\W\d_]{4,}", _blank_dates(lines[i + 1].text, [])
                                                 .replace(below[0].raw, "")):
                found = _item_from(nums, below[0], ln.text)
        if found is None:
            continue
        q, u, a = found
        desc = _description(ln, [q, u, a])
        if desc is None:
            continue
        items.append({"description": desc, "quantity": _qty(q.value), "unit_price": str(u.value),
                      "amount": _money(a.value)})
    return items


def _invoice(doc: Doc) -> dict[str, Any]:
    """Invoice fields; each group has its own rules (see the helpers below)."""
    out: dict[str, Any] = {}
    title = _title_number(doc)
    number = _first_value(doc, _label_hits(doc, INVOICE_NUMBER_LABELS, doc.head_tail()), _invoice_id, below=1)
    if number:
        out["invoice_number"] = number[0]
    elif title:
        out["invoice_number"] = title[0]
    out.update(_invoice_dates(doc, title[1] if title else None))
    cands = _amount_candidates(doc)
    out.update(_invoice_parties(doc, reads_as_invoice="invoice_number" in out or bool(cands["total"])))
    out.update(_invoice_amounts(doc, cands))
    return out


def _invoice_dates(doc: Doc, title_date: dt.date | None) -> dict[str, str]:
    """Issue date: specific label > 'Nr. X vom DATE' > generic 'Date:' > first date. Due date: labels, then
    payment terms; a due date before the issue date is a misread and dropped."""
    out: dict[str, str] = {}
    hits = _label_hits(doc, INVOICE_DATE_LABELS, doc.head_tail())
    specific = _first_value(doc, [h for h in hits if h.weight >= 3], _leading_date(doc), row_dates=True)
    generic = _first_value(doc, [h for h in hits if h.weight < 3], _leading_date(doc), below=1, row_dates=True)
    issued = (specific[0] if specific else title_date if title_date else generic[0] if generic
              else next((h.value for ln in doc.nonempty() for h in doc.dates(ln)), None))
    if issued:
        out["invoice_date"] = issued.isoformat()
    due = _due_date(doc)
    if due and (issued is None or due >= issued):
        out["due_date"] = due.isoformat()
    return out


def _invoice_parties(doc: Doc, reads_as_invoice: bool) -> dict[str, str]:
    """Customer first (its block is then off limits for the vendor), then vendor and the vendor's tax ID.

    Customer: 'Bill to'-style block > name under an envelope sender line > delivery block > the same labels
    with other text beside them. Vendor: seller block > sender line > letterhead company > first line.
    """
    out: dict[str, str] = {}
    buyer = _labelled_party(doc, _BUYER_RE, prefer_company=True, strictness=(True,))
    senders = _bullet_senders(doc)
    if buyer is None:
        recipient = _envelope_recipient(doc, senders)
        buyer = (Party(name=recipient) if recipient else
                 _labelled_party(doc, _DELIVERY_RE, prefer_company=True, strictness=(True,))
                 or _labelled_party(doc, _BUYER_RE, prefer_company=True, strictness=(False,))
                 or _labelled_party(doc, _DELIVERY_RE, prefer_company=True, strictness=(False,)))
    exclude = {(i, s.col) for i, s in buyer.lines} if buyer else set()
    buyer_name = buyer.name if buyer else None
    seller = _labelled_party(doc, _SELLER_RE, prefer_company=False)
    sender = next((n for _, n in senders if _fold_name(n) != _fold_name(buyer_name or "\0")), None)
    vendor = (seller.name if seller else None) or sender or _letterhead_vendor(doc, exclude, buyer_name)
    if vendor is None and reads_as_invoice:
        vendor = _top_line_name(doc, exclude)
    if vendor:
        out["vendor_name"] = vendor
    if seller and seller.address:
        out["vendor_address"] = seller.address
    if buyer and buyer_name and _fold_name(buyer_name) != _fold_name(vendor or ""):
        out["customer_name"] = buyer_name
        if buyer.address:
            out["customer_address"] = buyer.address
    tax_id = _vendor_tax_id(doc, exclude)
    if tax_id:
        out["vendor_tax_id"] = tax_id
    return out


def _invoice_amounts(doc: Doc, cands: dict[str, list[Cand]]) -> dict[str, Any]:
    """Totals (consistent triple), currency (label > total's line > most frequent), and the item rows above
    the totals."""
    out: dict[str, Any] = {}
    picked = _pick_totals(cands, doc.money_values())
    for name in ("subtotal", "tax", "total"):
        if name in picked:
            out[name] = _money(picked[name].value)
    currency = _currency(doc, picked["total"].line if "total" in picked else None)
    if currency:
        out["currency"] = currency
    out["line_items"] = _line_items(doc, min((c.line for c in picked.values()), default=None))
    return out


# =========================================================================== receipt
_RECEIPT_LABELS: dict[str, tuple[tuple[str, int], ...]] = {  # compiled below
    "total": (
        (r"total|summe|gesamt|gesamtbetrag|zu zahlen|total ttc|total eur|endbetrag|betrag|a payer|net a payer|"
         r"montant|amount|grand total|total due|amount due|totale|importe|total a payer|montant ttc|sum", 3),
        (r"bar|cash|kartenzahlung|ec karte|girocard|card|visa|mastercard|espece|especes|cb|gegeben|paid", 0),
    ),
    "subtotal": ((r"sub ?total|zwischensumme|netto|net|total ht|sous total|summe netto", 3),),
    "tax": ((r"(?:mwst|ust|tax|vat|tva|steuer|mehrwertsteuer|umsatzsteuer|iva)(?: ?betrag| total| amount)?|"
             r"(?:total|summe|gesamt) (?:mwst|tax|vat|tva|steuer)", 3),),
}
# Lines at the top of a receipt that are not the merchant's name
_RECEIPT_SKIP_RE = re.compile(r"\b(?:kassenbon|quittung|beleg|receipt|rechnung|invoice|ticket|welcome|willkommen|"
                              r"bienvenue|merci|thank|danke|kasse|bon|tel|fax)\b|^\W*$|^\d|www\.|@")
_RECEIPT_STOP_RE = re.compile(r"\b(?:bar|cash|ruckgeld|change|gegeben|rendu|karte|card|visa|mastercard|girocard|ec\b|"
                              r"mwst|ust|tax|vat|tva|netto|brutto|steuer|summe|total|gesamt|zu zahlen|betrag|"
                              r"payment|zahlung|tse|signatur|transaktion|terminal|espece|especes|visa|cb|subtotal|"
                              r"zwischensumme)\b")


_RECEIPT_TABLE = _compile_table(_RECEIPT_LABELS)


@lru_cache(maxsize=4096)
def _classify_receipt_label(label: str) -> tuple[str, int] | None:
    return _classify(label, _RECEIPT_TABLE, 1)


def _receipt(doc: Doc) -> dict[str, Any]:
    """Merchant = a company name in the first lines, else the first line that is no greeting or receipt title;
    totals as for invoices but with till labels (SUMME, TOTAL TTC, Zu zahlen; cash handed over ranks last)."""
    out: dict[str, Any] = {}
    lines = list(doc.nonempty())
    head = lines[:8]
    names = [(ln, n) for ln in head for s in ln.segs for n, _ in _company_names(s.text)]
    merchant_line: Line | None = None
    if names:
        merchant_line, out["merchant_name"] = names[0][0], names[0][1]
    else:
        for ln in head:
            t = ln.flat.strip()
            if not _RECEIPT_SKIP_RE.search(fold(t)) and len(re.findall(r"[^\W\d_]", t)) >= 3 and not doc.dates(ln):
                merchant_line, out["merchant_name"] = ln, t
                break
    if merchant_line is not None:
        addr = []
        for ln in doc.nonempty(merchant_line.idx + 1, merchant_line.idx + 5):
            t = ln.flat.strip()
            if _ADDRESS_HINT_RE.search(t) and not _CONTACT_RE.search(t) and not doc.dates(ln):
                addr.append(t)
            elif addr:
                break
        if addr:
            out["merchant_address"] = ", ".join(addr[:3])
    first_date = next((h.value for ln in lines for h in doc.dates(ln)), None)
    if first_date:
        out["date"] = first_date.isoformat()
    picked = _pick_totals(_amount_candidates(doc, classify=_classify_receipt_label), doc.money_values())
    for name in ("tax", "total"):
        if name in picked:
            out[name] = _money(picked[name].value)
    total_line = picked["total"].line if "total" in picked else None
    currency = _currency(doc, total_line)
    if currency:
        out["currency"] = currency
    start = merchant_line.idx + 1 if merchant_line is not None else 0
    out["items"] = _receipt_items(doc, start, total_line)
    return out


_QTY_X_RE = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d+)?)\s*(?:stk\.?|st\.?|pcs?\.?|kg)?\s*(?:x|\*|×|@)\s*"
                       r"(?:[€$£]\s?)?(\d+[.,]\d{2,3})(?!\d)", re.I)
_LEAD_QTY_RE = re.compile(r"^\s*(\d{1,3})\s*[x×]?\s+(?=[^\W\d_])")  # "2 Latte 12oz  @4.75  9.50"
_AT_PRICE_RE = re.compile(r"@\s*(?:[€$£]\s?)?(\d+[.,]\d{2})")


def _receipt_items(doc: Doc, start: int, stop: int | None) -> list[dict[str, str]]:
    """Receipt rows up to the totals: 'Name ... 1,29 A', with a quantity part '3 x 0,85' on the same line,
    on its own line after the item (REWE) or before it, or with the price under the name (bakery tills)."""
    items: list[dict[str, str]] = []
    pending_name: str | None = None
    pending_qty: tuple[Decimal, Decimal] | None = None

    def dec(text: str) -> Decimal:
        return (_to_decimal(text, doc.decimal) or (Decimal(0), 0))[0]

    def with_qty(item: dict[str, str], q: Decimal, u: Decimal) -> bool:
        if "quantity" not in item and _close(q * u, Decimal(item["amount"])):
            item.update(quantity=_qty(q), unit_price=str(u))
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
        desc = _blank_spans(rest, ((a.start, a.end) for a in money))
        desc = re.sub(r"\s+[A-D]\s*$", "", desc)           # VAT class letter
        desc = re.sub(r"\s+", " ", desc).strip(" *:-@")
        lead = _LEAD_QTY_RE.match(desc)
        at = _AT_PRICE_RE.search(flat)
        has_desc = len(re.findall(r"[^\W\d_]", desc)) >= 3
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
        item = {"description": desc if has_desc else pending_name or "", "amount": _money(amount)}
        if lead and has_desc and at:
            item["description"] = desc[lead.end():].strip()
            with_qty(item, Decimal(lead.group(1)), dec(at.group(1)))
        for cand in (qty, pending_qty):
            if cand and with_qty(item, *cand):
                break
        pending_name, pending_qty = None, None
        items.append(item)
    return items


# =========================================================================== document
# Keyword regexes (folded text) per document type; compounds count ("Mietrechnung", "Kaufvertrag").
_DOC_TYPES: dict[str, tuple[str, ...]] = {
    "invoice": (r"invoice", r"\w*rechnung", r"facture", r"invoice (?:number|no|date)", r"rechnungs\w+", r"amount due",
                r"bill(?:ed)? to", r"zahlbar", r"due date", r"fattura", r"factura", r"factuur", r"total ttc"),
    "credit note": (r"credit note", r"gutschrift", r"avoir", r"rechnungskorrektur"),
    "receipt": (r"receipt", r"kassenbon", r"quittung", r"kassenbeleg", r"ticket de caisse", r"recu", r"change",
                r"ruckgeld", r"bar", r"cash", r"cashier", r"kasse", r"bon"),
    "contract": (r"contract", r"agreement", r"\w*vertrag", r"contrat", r"hereby", r"parties", r"party", r"clause",
                 r"terms and conditions", r"\w*vereinbarung", r"vertragspartner\w*", r"whereas", r"§"),
    "letter": (r"dear", r"sincerely", r"kind regards", r"sehr geehrte\w*", r"mit freundlichen grussen", r"madame",
               r"monsieur", r"cordialement", r"veuillez agreer", r"betreff", r"objet"),
    "report": (r"report", r"\w*bericht", r"rapport", r"summary", r"analysis", r"results", r"findings", r"conclusions?",
               r"introduction", r"chapter", r"kapitel", r"einleitung", r"abstract", r"zusammenfassung",
               r"table of contents", r"inhaltsverzeichnis", r"table des matieres", r"sommaire", r"preface", r"vorwort",
               r"bibliography", r"literaturverzeichnis", r"references", r"figure", r"abbildung"),
    "purchase order": (r"purchase order", r"bestellung", r"bon de commande", r"order number", r"po number"),
    "quotation": (r"quotation", r"quote", r"angebot", r"devis", r"kostenvoranschlag", r"valid until", r"gultig bis"),
    "delivery note": (r"delivery note", r"lieferschein", r"bon de livraison", r"packing list"),
    "bank statement": (r"bank statement", r"kontoauszug", r"releve de compte", r"opening balance", r"closing balance"),
    "payslip": (r"payslip", r"lohnabrechnung", r"gehaltsabrechnung", r"bulletin de paie", r"gross pay", r"net pay"),
}
_DOC_TYPE_RES = {kind: [re.compile(rf"(?<![^\W\d_]){w}(?![^\W\d_])") for w in words]
                 for kind, words in _DOC_TYPES.items()}
_TOKEN_RE = re.compile(r"[^\W\d_]+|§")
_SINGLE_WORD_RES = {w: re.compile(w) for words in _DOC_TYPES.values() for w in words if " " not in w}
_ANY_SINGLE_WORD_RE = re.compile("|".join(f"(?:{w})" for w in _SINGLE_WORD_RES))


def _keyword_counts(text: str) -> Counter[str]:
    """Occurrences of every keyword in ``text``: single words are looked up among the distinct words (fast even
    for '\\w*rechnung' on a 100-page text); phrases are searched only if their first word occurs at all."""
    counts: Counter[str] = Counter()
    for word, n in Counter(_TOKEN_RE.findall(text)).items():
        if _ANY_SINGLE_WORD_RE.fullmatch(word):
            for w, rx in _SINGLE_WORD_RES.items():
                if rx.fullmatch(word):
                    counts[w] += n
    for rxs in _DOC_TYPE_RES.values():
        for rx in rxs:
            if " " in rx.pattern:
                lead = re.match(r"[a-z]+", rx.pattern.split(")", 1)[1])
                if lead is None or lead.group() in text:
                    counts[rx.pattern] = len(rx.findall(text))
    return counts
_SUBJECT_RE = re.compile(r"^\W*(?:betreff|subject|objet|re|concerne|betrifft)\s*:\s*(.+)$", re.I)


def _document_type(doc: Doc) -> str | None:
    """Keyword scoring: the top of page 1 weighs most, then page 1 (documents announce what they are)."""
    lines = list(doc.nonempty())
    top = fold(" ".join(ln.flat for ln in lines[:12]))
    first = fold(" ".join(ln.flat for ln in lines[12:] if ln.page == 0))
    rest = fold(" ".join(ln.flat for ln in lines if ln.page > 0)[:200_000])
    zones = [_keyword_counts(text) for text in (top, first, rest)]
    scores: Counter[str] = Counter()
    for kind, words in _DOC_TYPES.items():
        for w, rx in zip(words, _DOC_TYPE_RES[kind]):
            key = rx.pattern if " " in w else w
            # capped per keyword: one word repeated all over (a "§" per clause) must not decide alone
            n_top, n_first, n_rest = (z[key] for z in zones)
            scores[kind] += 4 * min(3, n_top) + 2 * min(5, n_first) + min(5, n_rest)
    if not scores or scores.most_common(1)[0][1] < 2:
        return None
    return scores.most_common(1)[0][0]


def _repeated_lines(doc: Doc) -> set[str]:
    """Lines printed on several pages (headers, footers; page numbers ignored): never a title or a fact."""
    if doc._furniture is None:
        pages: dict[str, set[int]] = {}
        for ln in doc.nonempty():
            pages.setdefault(_furniture_key(ln.text), set()).add(ln.page)
        doc._furniture = {k for k, v in pages.items() if len(v) > 1}
    return doc._furniture


def _furniture_key(text: str) -> str:
    return re.sub(r"[\W\d_]+", "", fold(text))


def _title(doc: Doc) -> str | None:
    """Subject line > a short cell naming the document ('INVOICE', 'Mietvertrag') > first prominent line."""
    furniture = _repeated_lines(doc)
    lines = [ln for ln in list(doc.nonempty())[:30] if _furniture_key(ln.text) not in furniture]
    for ln in lines:
        m = _SUBJECT_RE.match(ln.flat)
        if m and len(m.group(1)) > 2:
            return m.group(1).strip()
    kinds = [rx for rxs in _DOC_TYPE_RES.values() for rx in rxs[:3]]
    for ln in lines[:10]:
        for seg in ln.segs:
            if len(seg.text.split()) <= 8 and any(rx.search(seg.folded) for rx in kinds):
                return seg.text.strip()
    for ln in lines[:15]:
        t = ln.flat.strip()
        words = t.split()
        if (len(re.findall(r"[^\W\d_]", t)) >= 4 and len(words) <= 14 and not _CONTACT_RE.search(t)
                and not re.match(r"(?i)^(?:page|seite|p\.)\s*\d", t) and not doc.dates(ln) and ":" not in t[:25]):
            return t
    return None


def _document(doc: Doc, pages: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    title = _title(doc)
    if title:
        out["title"] = title
    kind = _document_type(doc)
    if kind:
        out["document_type"] = kind
    labelled = _first_value(doc, [h for h in _label_hits(doc, INVOICE_DATE_LABELS)], _leading_date(doc), below=1)
    first_date = labelled[0] if labelled else next((h.value for ln in doc.nonempty() for h in doc.dates(ln)), None)
    if first_date:
        out["date"] = first_date.isoformat()
    parties: list[str] = []
    seen: set[str] = set()
    for label_re in (_SELLER_RE, _BUYER_RE):
        p = _labelled_party(doc, label_re, prefer_company=label_re is _BUYER_RE)
        if p and p.name and _fold_name(p.name) not in seen:
            seen.add(_fold_name(p.name))
            parties.append(p.name)
    for ln in doc.nonempty():
        if len(parties) >= 10:
            break
        for seg in ln.segs:
            for name, _ in _company_names(seg.text) if _LEGAL_RE.search(seg.text) else ():
                key = _fold_name(name)
                if key not in seen and not any(key in s or s in key for s in seen):
                    seen.add(key)
                    parties.append(name)
    if parties:
        out["parties"] = parties[:10]  # the first ten: a long report names many, the opening ones matter
    if doc.lang:
        out["language"] = doc.lang
    out["key_facts"] = _key_facts(doc, pages)
    return out


_MONEY_WORDS = re.compile(r"\b(?:total|betrag|summe|amount|fee|price|preis|prix|montant|cost|kosten|tax|mwst|tva|vat|"
                          r"miete|rent|salary|gehalt|zahl|pay|paie|kaution|deposit)")


def _key_facts(doc: Doc, pages: list[str], limit: int = 8) -> list[str]:
    """Sentences or table lines that state an amount or a date, in order, without page furniture or repeats."""
    furniture = _repeated_lines(doc)
    facts: list[str] = []
    seen: set[str] = set()
    for _, unit in text_units(pages)[:1500]:  # facts come early; bounded work on long documents
        if not re.search(r"\d", unit) or len(unit) > 300:
            continue
        text = re.sub(r"^[\W_]{3,}|\s{2,}", " ", unit).strip()
        key = _fold_name(text)
        if not key or key in seen or _furniture_key(text) in furniture or not _WORD_RE.search(text):
            continue
        dated = bool(find_dates(text, doc.dmy))
        amounts = [a for a in find_amounts(_blank_dates(text, find_dates(text, doc.dmy)), doc.decimal) if a.value]
        money = any(a.currency for a in amounts) or (any(a.is_money for a in amounts)
                                                     and bool(_MONEY_WORDS.search(fold(text))))
        if dated or money:
            seen.add(key)
            facts.append(text)
            if len(facts) >= limit:
                break
    return facts


# =========================================================================== generic (user schemas)
def _scalar_kind(ann: Any) -> tuple[str, tuple[Any, ...]] | None:
    """'date' / 'decimal' / 'float' / 'int' / 'bool' / 'str' / 'literal' for a field's type; None for lists/models."""
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return _scalar_kind(args[0]) if len(args) == 1 else None
    if origin is typing.Literal:
        return "literal", typing.get_args(ann)
    if origin is typing.Annotated:
        return _scalar_kind(typing.get_args(ann)[0])
    table = {dt.date: "date", dt.datetime: "date", Decimal: "decimal", float: "float", int: "int", bool: "bool",
             str: "str"}
    kind = table.get(ann)
    return (kind, ()) if kind else None


_STOP_LEAD = frozenset("the a an der die das le la les el los il".split())


def _field_labels(name: str, description: str | None) -> list[str]:
    """Label phrasings for a field: its name's words, and the first words of its description."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_").split("_")
    labels = [" ".join(w for w in words if w)]
    if description:
        dwords = re.split(r"[^\w']+", fold(description.split(".")[0].split(",")[0]))
        dwords = [w for w in dwords if w]
        while dwords and dwords[0] in _STOP_LEAD:
            dwords.pop(0)
        for k in (3, 2):
            if len(dwords) >= k:
                labels.append(" ".join(dwords[:k]).replace("'s", ""))
    out: list[str] = []
    for lab in labels:
        if lab and lab not in out:
            out.append(lab)
    return out


def _coerce(doc: Doc, kind: str, args: tuple[Any, ...], text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    if kind == "date":
        d = _leading_date(doc)(text)
        return d.isoformat() if d else None
    if kind in ("decimal", "float"):
        found = find_amounts(text, doc.decimal)
        if not found or found[0].start > 4:
            return None
        return str(found[0].value) if kind == "decimal" else float(found[0].value)
    if kind == "int":
        m = re.match(r"[#:\s]*([-+]?\d[\d.,' ]*)", text)
        if not m:
            return None
        digits = re.sub(r"[^\d-]", "", m.group(1))
        return int(digits) if re.fullmatch(r"-?\d+", digits) else None
    if kind == "bool":
        f = fold(text).split()[0].strip(".,;")
        if f in ("yes", "true", "ja", "oui", "y", "x", "1", "si"):
            return True
        if f in ("no", "false", "nein", "non", "n", "0"):
            return False
        return None
    if kind == "literal":
        f = fold(text)
        for a in args:
            if isinstance(a, str) and fold(a) in f.split() + [f]:
                return a
        return None
    return text[:500]


def _generic(doc: Doc, model: type[BaseModel]) -> dict[str, Any]:
    """For user schemas: 'Label: value' lines whose label matches the field, coerced by the field's type."""
    out: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        kind = _scalar_kind(f.annotation)
        if kind is None:
            continue
        for lab in _field_labels(name, f.description):
            value = _generic_value(doc, lab, lambda t, k=kind: _coerce(doc, k[0], k[1], t))
            if value is not None:
                out[name] = value
                break
    return out


def _generic_value(doc: Doc, label: str, parse: Callable[[str], Any]) -> Any:
    """First 'Label[ a few words]: value' cell (or a label cell with its value in the next cell or below)."""
    words = r"\s*[-_ ]?\s*".join(re.escape(w) for w in label.split())
    rx = re.compile(rf"^[^\w]*{words}(?![^\W\d_])(?:[^:=\n]{{0,25}}?\s*[:=]|\s*$)\s*(?P<value>.*)$")
    for ln in doc.nonempty():
        for seg in ln.segs:
            m = rx.match(seg.folded)
            if not m:
                continue
            candidates = [seg.text[m.start("value"):]] if m.group("value").strip() else []
            candidates += [s.text for s in ln.segs if s.col > seg.col][:1]
            below = next(iter(doc.nonempty(ln.idx + 1)), None)
            cell = _cell_below(below, seg.col, seg.end) if below is not None and not candidates else None
            candidates += [cell.text] if cell else []
            for text in candidates:
                value = parse(text)
                if value is not None:
                    return value
    return None


# =========================================================================== entry point
_HANDLERS: dict[str, Callable[[Doc, list[str]], dict[str, Any]]] = {
    "invoice": lambda doc, _: _invoice(doc), "receipt": lambda doc, _: _receipt(doc), "document": _document}


def extract_fields(pages: list[str], schema: "SchemaInfo") -> dict:
    """Page texts (reading order, one string per page) -> dict of the schema's fields (JSON-able: str dates ISO,
    money as decimal strings like "1234.56"). Omit what you cannot find; never guess wildly."""
    pages = [p or "" for p in pages]
    doc = Doc(pages)
    if not any(ln.segs for ln in doc.lines):
        return {}
    handler = _HANDLERS.get(schema.name)
    result = handler(doc, pages) if handler else _generic(doc, schema.model)
    return _conform(result, schema.model)


def _conform(result: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Keep only the model's fields, drop empties, and drop any field the model rejects (never fail the document)."""
    out = {k: v for k, v in result.items() if k in model.model_fields and v not in (None, "", [])}
    for _ in range(len(out) + 1):
        try:
            model.model_validate(out)
            return out
        except ValidationError as e:
            bad = {err["loc"][0] for err in e.errors() if err.get("loc")}
            if not bad & out.keys():
                return {}
            for k in bad:
                out.pop(k, None)  # type: ignore[arg-type]
    return out
