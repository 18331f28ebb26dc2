"""Ground every non-null field of one document in its page words: the best candidate box, how well it matched,
whether its label sits next to it, how many places print it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..schemas import Column, SchemaInfo
from .labels import label_boxes, nearness
from .locate import Candidate, find, kind_of
from .words import Line

Box = tuple[float, float, float, float]


@dataclass
class FieldEvidence:
    """Where one value was read and how sure docpipe is of it. ``box`` is in PDF points on ``page``."""

    field: str  # "total", "line_items[2].amount" (1-based, as the list view's line_no)
    value: str  # the value as text (what the schema view shows before corrections)
    page: int | None = None
    box: Box | None = None
    page_size: tuple[float, float] | None = None
    source: str = "model"  # "xml" | "text" | "ocr" | "model" (found nowhere in the page's words)
    text: str | None = None  # the printed text the box holds
    match: float = 0.0
    label: float = 0.0
    label_printed: bool = False  # the field's label is on the page (next to this value or not)
    places: int = 0  # how many places print the value
    ocr_conf: float | None = None
    confidence: float = 0.0
    note: str = ""

    @property
    def found(self) -> bool:
        return self.box is not None

    @property
    def nbox(self) -> Box | None:
        """The box as shares of the page's width and height (0..1)."""
        if self.box is None or not self.page_size:
            return None
        w, h = self.page_size
        return (round(self.box[0] / w, 5), round(self.box[1] / h, 5), round(self.box[2] / w, 5),
                round(self.box[3] / h, 5))


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _pick(cands: list[Candidate], labels: list[tuple[int, Box]], anchor: tuple[int, Box] | None) -> Candidate:
    for c in cands:
        c.label = nearness(c.page, c.box, labels) if anchor is None else _row_nearness(c, anchor)
    return max(cands, key=lambda c: (0.55 * c.match + 0.45 * c.label, -c.page, -c.box[1]))


def _row_nearness(c: Candidate, anchor: tuple[int, Box]) -> float:
    """Line-item fields: 1 on the anchor's row, falling with the distance in rows."""
    page, box = anchor
    if c.page != page:
        return 0.0
    h = max(box[3] - box[1], 4.0)
    dy = abs((c.box[1] + c.box[3]) / 2 - (box[1] + box[3]) / 2)
    return round(max(0.0, 1.0 - dy / (4 * h)), 3)


def ground_value(name: str, value: Any, col: Column, lines: list[Line], sizes: dict[int, tuple[float, float]],
                 label_name: str | None = None, anchor: tuple[int, Box] | None = None) -> FieldEvidence:
    ev = FieldEvidence(field=name, value=_text(value))
    cands = find(value, kind_of(col.sql_type), lines, label_name or name)
    labels = label_boxes(label_name or name, lines) if anchor is None else []
    ev.label_printed = bool(labels)
    if not cands:
        return ev
    best = _pick(cands, labels, anchor)
    ev.page, ev.box, ev.text, ev.match, ev.label = best.page, best.box, best.text, best.match, best.label
    ev.source = best.source
    ev.places = len({(c.page, round(c.box[0]), round(c.box[1])) for c in cands if c.match >= 0.99})
    ev.ocr_conf = best.conf if best.source == "ocr" else None
    ev.page_size = sizes.get(best.page)
    ev.box = tuple(round(x, 2) for x in best.box)  # type: ignore[assignment]
    return ev


def ground_document(data: dict[str, Any], schema: SchemaInfo, lines: list[Line],
                    sizes: dict[int, tuple[float, float]]) -> list[FieldEvidence]:
    """Evidence for each non-null scalar field and each line item's non-null fields."""
    out = []
    for col in schema.columns:
        v = data.get(col.name)
        if v is None or isinstance(v, (list, dict)) or v == "":
            continue
        out.append(ground_value(col.name, v, col, lines, sizes))
    for nested in schema.nested:
        cols = {c.name: c for c in nested.columns}
        for i, item in enumerate(data.get(nested.field) or [], 1):
            if not isinstance(item, dict):
                continue
            anchor = None
            order = sorted(cols, key=lambda n: (kind_of(cols[n].sql_type) != "text", n))  # text (names) first
            for cname in order:
                v = item.get(cname)
                if v is None or isinstance(v, (list, dict)) or v == "":
                    continue
                ev = ground_value(f"{nested.field}[{i}].{cname}", v, cols[cname], lines, sizes, cname, anchor)
                if anchor is None and ev.box is not None:
                    anchor = (ev.page, ev.box)  # type: ignore[assignment]
                out.append(ev)
    return out
