"""Money in free text: amounts with signs, grouping and currency marks; currency evidence; money formatting."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

CURRENCY_CODES = ("EUR", "USD", "GBP", "CHF", "CAD", "AUD", "NZD", "JPY", "CNY", "SEK", "NOK", "DKK", "PLN", "CZK",
                  "HUF", "INR", "BRL", "MXN", "ZAR", "SGD", "HKD", "RUB", "ILS", "AED", "RON", "BGN", "ISK", "KRW",
                  "MYR")
CURRENCY_SYMBOLS: dict[str, str] = {
    "US$": "USD", "CA$": "CAD", "C$": "CAD", "AU$": "AUD", "A$": "AUD", "NZ$": "NZD", "S$": "SGD", "HK$": "HKD",
    "R$": "BRL", "€": "EUR", "£": "GBP", "$": "USD", "¥": "JPY", "₹": "INR", "₽": "RUB", "₪": "ILS", "zł": "PLN",
    "Kč": "CZK", "Fr.": "CHF", "RM": "MYR"}
CURRENCY_PATTERN = ("|".join(re.escape(s) for s in sorted(CURRENCY_SYMBOLS, key=len, reverse=True) if s != "Fr.")
                    + r"|(?<![A-Za-z])(?:" + "|".join(CURRENCY_CODES) + r")(?![A-Za-z])")
_NUM_CORE = r"\d{1,3}(?:(?P<g>[.,'’])\d{3})(?:(?P=g)\d{3})*(?:[.,]\d{1,4})?|\d+(?:[.,]\d{1,4})?"
# French "1 234,56": only with decimals, so a quantity and a price never merge
_NUM_SPACED = r"\d{1,3}(?:[ \u00a0\u202f]\d{3})+,\d{2}"


def _amount_re(spaced: bool) -> re.Pattern[str]:
    num = (_NUM_SPACED + "|" if spaced else "") + _NUM_CORE
    return re.compile(  # the lookahead fails fast on the letters and spaces that make up most text
        rf"(?=[-−–(\d€$£¥₹₽₪A-Zzk])(?<![\w.,/\-])(?P<lp>\()?(?P<sign>[-−–] ?)?"
        rf"(?:(?P<c1>{CURRENCY_PATTERN}) ?)?(?P<sign2>[-−])?"
        rf"(?P<num>{num})(?![.,]?\d)(?: ?(?P<c2>{CURRENCY_PATTERN}))?(?P<tail>-(?![\w])|\))?(?! ?%)")


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


def to_decimal(num: str, decimal_mark: str) -> tuple[Decimal, int] | None:
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
        # one mark repeated: thousands grouping, unless the last group is too short to be one ('1.734.27': a
        # scan read the decimal comma as a dot)
        dec = s[last] if tail in (1, 2) else None
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
    return CURRENCY_SYMBOLS.get(mark, mark if mark in CURRENCY_CODES else None)


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
        parsed = to_decimal(m.group("num"), decimal_mark)
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


def format_money(d: Decimal) -> str:
    return str(d.quantize(Decimal("0.01")))


def format_qty(d: Decimal) -> str:
    """Quantity without trailing zeros: '3', '2.5' (prices keep the decimals printed)."""
    return format(d.normalize(), "f")


_CODE_WORD_RE = re.compile(rf"\b({'|'.join(CURRENCY_CODES)})\b")
_DOLLAR_VARIANTS = re.compile(r"(?<![A-Za-z])(US|CA|AU|NZ|HK|[CASR])\$")


def currency_counts(text: str, context: str | None = None) -> Counter[str]:
    """Currency evidence in the text: ISO codes and symbols ($ only counts as USD when no other dollar is named, in
    ``text`` or in the whole document's ``context``)."""
    c: Counter[str] = Counter(_CODE_WORD_RE.findall(text))
    for sym, code in CURRENCY_SYMBOLS.items():
        if len(sym) == 1 and sym != "$" and sym in text:
            c[code] += text.count(sym)
    for m in _DOLLAR_VARIANTS.finditer(text):
        c[CURRENCY_SYMBOLS[m.group(0)]] += 1
    plain_dollars = text.count("$") - len(_DOLLAR_VARIANTS.findall(text))
    if plain_dollars > 0:
        other = [k for k in ("CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "BRL") if c[k]]
        c[other[0] if other else _dollar_country(context or text)] += plain_dollars
    return +c  # drop zero counts


# Where a plain "$" is not the US dollar: the issuer's tax number or its state and postcode name the country (not a
# country's name: a Canadian shop billing a customer abroad prints "$" for US dollars)
#: An Australian state and postcode ("NSW 2015"), a Canadian province and postal code ("ON M5J 2J2")
AU_STATE_POSTCODE = r"\b(?:NSW|VIC|QLD|TAS|ACT)\s+\d{4}\b"
CA_PROVINCE_POSTCODE = r"\b(?:ON|QC|BC|AB|MB|SK|NS|NB|NL|PE)\s+[A-Z]\d[A-Z] ?\d[A-Z]\d\b"
_DOLLAR_COUNTRIES = (
    ("AUD", re.compile(r"\bABN\b|" + AU_STATE_POSTCODE)),
    ("CAD", re.compile(r"\bGST/HST\b|\bHST\b|" + CA_PROVINCE_POSTCODE)),
    ("NZD", re.compile(r"\bIRD\s+(?:No|Number)\b")),
    ("SGD", re.compile(r"\bUEN\b")),
)


def _dollar_country(text: str) -> str:
    """USD unless the text names another dollar country (an ABN, a state and postcode, a GST/HST number)."""
    return next((code for code, rx in _DOLLAR_COUNTRIES if rx.search(text)), "USD")


def about_equal(a: Decimal, b: Decimal) -> bool:
    """Equal up to rounding: unit prices are often printed rounded (20 × 2,77 printed as 55,46)."""
    return abs(a - b) <= max(Decimal("0.011"), abs(b) * Decimal("0.002"))
