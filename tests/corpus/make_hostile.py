"""Build a hostile folder, small and fast: odd names, things that are not files, bombs.

Everything is generated (nothing copied from the devset) in well under a second and a few MB:
  * bombs are written as deflate streams of zeros built from one full-flushed block repeated, so a PNG that
    decodes to 750 MB or a PDF page whose content inflates to 4 GiB costs a few MB and no compression time;
  * FIFOs, a link to /dev/zero, dangling links and symlink loops are made with os calls.

    from make_hostile import make_hostile_corpus
    expected = make_hostile_corpus(folder)   # {name as bytes: expected status}

or ``python tests/corpus/make_hostile.py DEST``.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

from make_broken import hand_pdf  # this folder is on the path, as it is for the tests

GOOD_TEXT = "Rechnung\nRechnungsnummer: RE-7\nRechnungsdatum: 01.02.2025\nGesamtbetrag: 10,00 EUR\n"


def zeros_zlib(n: int, unit: int = 1 << 20) -> bytes:
    """A zlib stream that inflates to ``n`` zero bytes, made without compressing ``n`` bytes."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(min(unit, n))
    c.compress(chunk)
    c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)  # after a full flush every block comes out the same
    full, rest = divmod(n, len(chunk))
    tail = c.compress(bytes(rest)) + c.flush(zlib.Z_FINISH)
    adler = ((n % 65521) << 16) | 1  # adler32 of n zeros: A stays 1, B adds 1 per byte
    return b"\x78\xda" + block * full + tail + struct.pack(">I", adler)


def png_bomb(path: Path, side: int = 15_800) -> Path:
    """An RGB PNG of side x side px, all black: under 1 MB on disk, 750 MB decoded (3 GB peak before #21)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = 1 + side * 3  # filter byte + RGB
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zeros_zlib(row * side, row * 64))
                     + chunk(b"IEND", b""))
    return path


def pdf_bomb(path: Path, inflated: int = 4 << 30) -> Path:
    """A one-page PDF whose content stream inflates to ``inflated`` bytes of NUL (PDF whitespace): ~4 MB."""
    stream = zeros_zlib(inflated)
    path.write_bytes(hand_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
                               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream
                               + b"\nendstream"]))
    return path


def good_pdf(path: Path | bytes, text: str = GOOD_TEXT) -> None:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_textbox(pymupdf.Rect(50, 50, 545, 800), text, fontsize=11, fontname="helv")
    data = doc.tobytes()
    doc.close()
    with open(path, "wb") as f:
        f.write(data)


def make_hostile_corpus(folder: Path) -> dict[bytes, str]:
    """Fill ``folder``; returns {file name as bytes: the status docpipe must give it}."""
    d = os.fsencode(folder)
    j = lambda name: os.path.join(d, name)
    expected: dict[bytes, str] = {}
    good_pdf(j(b"good.pdf"))
    expected[b"good.pdf"] = "ok"
    good_pdf(j(b"latin1_caf\xe9.pdf"), GOOD_TEXT.replace("RE-7", "RE-8"))
    expected[b"latin1_caf\xe9.pdf"] = "ok"
    good_pdf(j(b"esc_\x1b[31mred\x1b[0m.pdf"), GOOD_TEXT.replace("RE-7", "RE-9"))
    expected[b"esc_\x1b[31mred\x1b[0m.pdf"] = "ok"
    os.mkfifo(j(b"fifo.pdf"))
    expected[b"fifo.pdf"] = "not_a_file"
    os.symlink(b"/dev/zero", j(b"zero_link.pdf"))
    expected[b"zero_link.pdf"] = "not_a_file"
    os.symlink(b"nowhere.pdf", j(b"dangling.pdf"))
    expected[b"dangling.pdf"] = "dangling_link"
    os.symlink(b"self_loop.pdf", j(b"self_loop.pdf"))
    expected[b"self_loop.pdf"] = "symlink_loop"
    os.mkdir(j(b"sub"))
    os.symlink(b"..", j(b"sub/back_up"))
    expected[b"sub/back_up"] = "symlink_loop"
    png_bomb(Path(os.fsdecode(j(b"bomb_15800px.png"))))
    expected[b"bomb_15800px.png"] = "too_large"
    pdf_bomb(Path(os.fsdecode(j(b"bomb_4gib_content.pdf"))))
    expected[b"bomb_4gib_content.pdf"] = "too_large"
    open(j(b"empty.pdf"), "wb").close()
    expected[b"empty.pdf"] = "empty"
    return expected


if __name__ == "__main__":
    dest = Path(sys.argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    for name, status in make_hostile_corpus(dest).items():
        print(f"{status:14} {name!r}")
