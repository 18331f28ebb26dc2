"""Page preparation in worker processes: open a document, render a range of its pages at the token budget's
resolution, turn them into patches (``gemma_inputs.page_arrays``: uint8 real patches, a quarter of float32 and no
padding, whenever the processor's byte values are known) and hand back numpy arrays (the engine makes the tensors).

Why processes, not threads: PyMuPDF is not thread-safe, and the image processor is mostly Python/numpy work
that holds the GIL (``scripts/bench_prep.py`` measures both). Each worker opens its own document, so no PyMuPDF
object is ever shared. Workers are started with ``spawn`` (no fork of a process that holds CUDA state and
threads) and ignore SIGINT: Ctrl-C goes to the engine, which cancels what is queued and shuts the pool down.
"""

from __future__ import annotations

from typing import Any

_image_processor: Any = None
_as_bytes = False


def init_worker(image_processor: Any) -> None:
    """Pool initializer: keep the (pickled) image processor and whether its pages can travel as bytes (the same
    check as the parent's PromptBuilder, on the same processor), one compute thread, Ctrl-C left to the parent."""
    import os
    import signal

    from ...lifeline import tie_to_parent
    from .inputs import byte_values

    tie_to_parent(os.getppid(), kernel=False)  # the pool starts from a thread: watch the parent's pid instead
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    global _image_processor, _as_bytes
    _image_processor = image_processor
    _as_bytes = byte_values(image_processor) is not None


def prepare_pages(source: Any, password: str | None, max_pages: int, start: int, stop: int, spec: Any,
                  image_tokens: int) -> list[tuple[Any, Any, Any, int, bool]]:
    """Pages ``start``..``stop`` of one document as (PageInfo, patches, position_ids, n_tokens, text_usable), the
    arrays as ``page_arrays`` makes them. Raises the same InputError subclasses as the in-thread path."""
    from ...rasterize import open_document
    from .inputs import page_arrays

    out = []
    with open_document(source, password=password, max_pages=max_pages) as d:
        for page in d.pages(start, stop):
            img = page.render(spec)
            pv, pos, n = page_arrays(_image_processor, img, image_tokens, _as_bytes)
            del img
            out.append((page.info, pv, pos, n, page.text_usable))
    return out
