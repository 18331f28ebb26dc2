"""Shared fixtures: real PDFs made with PyMuPDF, real DuckDB files in tmp_path, the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

INVOICE_TEXT = """ACME Tools GmbH
Hauptstrasse 5, 10115 Berlin
USt-IdNr.: DE123456789

Rechnung
Rechnungsnummer: RE-2025-0042
Rechnungsdatum: 05.03.2025
Fällig am: 04.04.2025

Rechnungsempfänger:
Beispiel AG
Marktplatz 1, 80331 München

Pos  Beschreibung       Menge  Einzelpreis   Betrag
1    Hammer             2      10,00 EUR     20,00 EUR
2    Schraubenset       1      5,50 EUR      5,50 EUR

Zwischensumme: 25,50 EUR
MwSt. 19 %: 4,85 EUR
Gesamtbetrag: 30,35 EUR
"""


def make_pdf(path: Path, pages: list[str], size: tuple[float, float] = (595.28, 841.89), rotate: int = 0) -> Path:
    """A born-digital PDF with one text block per page."""
    import pymupdf

    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=size[0], height=size[1])
        page.insert_textbox(pymupdf.Rect(50, 50, size[0] - 50, size[1] - 50), text, fontsize=10, fontname="helv")
        if rotate:
            page.set_rotation(rotate)
    doc.save(path)
    doc.close()
    return path


def make_scan(path: Path, text: str, fmt: str = "PNG", dpi: int = 150) -> Path:
    """An image of a text page, as a scanner would give it."""
    import pymupdf
    from PIL import Image

    doc = pymupdf.open()
    page = doc.new_page(width=595.28, height=841.89)
    page.insert_textbox(pymupdf.Rect(50, 50, 545, 800), text, fontsize=12, fontname="helv")
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    img = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    img.save(path, format=fmt, dpi=(dpi, dpi))
    return path


@pytest.fixture
def invoice_pdf(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "rechnung.pdf", [INVOICE_TEXT])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"
