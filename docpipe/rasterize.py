"""SourceFile -> pages at native aspect ratio, streamed, rendered only when an engine asks.

PDFs go through PyMuPDF, images through Pillow. Geometry comes from the file (PDF points with /Rotate applied,
EXIF orientation for photos). The resolution is chosen from a pixel budget (what the engine can use), never a fixed
DPI, and every render is capped so that a 5-metre drawing or a decompression bomb cannot exhaust memory.
Pages are yielded one at a time: a 300-page PDF never holds more than the page in hand.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import EmptyDocumentError, EncryptedError, InputError, TooLargeError
from .layer_text import layer_text
from .models import PageInfo, SourceFile
from .reading import read_verified

#: Gemma 4 at 1120 image tokens sees at most 10,080 patches of 16x16 px (about 2.6 MP); more pixels are waste.
GEMMA_MAX_PIXELS = 10_080 * 16 * 16
#: Hard cap for any single render or decoded image (the feasibility notes: never allocate a page above ~40 MP).
HARD_MAX_PIXELS = 40_000_000
HARD_MAX_SIDE = 16_384
#: Images whose header claims more than this are refused outright (decompression bombs).
MAX_IMAGE_PIXELS = 250_000_000
#: Most pixels ever decoded at once (Pillow holds 4 bytes a pixel: 256 MB); a JPEG over it is decoded reduced
#: (``draft``), any other image over it is refused as too_large.
MAX_DECODE_PIXELS = 64_000_000
#: Most bytes a page's content stream may inflate to: real pages use a few MB; past this it is a bomb.
MAX_CONTENT_BYTES = 64 << 20
#: Files up to this size are read into memory once, hashed as read, and parsed from those very bytes.
MAX_IN_MEMORY_BYTES = 256 << 20
DEFAULT_MAX_PAGES = 2_000


@dataclass(frozen=True)
class RenderSpec:
    """How an engine wants its pixels: a pixel budget (not a DPI) and grey or colour."""

    max_pixels: int = GEMMA_MAX_PIXELS
    max_dpi: float = 400.0  # never render tiny pages past this
    min_dpi: float = 0.0  # OCR wants at least ~150 dpi when the budget allows
    gray: bool = False
    # (width, height) of the page in any unit -> the exact (width, height) in pixels to render at, overriding the
    # budget and DPI bounds: a model's image processor resizes to sizes of its own (Gemma 4: multiples of 48 px),
    # and rendering there directly saves that resize and a second resampling
    exact_size: Callable[[float, float], tuple[int, int]] | None = None

    def zoom_for(self, width_pt: float, height_pt: float) -> float:
        """Scale from PDF points to pixels: fill the budget, respect the DPI bounds and the hard caps."""
        area = max(width_pt * height_pt, 1.0)
        z = math.sqrt(min(self.max_pixels, HARD_MAX_PIXELS) / area)
        z = min(z, self.max_dpi / 72.0)
        z = max(z, self.min_dpi / 72.0)
        z = min(z, math.sqrt(HARD_MAX_PIXELS / area), HARD_MAX_SIDE / max(width_pt, height_pt, 1.0))
        # MuPDF rounds the pixmap's sides up: shrink until the rounded size is inside the budget
        budget = min(self.max_pixels, HARD_MAX_PIXELS)
        while z > 0.01 and math.ceil(width_pt * z) * math.ceil(height_pt * z) > budget:
            z *= 0.999
        return z


#: A good OCR render: ~200 dpi on a letter page, capped at 12 MP for large pages.
OCR_SPEC = RenderSpec(max_pixels=12_000_000, max_dpi=200.0, min_dpi=0.0, gray=True)

_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)


def text_layer_usable(text: str, image_coverage: float, content_bytes: int) -> bool:
    """Whether a page's text layer can stand in for OCR.

    Empty or near-empty layers are not. A short layer on a page that is mostly a picture or heavy vector
    outlines (a browser print whose body became paths, a scan with only a stamp in text) is not either.
    Garbage layers (mostly replacement characters) are not.
    """
    words = _WORD.findall(text)
    if len(words) < 5:
        return False
    bad = text.count("\ufffd")
    if bad > 0.1 * max(len(text), 1):
        return False
    n_chars = sum(len(w) for w in words)
    if n_chars < 400 and (image_coverage > 0.3 or content_bytes > 30 * n_chars + 20_000):
        return False
    return True


class RasterPage:
    """One page: its PageInfo (text layer included) and a render() that makes pixels on demand."""

    def __init__(self, info: PageInfo, renderer: Any, usable_text: bool) -> None:
        self.info = info
        self._renderer = renderer
        self.text_usable = usable_text

    def render(self, spec: RenderSpec) -> Any:
        """PIL image of the page at native aspect ratio under spec's pixel budget; records DPI and size."""
        t = time.perf_counter()
        img, dpi = self._renderer(spec)
        self.info.render_ms += (time.perf_counter() - t) * 1000
        self.info.render_dpi = round(dpi, 1) if dpi else None
        self.info.width_px, self.info.height_px = img.size
        return img


class Document:
    """An opened source file: page count, the pages as a stream, and the PyMuPDF handle for PDFs."""

    def __init__(self, src: SourceFile, password: str | None = None, max_pages: int = DEFAULT_MAX_PAGES) -> None:
        self.src = src
        self.pdf: Any | None = None
        self._image: Any | None = None
        if src.kind == "empty":
            raise EmptyDocumentError("empty file (0 bytes)")
        self.data: bytes | None = None
        if src.kind in ("pdf", "image"):  # the bytes parsed are the bytes src.sha256 names (or ChangedError)
            self.data = read_verified(src, MAX_IN_MEMORY_BYTES)
        if src.kind == "pdf":
            self._open_pdf(password)
        elif src.kind == "image":
            self._open_image()
        else:
            raise InputError("not a PDF or an image docpipe can read (checked the file's bytes, not its name)")
        if self.page_count == 0:
            truly_empty = self.pdf is None or _page_tree_is_empty(self.pdf)
            self.close()
            if not truly_empty:
                raise InputError("corrupt PDF: damaged structure or page tree, no readable pages")
            raise EmptyDocumentError("document has no pages")
        if self.page_count > max_pages:
            n = self.page_count
            self.close()
            raise TooLargeError(f"{n} pages is over the limit of {max_pages} (raise it with --max-pages)")

    # -- opening ------------------------------------------------------------------------------------------------
    def _open_pdf(self, password: str | None) -> None:
        import pymupdf

        pymupdf.TOOLS.mupdf_display_errors(False)
        pymupdf.TOOLS.mupdf_display_warnings(False)
        try:
            if self.data is not None:
                doc = pymupdf.open(stream=self.data, filetype="pdf")
            else:
                doc = pymupdf.open(self.src.path, filetype="pdf")
        except Exception as e:  # pymupdf raises FileDataError / RuntimeError variants
            raise InputError(f"corrupt or unreadable PDF: {_one_line(e)}") from e
        if doc.needs_pass:
            if not password or not doc.authenticate(password):
                doc.close()
                hint = "wrong password given" if password else "use --password"
                raise EncryptedError(f"encrypted PDF: {hint}")
        self.pdf = doc
        try:
            self.page_count = doc.page_count
        except Exception as e:
            raise InputError(f"corrupt PDF page tree: {_one_line(e)}") from e

    def _open_image(self) -> None:
        img = self._reopen_image()
        w, h = img.size
        if w * h > MAX_IMAGE_PIXELS:
            raise TooLargeError(f"image of {w}x{h} px is over the {MAX_IMAGE_PIXELS // 1_000_000} MP limit")
        if w * h > MAX_DECODE_PIXELS * (64 if img.format == "JPEG" else 1):  # JPEG decodes at down to 1/8 a side
            raise TooLargeError(f"image of {w}x{h} px ({w * h / 1e6:.0f} MP) is over the "
                                f"{MAX_DECODE_PIXELS // 1_000_000} MP docpipe decodes at once")
        self._image = img
        try:
            self.page_count = getattr(img, "n_frames", 1)
        except Exception as e:
            raise InputError(f"corrupt or unreadable image: {_one_line(e)}") from e

    def _reopen_image(self) -> Any:
        """A fresh, not yet decoded Pillow image over the verified bytes (cheap: only the header is read)."""
        import io

        from PIL import Image

        Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
        try:
            return Image.open(io.BytesIO(self.data) if self.data is not None else self.src.path)
        except Image.DecompressionBombError as e:
            raise TooLargeError(f"image too large: {_one_line(e)}") from e
        except Exception as e:
            raise InputError(f"corrupt or unreadable image: {_one_line(e)}") from e

    # -- pages --------------------------------------------------------------------------------------------------
    def pages(self, start: int = 0, stop: int | None = None) -> Iterator[RasterPage]:
        """Yield pages ``start`` (0-based) up to ``stop`` one by one; nothing is rendered until RasterPage.render is
        called."""
        end = self.page_count if stop is None else min(stop, self.page_count)
        if self.pdf is not None:
            yield from self._pdf_pages(start, end)
        else:
            yield from self._image_pages(start, end)

    def _pdf_pages(self, start: int, end: int) -> Iterator[RasterPage]:
        import pymupdf

        for i in range(start, end):
            try:
                page = self.pdf.load_page(i)
                rect = page.rect  # points, /Rotate already applied
            except Exception as e:
                raise InputError(f"page {i + 1} cannot be read: {_one_line(e)}") from e
            content_bytes, invisible = _scan_contents(self.pdf, page)  # before anything interprets the page
            try:
                text = layer_text(page)
            except Exception as e:
                raise InputError(f"page {i + 1} cannot be read: {_one_line(e)}") from e
            coverage = _image_coverage(page)
            if invisible and coverage < 0.3:
                text = _visible_text(page)
            info = PageInfo(page_no=i + 1, width_pt=round(rect.width, 2), height_pt=round(rect.height, 2),
                            rotation=page.rotation, text=text, text_source="layer" if text.strip() else "none")

            def renderer(spec: RenderSpec, page: Any = page, rect: Any = rect) -> tuple[Any, float]:
                from PIL import Image

                zx = zy = spec.zoom_for(rect.width, rect.height)
                size = spec.exact_size(rect.width, rect.height) if spec.exact_size else None
                if size:
                    zx, zy = size[0] / rect.width, size[1] / rect.height
                cs = pymupdf.csGRAY if spec.gray else pymupdf.csRGB
                try:
                    pix = page.get_pixmap(matrix=pymupdf.Matrix(zx, zy), colorspace=cs, alpha=False)
                except Exception as e:
                    raise InputError(f"page {page.number + 1} cannot be rendered: {_one_line(e)}") from e
                mode = "L" if spec.gray else "RGB"
                img = Image.frombytes(mode, (pix.width, pix.height), pix.samples)
                if size and img.size != tuple(size):  # MuPDF rounded a side outwards by a pixel
                    img = img.resize(tuple(size), Image.Resampling.BICUBIC)
                return img, 72.0 * math.sqrt(zx * zy)

            yield RasterPage(info, renderer, text_layer_usable(text, coverage, content_bytes))

    def _image_pages(self, start: int, end: int) -> Iterator[RasterPage]:
        img = self._image
        for i in range(start, end):
            try:
                img.seek(i)
                w, h = img.size
                turned = i == 0 and _exif_orientation(img) in (5, 6, 7, 8)
            except Exception as e:
                raise InputError(f"image frame {i + 1} cannot be decoded: {_one_line(e)}") from e
            if turned:
                w, h = h, w
            dpi = _image_dpi(img)
            info = PageInfo(page_no=i + 1, width_pt=round(w * 72.0 / dpi, 2), height_pt=round(h * 72.0 / dpi, 2),
                            text="", text_source="none")

            def renderer(spec: RenderSpec, i: int = i, dpi: float = dpi) -> tuple[Any, float]:
                frame, factor = self._decode_frame(i, spec)
                img, out_dpi = _fit_image(frame, spec, dpi / factor)
                return img, out_dpi

            yield RasterPage(info, renderer, False)

    def _decode_frame(self, i: int, spec: RenderSpec) -> tuple[Any, float]:
        """Frame ``i`` decoded no larger than the spec needs (JPEG: ``draft`` decodes at 1/2..1/8 scale; others:
        ``reduce`` right after decoding, so only one full-size copy ever exists), EXIF-turned, and the factor it
        was shrunk by. A fresh image per call: nothing full-size outlives the render."""
        from PIL import ImageOps

        img = self._reopen_image()
        try:
            img.seek(i)
            w, h = img.size
            want = _needed_pixels(spec, w, h)
            # keep at least twice the needed side so the final resample has real pixels to work from
            factor = max(1, int(math.sqrt(w * h / max(want, 1)) / 2))
            if img.format == "JPEG" and factor > 1:
                img.draft(img.mode if img.mode in ("L", "RGB") else "RGB", (w // factor, h // factor))
            img.load()
            rest = max(1, int(factor * img.size[0] / w))  # what draft did not already take off
            frame = img
            if rest > 1:
                src = img if img.mode in ("L", "RGB", "RGBA", "LA", "I", "F") else \
                    img.convert("L" if img.mode == "1" else "RGB")  # reduce() averages only these modes
                frame = src.reduce(rest)
                img.close()  # the full-size pixels go now
            reduced_w = frame.size[0]
            if i == 0:
                ImageOps.exif_transpose(frame, in_place=True)
        except (InputError, MemoryError):
            img.close()
            raise
        except Exception as e:
            img.close()
            raise InputError(f"image frame {i + 1} cannot be decoded: {_one_line(e)}") from e
        return frame, w / max(reduced_w, 1)

    def close(self) -> None:
        if self.pdf is not None:
            self.pdf.close()
            self.pdf = None
        if self._image is not None:
            self._image.close()
            self._image = None

    def __enter__(self) -> Document:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fit_image(frame: Any, spec: RenderSpec, dpi: float) -> tuple[Any, float]:
    """Downscale (never upscale) an image to the spec's budget, in the spec's colour mode."""
    from PIL import Image

    w, h = frame.size
    mode = "L" if spec.gray else "RGB"
    if spec.exact_size is not None:  # one bicubic resize to the processor's own size, as it would do itself
        size = tuple(spec.exact_size(w, h))
        img = frame if frame.mode == mode else frame.convert(mode)
        if img.size != size:
            img = img.resize(size, Image.Resampling.BICUBIC)
        return img, dpi * math.sqrt(size[0] * size[1] / max(w * h, 1))
    scale = min(1.0, math.sqrt(min(spec.max_pixels, HARD_MAX_PIXELS) / max(w * h, 1)), HARD_MAX_SIDE / max(w, h))
    if spec.max_dpi and dpi * scale > spec.max_dpi and dpi > 72.0:
        scale = min(scale, spec.max_dpi / dpi)
    img = frame if frame.mode == mode else frame.convert(mode)
    if scale < 0.999:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    return img, dpi * scale


def _needed_pixels(spec: RenderSpec, w: int, h: int) -> int:
    if spec.exact_size is not None:
        ew, eh = spec.exact_size(w, h)
        return int(ew * eh)
    return min(spec.max_pixels, HARD_MAX_PIXELS)


def _exif_orientation(img: Any) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:
        return 1


def _scan_contents(doc: Any, page: Any) -> tuple[int, bool]:
    """(bytes the page's content streams inflate to, whether they use invisible text ``3 Tr``), inflating in
    1 MiB steps and giving up past MAX_CONTENT_BYTES: a 4 MB file can hold a stream that inflates to GiBs, and
    ``page.read_contents()`` would hold all of it (and MuPDF would then interpret all of it, three times)."""
    import zlib

    total, invisible, tail = 0, False, b""
    try:
        xrefs = page.get_contents()
    except Exception:
        return 0, False
    for xref in xrefs:
        try:
            kind, filt = doc.xref_get_key(xref, "Filter")
            raw = doc.xref_stream_raw(xref) or b""
        except Exception:
            continue
        names = filt.replace("[", " ").replace("]", " ").split() if kind in ("name", "array") else []
        if names == ["/FlateDecode"] or names == ["/Fl"]:
            chunks: Iterator[bytes] = _inflate(raw, zlib)
        elif not names:
            chunks = iter([raw])
        elif len(raw) <= 256 << 10:  # other filters, small enough that even LZW's ratio stays in bounds
            try:
                chunks = iter([doc.xref_stream(xref) or b""])
            except Exception:
                chunks = iter([raw])
        else:
            chunks = iter([raw])  # counted as is: not inflated
        for chunk in chunks:
            total += len(chunk)
            if total > MAX_CONTENT_BYTES:
                raise TooLargeError(f"page {page.number + 1}'s content stream inflates past "
                                    f"{MAX_CONTENT_BYTES >> 20} MiB (a decompression bomb?): not read")
            invisible = invisible or b"3 Tr" in tail + chunk[:8] or b"3 Tr" in chunk
            tail = chunk[-8:]
    return total, invisible


def _inflate(raw: bytes, zlib: Any, step: int = 1 << 20) -> Iterator[bytes]:
    d = zlib.decompressobj()
    data = raw
    try:
        while data and not d.eof:
            chunk = d.decompress(data, step)
            data = d.unconsumed_tail
            if not chunk and not data:
                break
            yield chunk
    except zlib.error:  # a damaged stream: MuPDF reads what it can, so do we
        return


def _page_tree_is_empty(doc: Any) -> bool:
    """True for a well-formed PDF whose page tree is really empty (/Count 0 or /Kids []), False when the pages
    are missing because the file is damaged (no catalog, repaired xref, broken or circular page tree)."""
    try:
        if getattr(doc, "is_repaired", False):
            return False
        cat = doc.pdf_catalog()
        if cat <= 0:
            return False
        kind, ref = doc.xref_get_key(cat, "Pages")
        if kind != "xref":
            return False
        pages = int(ref.split()[0])
        _, count = doc.xref_get_key(pages, "Count")
        _, kids = doc.xref_get_key(pages, "Kids")
        return count.strip() == "0" and kids.replace(" ", "") == "[]"
    except Exception:
        return False


def _visible_text(page: Any) -> str:
    """Text without invisible spans (render mode 3). Invisible text over a scan is an OCR layer and is kept by
    the caller; invisible text over nothing is not content a reader sees."""
    lines = []
    for block in page.get_text("dict", sort=True).get("blocks", []):
        for line in block.get("lines", []):
            spans = [s["text"] for s in line.get("spans", []) if s.get("alpha", 255) != 0]
            if spans:
                lines.append("".join(spans))
    return "\n".join(lines) + ("\n" if lines else "")


def _image_dpi(img: Any) -> float:
    """The image's DPI from its metadata, 150 when absent or absurd (a typical scan)."""
    dpi = img.info.get("dpi")
    try:
        d = float(dpi[0]) if dpi else 0.0
    except (TypeError, ValueError, IndexError):
        d = 0.0
    return d if 30.0 <= d <= 2400.0 else 150.0


def _image_coverage(page: Any) -> float:
    """Fraction of the page area covered by raster images (capped at 1)."""
    try:
        infos = page.get_image_info()
    except Exception:
        return 0.0
    area = max(page.rect.width * page.rect.height, 1.0)
    covered = 0.0
    for inf in infos:
        x0, y0, x1, y1 = inf.get("bbox", (0, 0, 0, 0))
        covered += max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return min(covered / area, 1.0)


def _one_line(e: BaseException) -> str:
    s = re.sub(r"\s*'?/[^' ]+'?\s*", " ", str(e))  # the path is already in the report line
    for said in ("Failed to open file as type pdf.", "Failed to open stream"):
        s = s.replace(said, "cannot be opened")
    s = " ".join(s.split())
    return s[:300] if s else type(e).__name__


def open_document(src: SourceFile, password: str | None = None, max_pages: int = DEFAULT_MAX_PAGES) -> Document:
    """Open a source for page streaming; raises an InputError subclass with a one-line reason."""
    return Document(src, password=password, max_pages=max_pages)
