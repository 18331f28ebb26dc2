"""Dates in free text: ISO, numeric d/m/y or m/d/y, and month names in EN/DE/FR/ES/IT/NL."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .text import blank_spans, fold

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

# a date ends where digits end, or where a till glues its time to it ("15/07/201712:07")
_END = r"(?:(?=[0-2]?\d:[0-5]\d)|(?![\d]|[.,/-]\d))"
_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ymd", re.compile(r"(?<![\d.,/])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _END)),
    ("ymd", re.compile(r"(?<!\d)(\d{4})\s*(年)\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")),  # "2025年3月14日"
    ("num", re.compile(r"(?<![\d.,/])(\d{1,2})([./-])(\d{1,2})\2(?:(\d{4})(?=[0-2]?\d:[0-5]\d)|(\d{4}|\d{2})"
                       r"(?![\d]|[.,/-]\d))")),
    # "06/04:2025": a scan read the second slash as a colon (a time never has four digits after its colon)
    ("num", re.compile(r"(?<![\d.,/:])(\d{1,2})([./-])(\d{1,2})[:;]()(\d{4})(?![\d:])")),
    # "05-Mar-2025", "5/Mar/25": one separator, the same on both sides
    ("dmy_name", re.compile(rf"(?<![\w.,/-])(\d{{1,2}})([-/])({_MONTH_ALT})\.?\2(\d{{4}}|\d{{2}})(?![\d]|[.,/-]\d)")),
    ("dmy_name", re.compile(rf"(?<![\d.])(\d{{1,2}})(?:\.|er|st|nd|rd|th)?[^\S\n]*(?:of[^\S\n]+|de[^\S\n]+)?"
                            rf"({_MONTH_ALT})\b\.?,?[^\S\n]*(?:de[^\S\n]+)?'?(\d{{4}}|\d{{2}})(?![\d])")),
    # "05JAN2018", "5Mar24": airline, hotel and till print without separators
    ("dmy_name", re.compile(rf"(?<![\w.,/-])(\d{{1,2}})({_MONTH_ALT})(\d{{4}}|\d{{2}})(?![\w])")),
    ("mdy_name", re.compile(rf"\b({_MONTH_ALT})\b\.?[^\S\n]+(\d{{1,2}})(?:st|nd|rd|th)?,?[^\S\n]+(\d{{4}})"
                            r"(?:(?!\d)|(?=[0-2]?\d:[0-5]\d))")),
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
    '5. März 2025', '5 mars 2025', '05-Mar-2025', two-digit years. Dots always mean day first."""
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
                a, b, y = int(m.group(1)), int(m.group(3)), _year(m.group(4) or m.group(5))
                dayfirst = day_first or m.group(2) == "."
                d = _mk_date(y, b, a) if dayfirst else _mk_date(y, a, b)
            elif kind == "dmy_name":
                day, mon, yr = m.group(1), m.groups()[-2], m.groups()[-1]
                d = _mk_date(_year(yr), _MONTHS[mon], int(day))
            else:
                d = _mk_date(int(m.group(3)), _MONTHS[m.group(1)], int(m.group(2)))
            if d is not None:
                hits.append(DateHit(m.start(), m.end(), d))
                taken[m.start():m.end()] = b"\x01" * (m.end() - m.start())
    return sorted(hits, key=lambda h: h.start)


def blank_dates(text: str, hits: list[DateHit]) -> str:
    return blank_spans(text, ((h.start, h.end) for h in hits)) if hits else text


def parse_date(text: str, day_first: bool = True) -> dt.date | None:
    hits = find_dates(text, day_first)
    return hits[0].value if hits else None


_COMPACT_RE = re.compile(r"(?<![\w./:-])(\d{8})(?![\w./:-])")


def compact_dates(text: str, day_first: bool = True) -> list[DateHit]:
    """Dates printed without separators, as some tills do: '27032018' (ddmmyyyy, or mmddyyyy where months come
    first) or '20180327'. Eight digits are also order and account numbers, so callers use these only where a
    document prints no other date; a year after next year is taken for a number."""
    top = dt.date.today().year + 1
    hits = []
    for m in _COMPACT_RE.finditer(text):
        s = m.group(1)
        a, b = int(s[:2]), int(s[2:4])
        for d in (_mk_date(int(s[4:]), b, a) if day_first else _mk_date(int(s[4:]), a, b),
                  _mk_date(int(s[:4]), int(s[4:6]), int(s[6:]))):
            if d is not None and 1990 <= d.year <= top:
                hits.append(DateHit(m.start(), m.end(), d))
                break
    return hits
