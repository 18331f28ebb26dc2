"""Gemma 4 model inputs built by hand: safe prompts, per-page pixel tensors, padded batches.

Why not ``processor.apply_chat_template(tokenize=True)`` on the whole batch: (1) page images are turned into
pixel tensors in the rasterizing thread, one page at a time, so the GPU loop only stacks them; (2) document text is
tokenized apart from the template with ``split_special_tokens=True``, so a page that says ``<turn|>`` or
``<|image|>`` yields ordinary text tokens on every transformers version (``sanitize_control_tokens`` exists only
from 5.23), on top of ``prompting.neutralise``. The image placeholder expansion is the processor's own:
``<|image>`` + n x ``<|image|>`` + ``<image|>``, with ``mm_token_type_ids`` marking the image tokens.

Page pixels are kept as bytes: the image processor's own output is ``rescale(byte)`` of its resized, patchified
uint8 image, so a page keeps its real patches as uint8 (1/4 of float32, no padding) and ``collate`` maps bytes to the
processor's exact float values on the device. ``byte_values`` proves this against the processor at start-up; a
processor it cannot reproduce (e.g. per-channel normalisation) keeps the processor's float output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..vlm.messages import MARK_CLOSE as _MARK_CLOSE
from ..vlm.messages import MARK_OPEN as _MARK_OPEN
from ..vlm.messages import untrusted  # noqa: F401  (where the markers go)
from ..vlm.prompting import neutralise


@dataclass
class PagePixels:
    """One page ready for the vision tower: its real patches (no padding), their positions, the soft-token count,
    and how many rows ``collate`` pads it to (the processor's max_patches for the budget)."""

    patches: Any  # tensor (n_patches, 3*16*16): uint8 bytes (see byte_values) or floats already in the model dtype
    position_ids: Any  # long tensor (n_patches, 2), (x, y) of each patch
    n_tokens: int
    max_patches: int
    byte_values: Any = None  # float32 tensor (256,): the processor's value of each byte, for uint8 patches


@dataclass(frozen=True)
class ExactSize:
    """``RenderSpec.exact_size`` for a Gemma 4 image processor: (width, height) of a page -> the pixel size the
    processor would resize it to at the budget, by the processor module's own function. A plain frozen dataclass,
    so a spec holding it pickles to gemma_prep's worker processes."""

    module: str
    patch_size: int
    pooling: int
    image_tokens: int

    def __call__(self, width: float, height: float) -> tuple[int, int]:
        import importlib

        fn = importlib.import_module(self.module).get_aspect_ratio_preserving_size
        h, w = fn(height, width, self.patch_size, self.image_tokens * self.pooling ** 2, self.pooling)
        return int(w), int(h)


def exact_size(image_processor: Any, image_tokens: int) -> ExactSize | None:
    """The processor's own resize rule at the budget (the same function name in its PIL and torchvision modules,
    transformers 5.17..5.24); None if its module has none."""
    import importlib

    ip = image_processor
    if getattr(importlib.import_module(type(ip).__module__), "get_aspect_ratio_preserving_size", None) is None:
        return None
    return ExactSize(type(ip).__module__, ip.patch_size, ip.pooling_kernel_size, image_tokens)


def target_size(image_processor: Any, height: int, width: int, image_tokens: int) -> tuple[int, int] | None:
    """(height, width) the processor resizes an image to at the budget; None if it has no such rule."""
    size = exact_size(image_processor, image_tokens)
    return None if size is None else size(width, height)[::-1]


def patchify(rgb: np.ndarray, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(patches (n, patch_size**2 * 3), positions (n, 2) as (x, y)) of an (H, W, 3) array, in the processor's
    order: patches row by row, pixels inside a patch row by row, channels last."""
    h, w = rgb.shape[0] // patch_size, rgb.shape[1] // patch_size
    p = rgb[:h * patch_size, :w * patch_size].reshape(h, patch_size, w, patch_size, rgb.shape[2])
    patches = p.transpose(0, 2, 1, 3, 4).reshape(h * w, -1)
    y, x = np.divmod(np.arange(h * w, dtype=np.int64), w)
    return np.ascontiguousarray(patches), np.stack([x, y], axis=1)


def page_arrays(image_processor: Any, image: Any, image_tokens: int, as_bytes: bool) -> tuple[Any, Any, int]:
    """(real patches, their positions, soft tokens) of one page image as numpy arrays. With ``as_bytes`` (see
    ``byte_values``) and an RGB image the patches are uint8: patchified here when the image has the size the
    processor resizes it to (or, PIL backend, once resized here by the same PIL call), else resized and patchified
    by the processor itself with ``do_rescale=False``. Otherwise they are the processor's float32 output, as before.
    Pages rendered with ``PromptBuilder.render_spec`` are at the target size already: they are only patchified."""
    ip = image_processor
    k2 = ip.pooling_kernel_size ** 2
    kwargs: dict[str, Any] = {}
    if as_bytes and getattr(image, "mode", None) == "RGB":
        size = target_size(ip, image.height, image.width, image_tokens)
        if size != image.size[::-1] and getattr(ip, "backend", None) == "pil":
            # the PIL backend's resize is this very call on these bytes, minus its array <-> image round trips
            image = image.resize(size[::-1], resample=ip.resample)
        if size == image.size[::-1]:
            patches, pos = patchify(np.asarray(image), ip.patch_size)
            return patches, pos, len(patches) // k2
        kwargs["do_rescale"] = False
    enc = ip([image], return_tensors="np", max_soft_tokens=image_tokens, **kwargs)
    n = int(np.asarray(enc["num_soft_tokens_per_image"])[0])
    patches = np.array(enc["pixel_values"][0][:n * k2], dtype=None if kwargs else np.float32)  # copies: no padding
    return patches, np.array(enc["image_position_ids"][0][:n * k2]), n


def byte_values(image_processor: Any) -> np.ndarray | None:
    """float32 (256,): the processor's output value for each byte, or None when the byte path of ``page_arrays`` does
    not reproduce the processor exactly (checked here on a page at its target size and on one it must resize)."""
    from PIL import Image

    ip = image_processor
    try:
        size = target_size(ip, 400, 300, 70)
        if size is None:
            return None
        h, w = size
        table = np.zeros(256, dtype=np.float32)
        for dh, dw in ((0, 0), (18, 4)):  # at the target size, then one the processor resizes
            rgb = np.arange((h + dh) * (w + dw) * 3, dtype=np.int64) * 7 % 256  # every byte, in every channel
            img = Image.fromarray(rgb.astype(np.uint8).reshape(h + dh, w + dw, 3))
            ref = ip([img], return_tensors="np", max_soft_tokens=70)
            refv, refp = np.asarray(ref["pixel_values"][0]), np.asarray(ref["image_position_ids"][0])
            patches, pos, n = page_arrays(ip, img, 70, as_bytes=True)
            if patches.dtype != np.uint8 or n != int(np.asarray(ref["num_soft_tokens_per_image"])[0]):
                return None
            table[patches] = refv[: len(patches)]
            if not (np.array_equal(table[patches], refv[: len(patches)]) and not refv[len(patches):].any()
                    and np.array_equal(pos, refp[: len(pos)]) and (refp[len(pos):] == -1).all()):
                return None
        return table
    except Exception:  # an unforeseen processor: the float path is always right
        return None


class PromptBuilder:
    """Renders chats with the checkpoint's own template and tokenizes them with untrusted text kept inert."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.tok = processor.tokenizer
        self.image_token = processor.image_token
        self.boi_id = self.tok.convert_tokens_to_ids(processor.boi_token)
        self.eoi_id = self.tok.convert_tokens_to_ids(processor.eoi_token)
        self.image_id = self.tok.convert_tokens_to_ids(self.image_token)
        import torch

        table = byte_values(processor.image_processor)
        self.byte_values = None if table is None else torch.from_numpy(table)  # None: pages stay floats

    def render_spec(self, image_tokens: int) -> Any:
        """How to render pages for this processor: straight at the size it would resize them to (then a page is
        only patchified, no resize), else at the budget's pixel count."""
        from dataclasses import replace

        from ..vlm.prompting import render_spec_for_tokens

        spec = render_spec_for_tokens(image_tokens)
        size = exact_size(self.processor.image_processor, image_tokens)
        return spec if size is None else replace(spec, exact_size=size)

    def pixels(self, image: Any, image_tokens: int, dtype: Any) -> PagePixels:
        """Pixels of one page image at the budget (the image is rendered close to that budget)."""
        ip = self.processor.image_processor
        return self.page(*page_arrays(ip, image, image_tokens, self.byte_values is not None), image_tokens, dtype)

    def page(self, patches: np.ndarray, positions: np.ndarray, n_tokens: int, image_tokens: int,
             dtype: Any) -> PagePixels:
        """PagePixels from ``page_arrays``' output (made here or in a gemma_prep worker)."""
        import torch

        max_patches = image_tokens * self.processor.image_processor.pooling_kernel_size ** 2
        pv, pos = torch.from_numpy(patches), torch.from_numpy(positions).long()
        if pv.dtype.is_floating_point:
            return PagePixels(pv.to(dtype), pos, n_tokens, max_patches)
        if self.byte_values is None:
            raise ValueError("uint8 patches from a processor whose byte values are unknown")
        return PagePixels(pv, pos, n_tokens, max_patches, self.byte_values)

    def count(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def encode(self, messages: list[dict[str, Any]], texts: list[str], images: list[PagePixels],
               thinking: bool = False) -> list[int]:
        """Token ids of a chat. ``messages`` carry ``untrusted(i)`` markers where ``texts[i]`` goes and one
        ``{"type": "image"}`` item per entry of ``images``, in order."""
        prompt = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                    enable_thinking=thinking)
        ids: list[int] = []
        n_img = 0
        for k, chunk in enumerate(prompt.split(_MARK_OPEN)):
            if k:
                idx, _, chunk = chunk.partition(_MARK_CLOSE)
                body = neutralise(texts[int(idx)])
                ids += self.tok(body, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            for j, piece in enumerate(chunk.split(self.image_token)):
                if j:
                    ids += [self.boi_id] + [self.image_id] * images[n_img].n_tokens + [self.eoi_id]
                    n_img += 1
                if piece:
                    ids += self.tok(piece, add_special_tokens=False)["input_ids"]
        if n_img != len(images):
            raise ValueError(f"chat template placed {n_img} images, expected {len(images)}")
        return ids


def collate(rows: list[tuple[list[int], list[PagePixels]]], pad_id: int, image_id: int, device: Any,
            dtype: Any) -> dict[str, Any]:
    """Left-padded batch tensors for ``generate()``; images stacked in row order."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, _) in enumerate(rows):
        input_ids[r, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[r, width - len(ids):] = 1
    batch: dict[str, Any] = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device),
                             "mm_token_type_ids": (input_ids == image_id).long().to(device)}
    pages = [p for _, imgs in rows for p in imgs]
    if pages:
        batch["pixel_values"], batch["image_position_ids"] = stack_pages(pages, device, dtype)
    return batch


def stack_pages(pages: list[PagePixels], device: Any, dtype: Any) -> tuple[Any, Any]:
    """(pixel_values, image_position_ids) of pages in the processor's layout: every page padded to max_patches (one
    budget per batch), zero rows at position -1; uint8 patches become the processor's values by a table lookup."""
    import torch

    pv = torch.zeros((len(pages), pages[0].max_patches, pages[0].patches.shape[1]), dtype=dtype, device=device)
    pos = torch.full((len(pages), pages[0].max_patches, 2), -1, dtype=torch.long)
    tables: dict[int, Any] = {}  # each page's byte table in dtype on the device, made once a call
    for i, p in enumerate(pages):
        n = p.patches.shape[0]
        pos[i, :n] = p.position_ids
        x = p.patches.to(device)
        if x.dtype == torch.uint8:  # bytes -> the processor's float32 values -> dtype: a lookup, no arithmetic
            key = id(p.byte_values)
            if key not in tables:
                tables[key] = p.byte_values.to(dtype).to(device)
            pv[i, :n] = tables[key][x.int()]
        else:
            pv[i, :n] = x.to(dtype)
    return pv, pos.to(device)
