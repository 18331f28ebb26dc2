"""Gemma 4 page pixels kept as bytes: what ``collate`` hands the vision tower must be exactly what the image
processor gives (``pixel_values`` in the model dtype, ``image_position_ids``), for real rendered pages, for both
processor backends (PIL, what the tests build; torchvision, what ``AutoProcessor`` may load), in the in-thread and
the process-pool (gemma_prep) paths, and on the float fallback.

Exact, not within an ulp: the bytes are those the processor would rescale (its own resize; for the PIL backend the
same ``Image.resize`` call made directly; none when the page is already at its target size), and collate maps each
byte through a table of the processor's own float32 outputs, then casts to the dtype as before: no arithmetic of
ours touches a value. (Computing ``byte * (1/255)`` in float32 instead would differ from the PIL backend, which
multiplies in float64, by 1 float32 ulp for 126 of the 256 byte values; not after a bf16 or fp16 cast.)
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from docpipe.discover import describe  # noqa: E402
from docpipe.engines.gemma.inputs import PromptBuilder, collate  # noqa: E402
from docpipe.engines.vlm.prompting import render_spec_for_tokens  # noqa: E402
from docpipe.rasterize import open_document  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from gemma_tiny import build_processor, build_tokenizer  # noqa: E402

SAMPLES = Path(__file__).parent.parent / "samples"
#: A4 and US letter PDFs (2 pages in one), a narrow receipt PDF, photos and scans of other aspect ratios (the PNG
#: receipt is small: the processor enlarges it at 1120 tokens)
FILES = ("invoice_en_classic_acme.pdf", "invoice_en_2page_globex.pdf", "invoice_de_din_mueller.pdf",
         "receipt_de_baeckerei_kern.pdf", "receipt_en_harbor_bean.png", "photo_receipt_fr_superette.jpg",
         "scan_invoice_en_2page_globex.tif")


@pytest.fixture(scope="module")
def builders() -> dict[str, PromptBuilder]:
    from transformers import Gemma4ImageProcessor

    torch.set_num_threads(1)
    tok = build_tokenizer()
    pil = build_processor(tok)
    tv = build_processor(tok)
    tv.image_processor = Gemma4ImageProcessor()
    return {"pil": PromptBuilder(pil), "torchvision": PromptBuilder(tv)}


@cache
def rendered(budget: int) -> list[Image.Image]:
    """Every page of FILES rendered the way GemmaEngine._produce_here renders it (callers do not modify them)."""
    spec = render_spec_for_tokens(budget)
    out = []
    for name in FILES:
        with open_document(describe(SAMPLES / name)) as d:
            out += [page.render(spec) for page in d.pages()]
    return out


def assert_same_as_processor(pb: PromptBuilder, images: list[Image.Image], budget: int, dtype: torch.dtype,
                             pages: list) -> None:
    ref = pb.processor.image_processor(images, return_tensors="pt", max_soft_tokens=budget)
    half = len(pages) // 2  # two rows of a batch: images are stacked in row order
    got = collate([([1, 2, 3], pages[:half]), ([1], pages[half:])], 0, pb.image_id, torch.device("cpu"), dtype)
    assert got["pixel_values"].dtype == dtype and got["image_position_ids"].dtype == torch.long
    assert torch.equal(got["pixel_values"], ref["pixel_values"].to(dtype))
    assert torch.equal(got["image_position_ids"], ref["image_position_ids"])
    assert [p.n_tokens for p in pages] == list(ref["num_soft_tokens_per_image"])


@pytest.mark.parametrize("budget", [70, 1120])
@pytest.mark.parametrize("backend", ["pil", "torchvision"])
def test_rendered_pages_as_bytes_equal_the_processor(builders, backend, budget):
    pb = builders[backend]
    assert pb.byte_values is not None
    images = rendered(budget)
    for dtype in (torch.bfloat16, torch.float32):
        pages = [pb.pixels(img, budget, dtype) for img in images]
        for p in pages:  # compact: real patches only, one byte a value
            assert p.patches.dtype == torch.uint8 and p.patches.shape == (p.n_tokens * 9, 768)
            assert p.max_patches == budget * 9
        assert_same_as_processor(pb, images, budget, dtype, pages)


@pytest.mark.parametrize("backend", ["pil", "torchvision"])
def test_page_at_the_target_size_is_patchified_without_the_processor(builders, backend, monkeypatch):
    from transformers.models.gemma4.image_processing_pil_gemma4 import get_aspect_ratio_preserving_size

    pb = builders[backend]
    ip = pb.processor.image_processor
    images = []
    pages = rendered(1120)
    for img in (pages[0], pages[FILES.index("photo_receipt_fr_superette.jpg") + 1]):  # US letter, a receipt photo
        while (size := get_aspect_ratio_preserving_size(img.height, img.width, 16, 1120 * 9, 3)) != img.size[::-1]:
            img = img.resize(size[::-1], Image.Resampling.BICUBIC)  # the size function is not idempotent: repeat
        images.append(img)
    assert images[0].size != images[1].size
    calls = []
    real = type(ip).preprocess
    monkeypatch.setattr(type(ip), "preprocess", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    pages = [pb.pixels(img, 1120, torch.bfloat16) for img in images]
    assert not calls and all(p.patches.dtype == torch.uint8 for p in pages)
    assert_same_as_processor(pb, images, 1120, torch.bfloat16, pages)


def test_fallback_to_floats_stays_exact(builders):
    """Images that are not RGB, and processors whose output is not a function of the byte alone (per-channel
    normalisation), take the processor's float output; such pages batch with byte pages."""
    from transformers import Gemma4ImageProcessorPil
    from transformers.models.gemma4.image_processing_pil_gemma4 import get_aspect_ratio_preserving_size

    pb = builders["pil"]
    page = rendered(280)[0]
    assert get_aspect_ratio_preserving_size(page.height, page.width, 16, 280 * 9, 3) != page.size[::-1]  # resized
    grey, rgba = page.convert("L"), page.convert("RGBA")
    pages = [pb.pixels(img, 280, torch.bfloat16) for img in (grey, page, rgba)]
    assert [p.patches.dtype for p in pages] == [torch.bfloat16, torch.uint8, torch.bfloat16]
    assert_same_as_processor(pb, [grey, page, rgba], 280, torch.bfloat16, pages)

    odd = build_processor(pb.tok)
    odd.image_processor = Gemma4ImageProcessorPil(do_normalize=True, image_mean=[0.5, 0.4, 0.3],
                                                  image_std=[0.2, 0.3, 0.25])
    opb = PromptBuilder(odd)
    assert opb.byte_values is None
    pages = [opb.pixels(img, 280, torch.float32) for img in (page, page.transpose(Image.Transpose.ROTATE_90))]
    assert all(p.patches.dtype == torch.float32 and p.patches.shape[0] == p.n_tokens * 9 for p in pages)
    assert_same_as_processor(opb, [page, page.transpose(Image.Transpose.ROTATE_90)], 280, torch.float32, pages)


def test_pool_worker_pages_equal_in_thread_pages(builders, monkeypatch):
    """gemma_prep (prep_workers > 1) sends uint8 arrays; the engine's _drain makes them PagePixels with
    PromptBuilder.page: the same batch as the in-thread path."""
    from docpipe.engines.gemma import prep as gemma_prep

    pb = builders["torchvision"]
    monkeypatch.setattr(gemma_prep, "_image_processor", pb.processor.image_processor)
    monkeypatch.setattr(gemma_prep, "_as_bytes", True)
    src = describe(SAMPLES / "invoice_en_2page_globex.pdf")
    spec = render_spec_for_tokens(140)
    got = gemma_prep.prepare_pages(src, None, 10, 0, 2, spec, 140)
    assert [info.page_no for info, *_ in got] == [1, 2]
    assert all(pv.dtype.name == "uint8" and pv.shape == (n * 9, 768) for _, pv, _, n, _ in got)
    pooled = [pb.page(pv, pos, n, 140, torch.bfloat16) for _, pv, pos, n, _ in got]
    images = rendered(140)[1:3]
    assert_same_as_processor(pb, images, 140, torch.bfloat16, pooled)
