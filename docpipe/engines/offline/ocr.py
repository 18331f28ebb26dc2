"""OCR with models that ship inside a PyPI package (rapidocr's bundled PP-OCRv6), so it works offline at once.

Measured choice (shared notes, offline-feasibility): rapidocr 3.10 with the line classifier OFF (it flips long Latin
lines), one ONNX thread per worker process, reading order rebuilt by grouping boxes into rows. Page orientation is
handled here: text boxes taller than wide mean a page turned by 90/270 degrees; both are tried and the better
confidence wins; upside-down pages are caught by a low-confidence retry at 180 degrees.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ...errors import EngineUnavailable

_ENGINES: dict[int, Any] = {}

#: Text detection runs on the page scaled so its longer side is at most this many pixels. Detection dominates
#: rapidocr's time at 200 dpi (about 4 s of 5 s on an A4 page, one thread). Measured on the scanned samples
#: (docpipe eval, 2026-11-27): 1280 px scored as well as no limit (0.81 of fields) in 2/3 of the time; 960 px
#: began to lose fields. Recognition still reads crops of the full-resolution render.
DET_MAX_SIDE = int(os.environ.get("DOCPIPE_OCR_DET_MAX_SIDE", "1280"))


@dataclass
class OcrResult:
    text: str
    confidence: float  # mean recognition score, 0..1
    rotation: int  # degrees the page was turned (clockwise) to read it
    seconds: float
    # each box's bounds in the given image's pixels (x0, y0, x1, y1), its text and score: where values were read
    words: list[tuple[float, float, float, float, str, float]] = field(default_factory=list)


def _engine(threads: int) -> Any:
    """One RapidOCR per process and thread setting (model load ~0.1 s, first call ~2-3 s)."""
    if threads not in _ENGINES:
        try:
            from rapidocr import RapidOCR
        except ImportError as e:  # pragma: no cover - rapidocr is a base dependency
            raise EngineUnavailable(f"rapidocr is not installed: {e}") from e
        for name in ("RapidOCR", "rapidocr"):
            logging.getLogger(name).setLevel(logging.WARNING)
        _ENGINES[threads] = RapidOCR(params={
            "Global.use_cls": False,
            "Det.limit_type": "max",
            "Det.limit_side_len": DET_MAX_SIDE,
            "Global.log_level": "warning",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
        for name in ("RapidOCR", "rapidocr"):
            logging.getLogger(name).setLevel(logging.ERROR)  # "text detection result is empty" is not news
    return _ENGINES[threads]


def _read(img: Any, threads: int) -> tuple[list[tuple[Any, str, float]], float]:
    import numpy as np

    out = _engine(threads)(np.asarray(img))
    if out is None or out.txts is None or out.boxes is None:
        return [], 0.0
    items = [(box, txt, float(score)) for box, txt, score in zip(out.boxes, out.txts, out.scores) if txt.strip()]
    conf = sum(s for _, _, s in items) / len(items) if items else 0.0
    return items, conf


def _vertical_share(items: list[tuple[Any, str, float]]) -> float:
    """Share of multi-character boxes that are taller than wide: high on a page turned by 90 or 270 degrees."""
    tall = total = 0
    for box, txt, _ in items:
        if len(txt) < 4:
            continue
        xs = [p[0] for p in box]
        ys = [p[1] for p in box]
        total += 1
        if (max(ys) - min(ys)) > 1.5 * (max(xs) - min(xs)):
            tall += 1
    return tall / total if total else 0.0


@dataclass
class _Box:
    x0: float  # left and right edge, along the text line
    x1: float
    y: float  # centre, with the page's skew taken out
    h: float  # text height
    text: str


#: A gap between two boxes of a row narrower than this share of the text height is a word space, not a column gap.
WORD_GAP = 0.6
#: Rows whose centres lie further apart than this many text heights had an empty line between them (or less,
#: 1.5 times the page's usual line pitch: small print has more box padding per point of text).
BLANK_LINE_GAP = 1.8


#: A lone full stop between words is a misread middle dot, the separator of letterhead sender lines
#: ("Firma GmbH · Straße 1 · 12345 Ort"): parties read such lines by their dots.
_LONE_DOT_RE = re.compile(r"(?<=\w) \. (?=\w)")
#: An Italian company form read with a one or an I for its l ("S.r.1.", "S.r.I."): parties find companies by
#: their legal form, and no company form ends so.
_SRL_RE = re.compile(r"\b([Ss])\.\s?([Rr])\.\s?[1I]\.(?!\d)")
#: The Malaysian form "SDN BHD" with its B read as a digit ("SDN 3HD", "SDN 8HD"): the same reason.
_BHD_RE = re.compile(r"\b(SDN\.?\s?)[38](HD)\b")


def _fix_misreads(txt: str) -> str:
    txt = _SRL_RE.sub(lambda m: f"{m[1]}.{m[2]}.{'L' if m[2].isupper() else 'l'}.", _LONE_DOT_RE.sub(" · ", txt))
    return _BHD_RE.sub(r"\1B\2", txt)


def _page_slope(items: list[tuple[Any, str, float]]) -> float:
    """The page's skew as dy/dx: the median slope of the top edges of boxes wide enough to measure."""
    slopes = []
    for box, txt, _ in items:
        (x0, y0), (x1, y1) = box[0][:2], box[1][:2]
        if len(txt) >= 4 and x1 - x0 > 3 * abs(box[3][1] - y0):
            slopes.append((y1 - y0) / (x1 - x0))
    if not slopes:
        return 0.0
    slopes.sort()
    s = slopes[len(slopes) // 2]
    return s if abs(s) < 0.2 else 0.0  # beyond ~11 degrees the boxes are not aligned text lines


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else 0.0


def rows_to_text(items: list[tuple[Any, str, float]]) -> str:
    """Boxes -> text laid out like a text layer: rows in reading order, columns kept by their x position.

    Boxes are rapidocr's 4-point polygons (top-left, top-right, bottom-right, bottom-left). The page's skew is
    measured from the boxes' top edges and taken out before boxes are grouped into rows, so a label and its value
    far to the right stay on one line of a tilted scan. In a row, a small gap (a word space) joins boxes with one
    space; a wider one starts a new cell, placed at the column its x position maps to (at least 3 spaces), so that
    cells stacked on the page stay stacked in the text. A vertical gap of an empty line gives an empty line.
    """
    slope = _page_slope(items)
    boxes: list[_Box] = []
    for box, txt, _ in items:
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
        h = (abs(float(box[3][1]) - float(box[0][1])) + abs(float(box[2][1]) - float(box[1][1]))) / 2
        if h <= 0 or h > max(ys) - min(ys) + 1:  # not a regular polygon: fall back to the bounding box
            h = max(ys) - min(ys)
        boxes.append(_Box(min(xs), max(xs), cy - slope * cx, max(h, 1.0), _fix_misreads(txt.strip())))
    if not boxes:
        return ""
    boxes.sort(key=lambda b: (b.y, b.x0))
    rows: list[list[_Box]] = []
    for b in boxes:
        if rows:
            row = rows[-1]
            cy = sum(x.y for x in row) / len(row)
            if abs(b.y - cy) < 0.5 * max(max(x.h for x in row), b.h):
                row.append(b)
                continue
        rows.append([b])
    # character width: the page's median over boxes of several characters
    cw = _median([(b.x1 - b.x0) / len(b.text) for b in boxes if len(b.text) >= 3]) or _median([b.h for b in boxes]) / 2
    left = min(b.x0 for b in boxes)
    for row in rows:
        row.sort(key=lambda x: x.x0)
    # vertical pitch between rows in text heights; the page's own line spacing (the median) tells a gap apart
    ys = [sum(x.y for x in row) / len(row) for row in rows]
    hs = [_median([x.h for x in row]) for row in rows]
    pitch = [(ys[i] - ys[i - 1]) / max(hs[i], hs[i - 1]) for i in range(1, len(rows))]
    blank_at = min(BLANK_LINE_GAP, max(1.1, 1.5 * _median(pitch))) if pitch else 0.0
    lines: list[str] = []
    for i, row in enumerate(rows):
        if i and pitch[i - 1] > blank_at:
            lines.append("")
        line = ""
        last: _Box | None = None
        for b in row:
            if last is None:
                line = " " * max(0, round((b.x0 - left) / cw))
            elif b.x0 - last.x1 < WORD_GAP * max(b.h, last.h):
                line += " "
            else:
                line += " " * max(3, round((b.x0 - left) / cw) - len(line))
            line += b.text
            last = b
        lines.append(line.rstrip())
    return "\n".join(lines)


def ocr_image(img: Any, threads: int = 1) -> OcrResult:
    """Text of a page image (PIL, grey or RGB) in reading order, turning the page if its text runs sideways."""
    t = time.perf_counter()
    items, conf = _read(img, threads)
    rotation = 0
    if items and _vertical_share(items) > 0.5:
        best = (items, conf, 0)
        for angle in (90, 270):  # PIL rotates counter-clockwise; try both quarter turns
            turned = img.rotate(angle, expand=True, fillcolor=255 if img.mode == "L" else (255, 255, 255))
            it, c = _read(turned, threads)
            if c * len(it) > best[1] * len(best[0]):
                best = (it, c, (360 - angle) % 360)
        items, conf, rotation = best
    elif items and conf < 0.75:
        turned = img.rotate(180, expand=True)
        it, c = _read(turned, threads)
        if c > conf + 0.05 and len(it) >= 0.5 * len(items):
            items, conf, rotation = it, c, 180
    return OcrResult(text=rows_to_text(items), confidence=round(conf, 4), rotation=rotation,
                     seconds=time.perf_counter() - t, words=_unturned_boxes(items, rotation, img.size))


def _unturned_boxes(items: list[tuple[Any, str, float]], rotation: int,
                    size: tuple[int, int]) -> list[tuple[float, float, float, float, str, float]]:
    """Boxes read on a page turned by ``rotation`` (clockwise), as bounds in the unturned image of ``size``."""
    w, h = size
    back = {0: lambda x, y: (x, y), 270: lambda x, y: (w - y, x),  # turned 90 degrees counter-clockwise
            90: lambda x, y: (y, h - x), 180: lambda x, y: (w - x, h - y)}[rotation]
    out = []
    for box, txt, score in items:
        pts = [back(float(p[0]), float(p[1])) for p in box]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        out.append((min(xs), min(ys), max(xs), max(ys), txt.strip(), score))
    return out
