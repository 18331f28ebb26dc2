"""OCR with models that ship inside a PyPI package (rapidocr's bundled PP-OCRv6), so it works offline at once.

Measured choice (shared notes, offline-feasibility): rapidocr 3.10 with the line classifier OFF (it flips long Latin
lines), one ONNX thread per worker process, reading order rebuilt by grouping boxes into rows. Page orientation is
handled here: text boxes taller than wide mean a page turned by 90/270 degrees; both are tried and the better
confidence wins; upside-down pages are caught by a low-confidence retry at 180 degrees.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from ..errors import EngineUnavailable

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


def rows_to_text(items: list[tuple[Any, str, float]]) -> str:
    """Boxes -> text in reading order: cluster boxes into rows by vertical centre, sort each row by x."""
    boxes = []
    for box, txt, _ in items:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        boxes.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), txt))
    boxes.sort(key=lambda b: (b[0], b[2]))
    rows: list[list[tuple[float, float, float, str]]] = []
    for b in boxes:
        if rows:
            row = rows[-1]
            cy = sum(x[0] for x in row) / len(row)
            h = max(x[1] for x in row)
            if abs(b[0] - cy) < 0.5 * max(h, b[1], 1.0):
                row.append(b)
                continue
        rows.append([b])
    lines = []
    for row in rows:
        row.sort(key=lambda x: x[2])
        lines.append("   ".join(x[3] for x in row))
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
                     seconds=time.perf_counter() - t)
