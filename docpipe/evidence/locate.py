"""Find a value on the page: numbers and dates by value in any printed format, names and ids by folded text
(fuzzily for names), addresses part by part. Each hit is a Candidate; the caller ranks them by label nearness.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

from ..engines.offline.fields.dates import find_dates
from ..engines.offline.fields.numbers import CURRENCY_SYMBOLS, find_amounts
from ..engines.offline.fields.text import fold
from .words import Line, union

Box = tuple[float, float, float, float]

#: Shortest folded name tried fuzzily: below this a near match is noise.
FUZZY_MIN_CHARS = 5
#: Share of a name's characters that must line up for a fuzzy hit.
FUZZY_MIN_SHARE = 0.8


@dataclass
class Candidate:
    page: int
    box: Box
    text: str  # the printed text the value was read from
    match: float  # 1 exact, less for fuzzy or partial hits
    source: str  # "text" | "ocr"
    conf: float = 1.0  # OCR score of the line(s)
    label: float = 0.0  # set by ranking: 1 when a field label sits right before or above


def kind_of(sql_type: str) -> str:
    t = sql_type.upper()
    if t.startswith(("DECIMAL", "DOUBLE", "FLOAT", "INTEGER", "BIGINT", "REAL", "NUMERIC", "HUGEINT")):
        return "number"
    if t == "DATE" or t.startswith("TIMESTAMP"):
        return "date"
    if t == "VARCHAR":
        return "text"
    return "other"


def find(value: Any, kind: str, lines: list[Line], name: str = "") -> list[Candidate]:
    """Every place ``value`` is printed on the lines, best matches first."""
    if kind == "number":
        return _find_number(value, lines)
    if kind == "date":
        return _find_date(value, lines)
    if kind != "text" or not isinstance(value, str) or not value.strip():
        return []
    if name == "currency" or re.fullmatch(r"[A-Z]{3}", value):
        hits = _find_currency(value, lines)
        if hits:
            return hits
    hits = _find_text(value, lines, fuzzy=True)
    if not hits and ", " in value:
        hits = _find_parts(value, lines)
    return sorted(hits, key=lambda c: -c.match)


def _cand(line: Line, start: int, end: int, match: float) -> Candidate:
    return Candidate(line.page, line.span_box(start, end), line.text[start:end], match, line.source, line.conf)


@lru_cache(maxsize=4096)
def _amounts(text: str) -> tuple[tuple[int, int, Decimal], ...]:
    out = {}
    for mark in (".", ","):
        for a in find_amounts(text, mark, space_plain=True):
            out.setdefault((a.start, a.end, a.value), None)
    return tuple(out)


def _find_number(value: Any, lines: list[Line]) -> list[Candidate]:
    try:
        target = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return []
    hits = []
    for line in lines:
        for s, e, v in _amounts(line.text):
            if abs(v - target) <= Decimal("0.005"):
                hits.append(_cand(line, s, e, 1.0))
            elif target != 0 and abs(abs(v) - abs(target)) <= Decimal("0.005"):
                hits.append(_cand(line, s, e, 0.8))  # printed with the other sign (credit notes, discounts)
    return hits


@lru_cache(maxsize=4096)
def _dates(text: str) -> tuple[tuple[int, int, dt.date], ...]:
    out = {}
    for day_first in (True, False):
        for h in find_dates(text, day_first):
            out.setdefault((h.start, h.end, h.value), None)
    return tuple(out)


def _find_date(value: Any, lines: list[Line]) -> list[Candidate]:
    try:
        target = dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return []
    return [_cand(line, s, e, 1.0) for line in lines for s, e, d in _dates(line.text) if d == target]


def _find_currency(code: str, lines: list[Line]) -> list[Candidate]:
    marks = [code] + [s for s, c in CURRENCY_SYMBOLS.items() if c == code] + (["RM"] if code == "MYR" else [])
    rx = re.compile("|".join(rf"(?<![A-Za-z]){re.escape(m)}(?![A-Za-z])" for m in marks))
    hits = []
    for line in lines:
        for m in rx.finditer(line.text):
            hits.append(_cand(line, m.start(), m.end(), 1.0 if m.group() == code else 0.9))
    return hits


@lru_cache(maxsize=8192)  # every field is looked for in every line: fold each line once, not once a field
def compact(s: str) -> tuple[str, tuple[int, ...]]:
    """Folded letters and digits only, with each kept character's offset in ``s``."""
    f = fold(s)
    keep = [(c, i) for i, c in enumerate(f) if c.isalnum()]
    return "".join(c for c, _ in keep), tuple(i for _, i in keep)


def _find_text(value: str, lines: list[Line], fuzzy: bool) -> list[Candidate]:
    target, _ = compact(value)
    if not target:
        return []
    hits = []
    for line in lines:
        text, offs = compact(line.text)
        if not text:
            continue
        pos = text.find(target)
        while pos >= 0:
            hits.append(_cand(line, offs[pos], offs[pos + len(target) - 1] + 1, 1.0))
            pos = text.find(target, pos + 1)
    if hits or not fuzzy or len(target) < FUZZY_MIN_CHARS:
        return hits
    for line in lines:
        text, offs = compact(line.text)
        if len(text) < 0.5 * len(target):
            continue
        sm = SequenceMatcher(None, text, target, autojunk=False)
        blocks = [b for b in sm.get_matching_blocks() if b.size]
        share = sum(b.size for b in blocks) / len(target)
        if share >= FUZZY_MIN_SHARE:
            a, b = blocks[0].a, blocks[-1].a + blocks[-1].size
            if (b - a) <= 1.3 * len(target):  # the matched letters sit together, not scattered over a long line
                hits.append(_cand(line, offs[a], offs[b - 1] + 1, round(share * 0.95, 3)))
    return hits


def _find_parts(value: str, lines: list[Line]) -> list[Candidate]:
    """A value joined from several printed lines (addresses): each part on its own, the parts that lie together."""
    parts = [p for p in (x.strip() for x in value.split(",")) if compact(p)[0]]
    found = [(p, _find_text(p, lines, fuzzy=True)) for p in parts]
    anchor_hits = max(found, key=lambda f: len(compact(f[0])[0]))[1]
    out = []
    for anchor in anchor_hits[:5]:
        boxes, texts, got = [anchor.box], [anchor.text], 0
        for p, hits in found:
            near = [h for h in hits if h.page == anchor.page and _gap(h.box, anchor.box) < 80]
            if near:
                best = min(near, key=lambda h: _gap(h.box, anchor.box))
                got += len(compact(p)[0]) * best.match
                if best.box != anchor.box:
                    boxes.append(best.box)
                    texts.append(best.text)
        share = got / sum(len(compact(p)[0]) for p in parts)
        if share >= 0.6:
            out.append(Candidate(anchor.page, union(boxes), ", ".join(texts), round(share, 3), anchor.source,
                                 anchor.conf))
    return out


def _gap(a: Box, b: Box) -> float:
    """Distance between two boxes in points (0 when they overlap)."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return (dx * dx + dy * dy) ** 0.5
