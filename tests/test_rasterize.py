from pathlib import Path

import pytest
from conftest import make_pdf, make_scan

from docpipe.discover import describe
from docpipe.errors import EncryptedError, TooLargeError
from docpipe.rasterize import GEMMA_MAX_PIXELS, HARD_MAX_PIXELS, OCR_SPEC, RenderSpec, open_document


def _pages(path: Path, **kw):
    with open_document(describe(path), **kw) as doc:
        return [(p.info, p.render(kw.pop("spec", RenderSpec()))) for p in doc.pages()]


def test_a4_keeps_aspect_ratio_and_fills_the_gemma_budget(tmp_path: Path) -> None:
    (info, img), = _pages(make_pdf(tmp_path / "a4.pdf", ["text " * 50]))
    w, h = img.size
    assert abs(w / h - 595.28 / 841.89) < 0.005
    assert 0.95 * GEMMA_MAX_PIXELS <= w * h <= GEMMA_MAX_PIXELS
    assert info.render_dpi and 150 < info.render_dpi < 170  # ~162 dpi: what 1120 image tokens can use
    assert "text" in info.text and info.text_source == "layer"


def test_rotate_is_respected(tmp_path: Path) -> None:
    (info, img), = _pages(make_pdf(tmp_path / "r.pdf", ["rotated words here"], rotate=90))
    assert info.rotation == 90
    assert info.width_pt > info.height_pt and img.size[0] > img.size[1]


def test_huge_drawing_is_capped(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "plan.pdf", ["site plan"], size=(14173, 2384))  # 5 m x 84 cm
    spec = RenderSpec(max_pixels=10**9, max_dpi=300)
    with open_document(describe(path)) as doc:
        (page,) = list(doc.pages())
        img = page.render(spec)
    assert img.size[0] * img.size[1] <= HARD_MAX_PIXELS
    assert abs(img.size[0] / img.size[1] - 14173 / 2384) < 0.01


def test_pages_are_streamed(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "long.pdf", [f"page {i}" for i in range(30)])
    with open_document(describe(path)) as doc:
        it = doc.pages()
        first = next(it)
        assert first.info.page_no == 1 and doc.page_count == 30
        assert sum(1 for _ in it) == 29


def test_encrypted_needs_password(tmp_path: Path) -> None:
    import pymupdf

    path = make_pdf(tmp_path / "plain.pdf", ["secret invoice"])
    enc = tmp_path / "enc.pdf"
    pymupdf.open(path).save(enc, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="owner")
    with pytest.raises(EncryptedError, match="--password"):
        open_document(describe(enc))
    with pytest.raises(EncryptedError, match="wrong password"):
        open_document(describe(enc), password="nope")
    with open_document(describe(enc), password="pw") as doc:
        assert "secret invoice" in next(doc.pages()).info.text


def test_exif_orientation_and_image_budget(tmp_path: Path) -> None:
    from PIL import Image

    upright = make_scan(tmp_path / "u.png", "an upright page")
    img = Image.open(upright)
    turned = img.rotate(90, expand=True)  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 8  # ... and tagged so viewers turn it back
    turned.save(tmp_path / "photo.jpg", exif=exif)
    with open_document(describe(tmp_path / "photo.jpg")) as doc:
        page = next(doc.pages())
        out = page.render(OCR_SPEC)
    assert out.size[1] > out.size[0]  # portrait again
    assert page.text_usable is False


def test_multiframe_tiff_is_one_page_per_frame(tmp_path: Path) -> None:
    from PIL import Image

    a = Image.open(make_scan(tmp_path / "a.png", "frame one"))
    b = Image.open(make_scan(tmp_path / "b.png", "frame two"))
    a.save(tmp_path / "two.tif", save_all=True, append_images=[b])
    with open_document(describe(tmp_path / "two.tif")) as doc:
        assert [p.info.page_no for p in doc.pages()] == [1, 2]


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(TooLargeError):
        open_document(describe(tmp_path / "bomb.png"))


def test_invisible_text_without_an_image_is_not_content(tmp_path: Path) -> None:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 100), "Visible words on the page", fontsize=12)
    page.insert_text((72, 300), "Hidden words nobody sees", fontsize=12, render_mode=3)
    doc.save(tmp_path / "inv.pdf")
    with open_document(describe(tmp_path / "inv.pdf")) as d:
        text = next(d.pages()).info.text
    assert "Visible words" in text and "Hidden" not in text


def test_a_tall_title_beside_an_address_keeps_every_line_whole(tmp_path: Path) -> None:
    # MuPDF's own sort joins rows that a tall heading overlaps: two address lines came out with their words
    # interleaved ("YorkUnitedYO1Kingdom7HH") and the invoice number read as that
    import pymupdf

    from docpipe.engines.offline.fields import extract_fields
    from docpipe.schemas import resolve

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((40, 112), "TAX INVOICE", fontsize=26)
    for x, y, text in ((265, 84, "Invoice Date"), (265, 97, "14 Feb 2025"), (265, 111, "Invoice Number"),
                       (265, 124, "INV-0042"), (385, 70, "Oakline Joinery Limited"), (385, 83.5, "Unit 4, Mill Yard"),
                       (385, 97, "York YO1 7HH"), (385, 110.5, "United Kingdom"), (40, 160, "Total GBP   936.00")):
        page.insert_text((x, y), text, fontsize=11)
    pdf = tmp_path / "tall.pdf"
    doc.save(pdf)
    (info, _), = _pages(pdf)
    rows = [r.split() for r in info.text.splitlines()]
    assert ["York", "YO1", "7HH"] in [r[-3:] for r in rows] and ["United", "Kingdom"] in [r[-2:] for r in rows]
    title = next(r for r in info.text.splitlines() if "TAX INVOICE" in r)
    assert "Invoice Number" in title and "United Kingdom" in title  # one row, each piece a cell of its own
    fields = extract_fields([info.text], resolve("invoice"))
    assert fields["invoice_number"] == "INV-0042" and fields["invoice_date"] == "2025-02-14"
