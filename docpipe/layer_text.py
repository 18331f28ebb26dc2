"""A PDF page's text layer as lines a reader sees, cells apart by runs of spaces, columns where they stand.

Why not MuPDF's ``get_text(sort=True)``: it joins words into rows by vertical overlap, so a tall heading beside
an address block makes one row of two address lines with their words interleaved ("York YO1 7HH" and "United
Kingdom" became "YorkUnitedYO1Kingdom7HH"). Here the unit is MuPDF's line (its words stay together), lines share
a row when their baselines agree, and a row places each line at a column proportional to its x position, at
least two spaces from the one before: what the field rules read as cells and columns. Pages turned by /Rotate
are laid out as the reader sees them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median
from typing import Any


@dataclass(frozen=True)
class _Line:
    x0: float
    x1: float
    top: float
    base: float  # the baseline, or the box's bottom where no span says
    text: str


def _shown_lines(page: Any) -> list[_Line]:
    import pymupdf

    turn = page.rotation_matrix if page.rotation else None
    out = []
    for block in page.get_text("dict").get("blocks", []):
        for line in block.get("lines", []):
            spans = line.get("spans", [])
            text = "".join(s["text"] for s in spans).strip()
            if not text:
                continue
            box = pymupdf.Rect(line["bbox"])
            if turn is not None:  # a turned page: boxes as the reader sees them, the bottom for a baseline
                box = box * turn
                base = box.y1
            else:
                base = spans[0]["origin"][1] if "origin" in spans[0] else box.y1
            out.append(_Line(box.x0, box.x1, box.y0, base, text))
    return out


def _rows(lines: list[_Line]) -> list[list[_Line]]:
    """Lines whose baselines are within a third of a line's height share a row (never chained by a tall one)."""
    rows: list[list[_Line]] = []
    for ln in sorted(lines, key=lambda t: (t.base, t.x0)):
        if rows:
            row = rows[-1]
            height = min(ln.base - ln.top, row[0].base - row[0].top)
            if abs(ln.base - row[0].base) <= max(1.0, height / 3):
                row.append(ln)
                continue
        rows.append([ln])
    return rows


MAX_COLUMN = 400  # a column far right on a giant or malformed page is still a cell, not megabytes of spaces


def _column(x: float, pitch: float) -> int:
    return min(MAX_COLUMN, max(0, round(x / pitch))) if math.isfinite(x) else 0


def layer_text(page: Any) -> str:
    """The page's text layer in reading order: one string, rows as lines, blank lines between paragraphs."""
    lines = _shown_lines(page)
    if not lines:
        return ""
    # points a character takes, for columns: the median over lines (each line's width over its characters)
    pitch = max(1.0, median((ln.x1 - ln.x0) / max(1, len(ln.text)) for ln in lines))
    left = min(ln.x0 for ln in lines)  # columns count from the leftmost text, not from the paper's edge
    out: list[str] = []
    prev: list[_Line] | None = None
    for row in _rows(lines):
        row.sort(key=lambda t: t.x0)
        if prev is not None:
            gap = min(t.top for t in row) - max(t.base for t in prev)
            if gap > 0.8 * (prev[0].base - prev[0].top):
                out.append("")
        text = ""
        last_x1: float | None = None
        for ln in row:
            if last_x1 is not None:
                near = ln.x0 - last_x1 < pitch  # the same phrase in two pieces
                col = max(len(text) + (1 if near else 2), 0 if near else _column(ln.x0 - left, pitch))
                text = text.ljust(col)
            else:
                text = " " * _column(ln.x0 - left, pitch)
            text += ln.text
            last_x1 = ln.x1
        out.append(text.rstrip())
        prev = row
    return "\n".join(out) + "\n"
