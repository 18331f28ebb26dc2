"""Document-wide locale cues: language (by stopwords), day-first date order and the decimal mark."""

from __future__ import annotations

import re
from collections import Counter

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
WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_STOPWORD_LANGS: dict[str, list[str]] = {}
for _lang, _words in _STOPWORDS.items():
    for _w in _words:
        _STOPWORD_LANGS.setdefault(_w, []).append(_lang)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code by stopword counts (first 50,000 characters); None when there is too little text to tell."""
    counts: Counter[str] = Counter()
    for w in WORD_RE.findall(text[:50_000].lower()):
        for lang in _STOPWORD_LANGS.get(w, ()):
            counts[lang] += 1
    if not counts:
        return None
    lang, n = counts.most_common(1)[0]
    return lang if n >= 2 else None


def guess_day_first(text: str, lang: str | None) -> bool:
    """Order of numeric d/m/y dates for the whole document: values > 12 decide, else language/currency."""
    day_first = month_first = 0
    for m in re.finditer(r"(?<![\d.])(\d{1,2})([/-])(\d{1,2})\2(?:\d{4}|\d{2})(?!\d)", text):
        a, b = int(m.group(1)), int(m.group(3))
        if a > 12 >= b:
            day_first += 1
        elif b > 12 >= a:
            month_first += 1
    if day_first != month_first:
        return day_first > month_first
    us = lang == "en" and bool(re.search(r"\$|\bUSD\b", text)) and not re.search(
        r"[€£₹]|\b(?:EUR|GBP|MYR|SGD|AUD|NZD|INR|ZAR|HKD|RM)\b|\bRM ?\d", text)  # day-first countries' money
    return not us


def guess_decimal_mark(text: str, lang: str | None) -> str:
    """',' or '.': the mark seen more often before exactly two final digits, else by language.
    ('05.06.2018' does not count: its '.06' is followed by another dot.)"""
    comma = len(re.findall(r"\d,\d\d(?![\d.,])", text))
    dot = len(re.findall(r"\d\.\d\d(?![\d.,])", text))
    if comma != dot:
        return "," if comma > dot else "."
    return "," if lang in ("de", "fr", "es", "it", "nl") else "."
