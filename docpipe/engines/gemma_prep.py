"""Page preparation in worker processes: open a document, render a range of its pages at the token budget's
resolution, run the Gemma 4 image processor, and hand back numpy arrays (the engine makes the tensors).

Why processes, not threads: PyMuPDF is not thread-safe, and the image processor is mostly Python/numpy work
that holds the GIL (``scripts/bench_prep.py`` measures both). Each worker opens its own document, so no PyMuPDF
object is ever shared. Workers are started with ``spawn`` (no fork of a process that holds CUDA state and
threads) and ignore SIGINT: Ctrl-C goes to the engine, which cancels what is queued and shuts the pool down.
"""

from __future__ import annotations

from typing import Any

_image_processor: Any = None


def init_worker(image_processor: Any) -> None:
    """Pool initializer: keep the (pickled) image processor, one compute thread, Ctrl-C left to the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _image_processor
    _image_processor = image_processor
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def pixel_arrays(image_processor: Any, image: Any, image_tokens: int) -> tuple[Any, Any, int]:
    """(pixel_values float32 (max_patches, 3*16*16), position ids (max_patches, 2), soft tokens) of one image."""
    enc = image_processor([image], return_tensors="np", max_soft_tokens=image_tokens)
    import numpy as np

    pv = np.ascontiguousarray(np.asarray(enc["pixel_values"][0], dtype=np.float32))
    pos = np.ascontiguousarray(np.asarray(enc["image_position_ids"][0]))
    return pv, pos, int(np.asarray(enc["num_soft_tokens_per_image"])[0])


def prepare_pages(source: Any, password: str | None, max_pages: int, start: int, stop: int, spec: Any,
                  image_tokens: int) -> list[tuple[Any, Any, Any, int, bool]]:
    """Pages ``start``..``stop`` of one document as (PageInfo, pixel_values, position_ids, n_tokens,
    text_usable). Raises the same InputError subclasses as the in-thread path."""
    from ..rasterize import open_document

    out = []
    with open_document(source, password=password, max_pages=max_pages) as d:
        for page in d.pages(start, stop):
            img = page.render(spec)
            pv, pos, n = pixel_arrays(_image_processor, img, image_tokens)
            del img
            out.append((page.info, pv, pos, n, page.text_usable))
    return out
