"""Gemma 4 model inputs built by hand: safe prompts, per-page pixel tensors, padded batches.

Why not ``processor.apply_chat_template(tokenize=True)`` on the whole batch: (1) page images are turned into
pixel tensors in the rasterizing thread, one page at a time, so the GPU loop only stacks them; (2) document text is
tokenized apart from the template with ``split_special_tokens=True``, so a page that says ``<turn|>`` or
``<|image|>`` yields ordinary text tokens on every transformers version (``sanitize_control_tokens`` exists only
from 5.23), on top of ``prompting.neutralise``. The image placeholder expansion is the processor's own:
``<|image>`` + n x ``<|image|>`` + ``<image|>``, with ``mm_token_type_ids`` marking the image tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .prompting import neutralise

#: private-use markers standing in for untrusted text while the chat template is rendered
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"


@dataclass
class PagePixels:
    """One page ready for the vision tower: padded patches, their positions and the soft-token count."""

    pixel_values: Any  # tensor (max_patches, 3*16*16)
    position_ids: Any  # tensor (max_patches, 2), -1 for padding
    n_tokens: int


def untrusted(i: int) -> str:
    """The marker for the i-th untrusted text of a prompt (what ``extraction_instructions`` sees)."""
    return f"{_MARK_OPEN}{i}{_MARK_CLOSE}"


class PromptBuilder:
    """Renders chats with the checkpoint's own template and tokenizes them with untrusted text kept inert."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.tok = processor.tokenizer
        self.image_token = processor.image_token
        self.boi_id = self.tok.convert_tokens_to_ids(processor.boi_token)
        self.eoi_id = self.tok.convert_tokens_to_ids(processor.eoi_token)
        self.image_id = self.tok.convert_tokens_to_ids(self.image_token)

    def pixels(self, image: Any, image_tokens: int, dtype: Any) -> PagePixels:
        """Pixel tensors of one page image at the budget (the image is already rendered at that budget)."""
        enc = self.processor.image_processor([image], return_tensors="pt", max_soft_tokens=image_tokens)
        return PagePixels(enc["pixel_values"][0].to(dtype), enc["image_position_ids"][0],
                          int(enc["num_soft_tokens_per_image"][0]))

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
        batch["pixel_values"] = torch.stack([p.pixel_values for p in pages]).to(device, dtype)
        batch["image_position_ids"] = torch.stack([p.position_ids for p in pages]).to(device)
    return batch
