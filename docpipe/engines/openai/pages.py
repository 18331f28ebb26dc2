"""Pages -> chat messages: render at the pixel budget of the image-token budget, encode as data URLs.

A document is read as a stream of page groups so that a 300-page PDF holds one group's images at a time.
PyMuPDF is not thread-safe, so every call on a ``PageStream`` must come from the same single render thread;
image encoding (Pillow releases the GIL) may run elsewhere.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass
from typing import Any

from ...models import PageInfo
from ...rasterize import Document, RenderSpec
from ...schemas import SchemaInfo
from ..base import DocJob
from ..vlm.prompting import SUMMARY_INSTRUCTIONS, SYSTEM_PROMPT, extraction_instructions, neutralise

#: Page text beyond this many characters per request is left out of the prompt (the images carry the page).
MAX_TEXT_CHARS = 60_000


class PromptSchema:
    """A SchemaInfo whose JSON Schema is computed once: pydantic takes ~10 ms to build it, per request otherwise."""

    def __init__(self, schema: SchemaInfo) -> None:
        self._schema = schema
        self.json_schema = schema.json_schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)


@dataclass
class PageGroup:
    """Consecutive pages sent in one request: their infos, usable text layers and encoded images."""

    infos: list[PageInfo]
    texts: list[str]
    images: list[str]  # data URLs
    render_ms: float = 0.0
    encode_ms: float = 0.0


def encode_image(img: Any, fmt: str = "jpeg", quality: int = 90) -> str:
    """A PIL image as a data URL. JPEG by default: ~12 ms for a 2.6 MP page where PNG takes ~60 ms."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        img.save(buf, format="JPEG", quality=quality)
    elif fmt == "webp":
        img.save(buf, format="WEBP", quality=quality, method=0)
    else:
        img.save(buf, format="PNG", compress_level=1)
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def shrink_group(group: PageGroup, max_pixels: int, fmt: str, quality: int) -> PageGroup:
    """The same pages with their images scaled down to at most ``max_pixels`` each (a server's context refused
    the larger ones); text and page info unchanged."""
    from PIL import Image

    images = []
    for url in group.images:
        with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as img:
            scale = min(1.0, (max_pixels / (img.width * img.height)) ** 0.5)
            small = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))),
                               Image.Resampling.LANCZOS) if scale < 1 else img.copy()
        images.append(encode_image(small, fmt, quality))
    return PageGroup(group.infos, group.texts, images, group.render_ms, group.encode_ms)


class PageStream:
    """An open document handing out its pages group by group (call only from the render thread)."""

    def __init__(self, job: DocJob) -> None:
        self.doc: Document = job.open()
        self.page_count: int = self.doc.page_count
        self._pages = self.doc.pages()

    def next_group(self, n: int, spec: RenderSpec, fmt: str, quality: int) -> PageGroup:
        """Render and encode the next ``n`` pages (fewer at the end)."""
        group = PageGroup([], [], [])
        for page in self._pages:
            t = time.perf_counter()
            img = page.render(spec)
            t1 = time.perf_counter()
            group.images.append(encode_image(img, fmt, quality))
            group.encode_ms += (time.perf_counter() - t1) * 1000
            group.render_ms += (t1 - t) * 1000
            del img
            group.infos.append(page.info)
            group.texts.append(page.info.text if page.text_usable else "")
            if len(group.infos) >= n:
                break
        return group

    def close(self) -> None:
        self.doc.close()


def extraction_messages(schema: SchemaInfo | PromptSchema, group: PageGroup, first_page: int, total_pages: int
                        ) -> list[dict[str, Any]]:
    """System + one user turn: the page images first (as Gemma prefers), then the instructions and page text."""
    texts = _capped(group.texts)
    text = extraction_instructions(schema, texts, n_pages=len(group.infos))  # type: ignore[arg-type]
    if len(group.infos) < total_pages:
        last = first_page + len(group.infos) - 1
        text += (f"\nThese are pages {first_page}-{last} of {total_pages}; extract what these pages show "
                 "(null for fields that are on other pages).")
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": u}} for u in group.images]
    content.append({"type": "text", "text": text})
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def summary_messages(group: PageGroup | None, page_texts: list[str], words: int) -> list[dict[str, Any]]:
    """A plain-prose summary request: the images when the whole document fits one request, and the page text."""
    content: list[dict[str, Any]] = []
    if group is not None:
        content += [{"type": "image_url", "image_url": {"url": u}} for u in group.images]
    text = SUMMARY_INSTRUCTIONS.format(words=words)
    joined = "\n\n".join(f"--- page {i} ---\n{neutralise(t.strip())}"
                         for i, t in enumerate(_capped(page_texts), 1) if t.strip())
    if joined:
        text += "\nText found on the pages (the images, when present, are authoritative):\n" + joined
    content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]  # no system prompt: it asks for JSON only


def _capped(texts: list[str]) -> list[str]:
    out, used = [], 0
    for t in texts:
        keep = max(0, min(len(t), MAX_TEXT_CHARS - used))
        out.append(t[:keep])
        used += keep
    return out
