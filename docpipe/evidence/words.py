"""A page's words with their boxes in PDF points: what grounding searches.

Text layers give PyMuPDF words (cheap to read again); scans give OCR boxes, carried on ``PageInfo.words`` by the
engines that ran OCR, else recomputed here (the only expensive case: a model engine that never OCRed a scan).
Words are grouped into lines (a PyMuPDF text line, or one OCR box), the unit a value is searched in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models import PageInfo


@dataclass(frozen=True)
class Token:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    conf: float = 1.0  # OCR recognition score; 1 for a text layer
    sliceable: bool = True  # a part of the text maps to a proportional part of the box (upright text)


@dataclass
class Line:
    """Tokens read as one line of text; ``starts[i]`` is where token i begins in ``text``."""

    page: int
    source: str  # "text" | "ocr"
    tokens: list[Token]
    text: str = ""
    starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts, pos = [], 0
        self.starts = []
        for t in self.tokens:
            self.starts.append(pos)
            parts.append(t.text)
            pos += len(t.text) + 1
        self.text = " ".join(parts)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return _union([(t.x0, t.y0, t.x1, t.y1) for t in self.tokens])

    def span_box(self, start: int, end: int) -> tuple[float, float, float, float]:
        """The box of characters [start, end) of ``text``: the tokens they touch, a single upright token cut to
        the share of its characters (an OCR box often holds a label and its value)."""
        boxes = []
        for t, s in zip(self.tokens, self.starts):
            e = s + len(t.text)
            if e <= start or s >= end:
                continue
            x0, x1 = t.x0, t.x1
            if t.sliceable and len(t.text) > 1:
                w = (t.x1 - t.x0) / len(t.text)
                x0 = t.x0 + w * max(0, start - s)
                x1 = t.x1 - w * max(0, e - end)
            boxes.append((x0, t.y0, x1, t.y1))
        return _union(boxes) if boxes else self.box

    @property
    def conf(self) -> float:
        return min((t.conf for t in self.tokens), default=1.0)


def _union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """The smallest box holding all of ``boxes``."""
    return _union(boxes)


def layer_lines(pdf_page: Any, page_no: int) -> list[Line]:
    """PyMuPDF words grouped by text line, in the page's displayed (rotated) coordinates."""
    import pymupdf

    groups: dict[tuple[int, int], list[Token]] = {}
    mat = pdf_page.rotation_matrix
    for w in pdf_page.get_text("words", sort=True):
        r = pymupdf.Rect(w[:4]) * mat if pdf_page.rotation else pymupdf.Rect(w[:4])
        groups.setdefault((w[5], w[6]), []).append(Token(r.x0, r.y0, r.x1, r.y1, w[4]))
    return [Line(page_no, "text", toks) for toks in groups.values()]


def ocr_lines(words: list[tuple[float, float, float, float, str, float]], page_no: int,
              upright: bool = True) -> list[Line]:
    """OCR boxes (PDF points, text, score) as lines of one token each."""
    return [Line(page_no, "ocr", [Token(x0, y0, x1, y1, text, conf, upright)])
            for x0, y0, x1, y1, text, conf in words if text.strip()]


def page_lines(job_doc: Any, infos: list[PageInfo], ocr_missing: bool = True) -> list[Line]:
    """Every page's lines: OCR words the engine carried, the text layer the engine read, or (for pages with
    neither) the page looked at again: its text layer if usable, else fresh OCR."""
    from ..rasterize import OCR_SPEC

    lines: list[Line] = []
    again: dict[int, PageInfo] = {}
    for info in infos:
        carried = getattr(info, "words", None)
        if carried:
            lines += ocr_lines(carried, info.page_no, upright=not info.ocr_rotation)
            if info.text_source == "ocr":
                continue
        if job_doc.pdf is not None and info.text_source.startswith("layer"):
            # the engine read this layer already: no second look at the page's text to decide it is usable
            lines += layer_lines(job_doc.pdf.load_page(info.page_no - 1), info.page_no)
        elif not carried:
            again[info.page_no] = info
    if again:
        for page in job_doc.pages(0, max(again)):
            info = again.get(page.info.page_no)
            if info is None:
                continue
            if job_doc.pdf is not None and page.text_usable:
                lines += layer_lines(job_doc.pdf.load_page(info.page_no - 1), info.page_no)
            elif ocr_missing:
                lines += _fresh_ocr(page, info, OCR_SPEC)
    lines.sort(key=lambda line: line.page)  # stable: page order, each page's lines as read
    return lines


def _fresh_ocr(page: Any, info: PageInfo, spec: Any) -> list[Line]:
    from ..engines.offline.ocr import ocr_image

    img = page.render(spec)
    res = ocr_image(img)
    words = to_points(res.words, img.size, (page.info.width_pt, page.info.height_pt))
    return ocr_lines(words, info.page_no, upright=not res.rotation)


def to_points(words: list[tuple[float, float, float, float, str, float]], size_px: tuple[int, int],
              size_pt: tuple[float, float]) -> list[tuple[float, float, float, float, str, float]]:
    """OCR boxes from an image's pixels to the page's PDF points."""
    sx, sy = size_pt[0] / max(size_px[0], 1), size_pt[1] / max(size_px[1], 1)
    return [(round(x0 * sx, 2), round(y0 * sy, 2), round(x1 * sx, 2), round(y1 * sy, 2), t, round(c, 4))
            for x0, y0, x1, y1, t, c in words]
