"""Label -> value lookups: find a field's labels in the cells, then read the value right of or below them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .dates import find_dates
from .labels import DUE_DATE_LABELS, INVOICE_DATE_LABELS, Label
from .layout import Doc, Line, Seg
from .text import fold

_DATE_LABEL_RES = [re.compile(r"(?<![^\W\d_])(?:" + lab.rx + r")(?![^\W\d_])")
                   for lab in INVOICE_DATE_LABELS + DUE_DATE_LABELS if lab.weight > 1 or "dat" in lab.rx]


def names_a_date(folded: str) -> bool:
    """Whether a folded cell holds a date label ('fecha de emision', 'due date')."""
    return any(rx.search(folded) for rx in _DATE_LABEL_RES)


@dataclass(frozen=True)
class Hit:
    """Where a label was found and the text that follows it (same cell, next cell, or the cell below)."""

    line: int
    seg: Seg
    label_end: int  # column where the label ends
    weight: int


@lru_cache(maxsize=64)
def _compile_labels(labels: tuple[Label, ...]) -> tuple[re.Pattern[str], list[tuple[re.Pattern[str], int]]]:
    """One regex per label, plus their union as a cheap first test for a cell. A label ends at a non-letter, or
    at its own '#'/'°' ('Invoice #A-17')."""
    parts = [(r"(?<![^\W\d_])" if lab.anywhere else r"^[^\w]*") + rf"(?:{lab.rx})(?:(?<=[#°])|(?![^\W\d_]))"
             for lab in labels]
    anywhere = "|".join(f"(?:{lab.rx})" for lab in labels if lab.anywhere) or "(?!)"
    anchored = "|".join(f"(?:{lab.rx})" for lab in labels if not lab.anywhere) or "(?!)"
    # lookbehind hoisted out of the alternation: only word starts get to try the alternatives
    union = re.compile(rf"(?<![^\W\d_])(?:{anywhere})|^[^\w]*(?:{anchored})")
    return union, [(re.compile(p), lab.weight) for p, lab in zip(parts, labels)]


def label_hits(doc: Doc, labels: tuple[Label, ...], lines: Iterable[Line] | None = None) -> list[Hit]:
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


def values_after(doc: Doc, hit: Hit, below: int = 3, row_dates: bool = False) -> Iterable[tuple[int, str]]:
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
        cell = cell_below(below_ln, hit.seg.col, max(hit.label_end, hit.seg.end))
        if cell is not None:
            yield below_ln.idx, cell.text
        seen += 1
        if seen >= below:
            break


def cell_below(ln: Line, col: int, end: int, slack: int = 12) -> Seg | None:
    """The cell of ``ln`` that sits under columns [col, end] (layouts drift a few characters)."""
    best, best_score = None, 0.0
    for s in ln.segs:
        overlap = min(end + slack, s.end) - max(col - slack, s.col)
        if overlap > 0:
            score = overlap - abs(s.col - col) * 0.1
            if best is None or score > best_score:
                best, best_score = s, score
    return best


def first_value(doc: Doc, hits: list[Hit], parse: Callable[[str], Any], below: int = 3,
                row_dates: bool = False) -> tuple[Any, Hit] | None:
    """Best label (by weight, then position) whose nearby text parses."""
    for hit in sorted(hits, key=lambda h: (-h.weight, h.line)):
        for _, text in values_after(doc, hit, below, row_dates):
            value = parse(text)
            if value is not None:
                return value, hit
    return None


def leading_date(doc: Doc) -> Callable[[str], dt.date | None]:
    """A date that opens the text (after at most a few characters): don't read far-away dates for a label."""
    def parse(text: str) -> dt.date | None:
        hits = find_dates(text, doc.dmy)
        if hits and hits[0].start <= 6:
            return hits[0].value
        return None
    return parse
