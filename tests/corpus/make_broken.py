"""Build docpipe's own corpus of broken and odd input files.

Everything is generated here (nothing is copied from the devset); every file is
tiny (< 8 KB). Output is byte-identical between runs except encrypted_aes256.pdf
(AES salt/IV are random in MuPDF).

Behaviour checked with PyMuPDF 1.26+/MuPDF 1.28 and Pillow 11+:
  * truncated_60pct.pdf: MuPDF does NOT raise; it "repairs" the file and opens it
    with page_count == 0, is_repaired True and doc.pdf_catalog() == 0 (no /Root).
    Tell it apart from zero_pages.pdf (not repaired, catalog present) -> "failed".
  * bad_xref_repairable.pdf: MuPDF rebuilds the xref (is_repaired True) and the
    text is extractable, hence "ok" (a warning is fine).
  * truncated.jpg: Pillow opens it but .load() raises OSError("image file is
    truncated"); MuPDF opens it as a 1-page image document.
  * bomb_100000x100000.png: Pillow raises DecompressionBombError in open();
    MuPDF raises "image dimensions might overflow" when loading the page.

    from tests.corpus.make_broken import make_broken_corpus
    expected = make_broken_corpus(tmp_path)   # {filename: expected status keyword}

or, from the repository root, ``python tests/corpus/make_broken.py DEST``.

Expected status keywords:
  "ok"         the file is valid (if unusual) and must be processed
  "failed"     the file cannot be read at all
  "encrypted"  the PDF needs a user password (here "secret")
  "empty"      zero bytes, or a valid PDF with zero pages
  "too_large"  the image claims more pixels than is safe to decode
"""
from __future__ import annotations

import io
import json
import pathlib
import struct
import sys
import zlib

import pymupdf
from PIL import Image, ImageDraw

USER_PW = "secret"
OWNER_PW = "owner"
FIXED_DATE = "D:20250101000000Z"

#: short description of each file, for test ids and error messages
DESCRIPTIONS = {
    "zero_bytes.pdf": "0-byte file with a .pdf name",
    "text_named_pdf.pdf": "plain text file with a .pdf name",
    "truncated_60pct.pdf": "first 60% of a valid PDF: no page tree, no xref, no trailer",
    "bad_xref_repairable.pdf": "valid objects, but xref table and startxref are garbage; "
                               "MuPDF rebuilds the xref and the text is readable",
    "garbage_after_header.pdf": "%PDF header followed by random bytes, no objects",
    "encrypted_aes256.pdf": "AES-256 encrypted, user password 'secret' (owner 'owner')",
    "zero_pages.pdf": "valid PDF whose page tree is /Kids [] /Count 0",
    "rotated_page_90.pdf": "one page with /Rotate 90 and a text layer",
    "two_frames.tif": "2-frame greyscale TIFF (deflate)",
    "png_named_jpg.jpg": "a PNG file with a .jpg extension",
    "truncated.jpg": "JPEG cut after 45% of its bytes (header intact, scan data incomplete)",
    "bomb_100000x100000.png": "PNG whose IHDR claims 100000 x 100000 pixels (10 gigapixels)",
}


def _valid_pdf(text: str = "Invoice TEST-001  Total 123.45 EUR", *, rotate: int = 0) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=420, height=297)  # A5 landscape-ish, tiny
    if rotate:
        page.set_rotation(rotate)
    page.insert_text((40, 80), "Sample Vendor Ltd", fontname="hebo", fontsize=14)
    page.insert_text((40, 110), text, fontname="helv", fontsize=11)
    page.insert_text((40, 130), "Fictitious test document for docpipe", fontname="helv", fontsize=9)
    doc.set_metadata({"producer": "docpipe tests", "creator": "docpipe tests",
                      "creationDate": FIXED_DATE, "modDate": FIXED_DATE})
    doc.xref_set_key(-1, "ID", "[<00112233445566778899AABBCCDDEEFF> <00112233445566778899AABBCCDDEEFF>]")
    data = doc.tobytes(garbage=4, deflate=True, no_new_id=True)
    doc.close()
    return data


def hand_pdf(objects: list[bytes]) -> bytes:
    """Assemble a classic PDF (objects numbered from 1, object 1 = catalog)."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _truncated_pdf() -> bytes:
    """A valid one-page PDF laid out so that its first 60% hold only a font-ish
    filler stream: the cut loses catalog, page tree, page, content and xref."""
    filler = bytes((i * 73 + 41) % 256 for i in range(1200))  # deterministic "binary" data
    content = b"BT /F1 12 Tf 40 110 Td (Invoice TRUNC-001  Total 99.00 EUR) Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 420 297] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(filler) + filler + b"\nendstream",
    ]
    # write the filler first by swapping it to the front of the body: objects keep
    # their numbers, only the byte order changes
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    order = [6, 1, 2, 3, 4, 5]
    offsets = {}
    for num in order:
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num - 1] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 7\n0000000000 65535 f \n"
    for num in range(1, 7):
        out += b"%010d 00000 n \n" % offsets[num]
    out += b"trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    full = bytes(out)
    cut = full[: int(len(full) * 0.6)]
    assert b"/Catalog" not in cut and b"xref" not in cut
    return cut


def _bad_xref_pdf() -> bytes:
    data = bytearray(_valid_pdf("Invoice XREF-001  Total 42.00 EUR"))
    start = data.rindex(b"\nxref\n") + 1
    end = data.rindex(b"trailer")
    garbage = bytes((i * 31 + 7) % 94 + 33 for i in range(end - start))  # printable junk
    data[start:end] = garbage
    sx = data.rindex(b"startxref\n") + len(b"startxref\n")
    eol = data.index(b"\n", sx)
    data[sx:eol] = b"9999999"
    return bytes(data)


def _encrypted_pdf() -> bytes:
    doc = pymupdf.open("pdf", _valid_pdf("Invoice ENC-001  Total 10.00 EUR"))
    data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=USER_PW,
                       owner_pw=OWNER_PW, no_new_id=True)
    doc.close()
    return data


def _zero_pages_pdf() -> bytes:
    return hand_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                      b"<< /Type /Pages /Kids [] /Count 0 >>"])


def _label_image(text: str, size=(240, 90), mode="L") -> Image.Image:
    img = Image.new(mode, size, 255 if mode == "L" else (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rectangle([4, 4, size[0] - 5, size[1] - 5], outline=0 if mode == "L" else (0, 0, 0))
    d.text((14, 16), text, fill=0 if mode == "L" else (0, 0, 0))
    d.text((14, 40), "Total 12.34 EUR", fill=0 if mode == "L" else (0, 0, 0))
    return img


def _two_frame_tiff() -> bytes:
    frames = [_label_image("Page 1 of 2"), _label_image("Page 2 of 2")]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:],
                   compression="tiff_deflate", dpi=(72, 72))
    return buf.getvalue()


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _truncated_jpeg() -> bytes:
    img = _label_image("Receipt JPEG", size=(320, 200), mode="RGB")
    # some texture so the entropy-coded data is not trivially short
    d = ImageDraw.Draw(img)
    for i in range(0, 320, 8):
        d.line([(i, 120), (319 - i, 195)], fill=((i * 5) % 256, 80, 160))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    data = buf.getvalue()
    return data[: int(len(data) * 0.45)]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def _bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """Valid PNG signature and IHDR claiming width x height 8-bit greyscale; the
    IDAT holds only the first 2 (blank) rows, so the file stays a few hundred bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = (b"\x00" + b"\xff" * width) * 2  # filter byte + white pixels
    idat = zlib.compress(rows, 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def make_broken_corpus(dest: pathlib.Path) -> dict[str, str]:
    """Write the broken/odd files into `dest`; return {filename: expected status}."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[bytes, str]] = {
        "zero_bytes.pdf": (b"", "empty"),
        "text_named_pdf.pdf": (b"This is not a PDF.\nJust some text saved with a .pdf name.\n", "failed"),
        "truncated_60pct.pdf": (_truncated_pdf(), "failed"),
        "bad_xref_repairable.pdf": (_bad_xref_pdf(), "ok"),
        "garbage_after_header.pdf": (b"%PDF-1.7\n" + bytes((i * 131 + 17) % 256 for i in range(512)),
                                     "failed"),
        "encrypted_aes256.pdf": (_encrypted_pdf(), "encrypted"),
        "zero_pages.pdf": (_zero_pages_pdf(), "empty"),
        "rotated_page_90.pdf": (_valid_pdf("Invoice ROT-090  Total 90.00 EUR", rotate=90), "ok"),
        "two_frames.tif": (_two_frame_tiff(), "ok"),
        "png_named_jpg.jpg": (_png_bytes(_label_image("PNG saved as .jpg")), "ok"),
        "truncated.jpg": (_truncated_jpeg(), "failed"),
        "bomb_100000x100000.png": (_bomb_png(), "too_large"),
    }
    expected = {}
    for name, (data, status) in files.items():
        (dest / name).write_bytes(data)
        expected[name] = status
    return expected


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "broken_corpus")
    result = make_broken_corpus(out)
    for name, status in result.items():
        print(f"{(out / name).stat().st_size:8d}  {status:10s} {name}")
    json.dump(result, sys.stdout, indent=1)
    print()
