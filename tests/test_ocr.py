"""rows_to_text: OCR boxes (4-point polygons) -> text laid out like a text layer. Boxes are built by hand."""

from __future__ import annotations

import math

from docpipe.engines.offline.fields import Doc
from docpipe.engines.offline.ocr import rows_to_text


def box(x: float, y: float, text: str, h: float = 20, cw: float = 10, angle_deg: float = 0.0,
        conf: float = 0.9) -> tuple[list[list[float]], str, float]:
    """A box of ``text`` whose top-left corner would sit at (x, y) on an unrotated page, turned about (0, 0)."""
    w = cw * len(text)
    a = math.radians(angle_deg)

    def rot(px: float, py: float) -> list[float]:
        return [px * math.cos(a) - py * math.sin(a), px * math.sin(a) + py * math.cos(a)]

    return [rot(x, y), rot(x + w, y), rot(x + w, y + h), rot(x, y + h)], text, conf


def test_skewed_page_keeps_label_and_far_value_on_one_line() -> None:
    # 1.5 degrees over 1200 px moves the right end ~31 px down: more than a line's height
    items = [box(100, 100, "Invoice No.", angle_deg=1.5), box(1300, 100, "INV-7", angle_deg=1.5),
             box(100, 124, "Date", angle_deg=1.5), box(1300, 124, "2025-03-05", angle_deg=1.5)]
    lines = rows_to_text(items).splitlines()
    assert len(lines) == 2
    assert lines[0].split() == ["Invoice", "No.", "INV-7"] and lines[1].split() == ["Date", "2025-03-05"]


def test_small_gap_is_a_word_space_wide_gap_a_column() -> None:
    items = [box(100, 100, "Invoice"), box(175, 100, "number"), box(600, 100, "1.234,56")]
    line = rows_to_text(items)
    assert "Invoice number" in line
    segs = [s.text for s in Doc([line]).lines[0].segs]
    assert segs == ["Invoice number", "1.234,56"]


def test_columns_stay_stacked_and_gaps_give_blank_lines() -> None:
    items = [box(100, 100, "Bill to"), box(700, 100, "Ship to"),
             box(100, 124, "Acme Ltd"), box(700, 124, "Depot 3"),
             box(100, 200, "Total"), box(700, 200, "9.99")]
    lines = rows_to_text(items).splitlines()
    assert lines[0].index("Ship to") == lines[1].index("Depot 3")
    assert lines[2] == "" and lines[3].startswith("Total")
    assert len(lines) == 4


def test_empty_and_misread_middle_dot() -> None:
    assert rows_to_text([]) == ""
    assert rows_to_text([box(0, 0, "Brandt GmbH . Lindenstr. 14")]) == "Brandt GmbH · Lindenstr. 14"


def test_an_italian_company_form_read_with_a_one_is_mended_so_the_vendor_is_found() -> None:
    from docpipe.engines.offline.fields import extract_fields
    from docpipe.schemas import resolve

    items = [box(100, 100, "Belleville Hardware S.r.1."), box(100, 160, "FATTURA"),
             box(100, 220, "Totale:"), box(600, 220, "29.693,38"), box(100, 280, "Version 1.1.2025 S.r.1.5")]
    text = rows_to_text(items)
    assert "Belleville Hardware S.r.l." in text and "S.r.1.5" in text  # a number after it is not a misread
    assert rows_to_text([box(100, 100, "Delta S.r.I.")]).strip() == "Delta S.r.l."  # an I for the l too
    assert rows_to_text([box(100, 100, "SEVEN CASH SDN 3HD")]).strip() == "SEVEN CASH SDN BHD"  # a 3 for B
    assert extract_fields([text], resolve("invoice"))["vendor_name"] == "Belleville Hardware S.r.l."
