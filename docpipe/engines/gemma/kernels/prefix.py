"""A batch's shared prompt prefix prefilled once: one row computes its keys and values, every row starts from them.

Why: every extraction request of a run begins with the same system turn (instructions, fields, rules and the
answer's JSON Schema, ``messages.extraction(shared_first=True)``), a good part of a one-page prompt (what it saves:
docs/performance.md). Without this, every row of every batch pushes them through every layer again.

How, exactly as the plain prefill computes it:
- The prefix (tokens the rows start with, text only, before any image) goes through the model once as one
  unpadded row, and each layer's keys and values are kept in full (a sliding layer's too, not only its window).
  They stay until another prefix comes, so consecutive batches of one run reuse them.
- Rows are left-padded, so row r's prefix sits at padded slots ``pad_r .. pad_r + n``: whatever lies before slot
  ``n`` is padding or (part of) the prefix. The batch's forward therefore runs on slots ``n ..`` of every such row (a
  padded row recomputes the part of its prefix that lies there), against keys that are the copied prefix where a
  row's prefix lies before slot ``n``.
- Full layers: the prefix is copied into each row's slots of the static cache, the new keys written after it, and
  the whole cache attended. Sliding layers keep only ``window`` slots, so the keys attended are the ``window - 1``
  slots before ``n`` (gathered from the prefix per row) followed by the new ones; the cache keeps the last
  ``window`` of them in order, as a plain prefill leaves it (``Decoder._to_rings`` takes it from there).
- Rows without the prefix (summary requests beside extraction ones) come last in the batch and go through the
  model's own prefill into their rows of the same cache.
- The masks are built here, by transformers' own rule for Gemma 4 (masking_utils and
  ``create_masks_for_vision_model``, the same in 5.17 and 5.25): full layers causal; sliding layers
  ``AND(window, OR(causal, same image))`` where the model attends images bidirectionally; padding masked.
"""

from __future__ import annotations

from typing import Any

from . import kv_fp8

#: shortest common prefix worth a forward of its own (summary prompts share only the turn markers)
MIN_PREFIX = 32


def common_prefix(rows: list[list[int]], stop_ids: set[int]) -> int:
    """Tokens every row begins with, ending before the first of ``stop_ids`` (image markers: an image is attended
    bidirectionally, and pixels are per row) and leaving each row at least one token of its own."""
    if not rows:
        return 0
    first, n = rows[0], min(len(r) for r in rows) - 1
    for k in range(max(n, 0)):
        tok = first[k]
        if tok in stop_ids or any(r[k] != tok for r in rows):
            return k
    return max(n, 0)


def sharing_rows(rows: list[list[int]], stop_ids: set[int]) -> tuple[int, list[int]]:
    """(prefix length, indices of the rows that share it): the most rows whose prompts begin with the same
    MIN_PREFIX tokens (extraction requests beside ``--summarize`` ones, say), and the prefix they all share; (0, [])
    when none is that long."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, r in enumerate(rows):
        if len(r) > MIN_PREFIX:
            groups.setdefault(tuple(r[:MIN_PREFIX]), []).append(i)
    if not groups:
        return 0, []
    members = max(groups.values(), key=len)
    n = common_prefix([rows[i] for i in members], stop_ids)
    return (n, members) if n >= MIN_PREFIX else (0, [])


def block_ids(mm_token_type_ids: Any) -> Any:
    """transformers' ``get_block_sequence_ids_for_mask``: each run of image tokens numbered from 0, text -1."""
    import torch

    vision = (mm_token_type_ids == 1) | (mm_token_type_ids == 2)
    prev = torch.roll(vision, shifts=1, dims=-1)
    prev[..., 0] = False
    group = torch.cumsum((vision & ~prev).int(), dim=1) - 1
    return torch.where(vision, group, -1)


def masks(q_slots: Any, k_slots: Any, pad: Any, window: int, blocks: Any | None) -> tuple[Any, Any]:
    """(full, sliding) boolean masks (rows, 1, queries, keys) for queries at padded slots ``q_slots`` and keys at
    ``k_slots`` (the sliding layers' own); ``pad`` (rows, slots) is True where a slot holds a token, False for padding
    and for slots past the prompt; ``blocks`` the image block ids per slot (None: text-only attention)."""
    import torch

    def one(ks: Any, sliding: bool) -> Any:
        allowed = ks[None, :] <= q_slots[:, None]  # causal
        if sliding and blocks is not None:
            qb = blocks[:, q_slots]
            kb = blocks[:, ks.clamp(max=blocks.shape[1] - 1)]
            allowed = allowed[None] | ((qb[:, :, None] == kb[:, None, :]) & (qb >= 0)[:, :, None])
        if sliding:
            allowed = allowed & (ks[None, :] > q_slots[:, None] - window)
        held = torch.zeros((pad.shape[0], ks.shape[0]), dtype=torch.bool, device=pad.device)
        inside = ks < pad.shape[1]
        held[:, inside] = pad[:, ks[inside]]
        return (allowed & held[:, None, :])[:, None]

    return one(k_slots[0], False), one(k_slots[1], True)


def _capture_update(self: Any, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
    """The prefix forward's cache layer: keeps every key and value (sliding layers too) and attends them all."""
    self._docpipe_kv = (key_states, value_states)
    return key_states, value_states


def _fill_update(self: Any, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
    """A batch forward after the prefix (rows of the batch's cache, as views): new keys go after slot n."""
    before = self._docpipe_before
    if before is None:  # the layer holds every slot: write the new ones, attend the whole cache
        slots = self._docpipe_slots
        self.keys.index_copy_(2, slots, key_states)
        self.values.index_copy_(2, slots, value_states)
        return self.keys, self.values
    keys = self._docpipe_cat(before[0], key_states)
    values = self._docpipe_cat(before[1], value_states)
    w, first = self.keys.shape[2], self._docpipe_first
    if keys.shape[2] >= w:  # the last window slots, in order (a plain prefill's layout)
        self.keys.copy_(keys[:, :, -w:])
        self.values.copy_(values[:, :, -w:])
    else:  # the prompt is shorter than the window: slot s is kept at s
        self.keys[:, :, first: first + keys.shape[2]] = keys
        self.values[:, :, first: first + keys.shape[2]] = values
    return keys, values


_CLASSES: dict[tuple[type, str], type] = {}


def _swapped(base: type, kind: str) -> type:
    if (base, kind) not in _CLASSES:
        fn = _capture_update if kind == "capture" else _fill_update
        _CLASSES[base, kind] = type(f"Prefix{kind.title()}{base.__name__}", (base,), {"update": fn})
    return _CLASSES[base, kind]


def _cat(a: Any, b: Any) -> Any:
    import torch

    return torch.cat((a, b), dim=2)


class SharedPrefix:
    """One model's prefix keys and values (the last prefix computed) and the prefill of a batch that starts with it.
    ``cache_kw``: the forward's name for the cache; ``cache_of(length)``: a new StaticCache (both the Decoder's)."""

    def __init__(self, model: Any, window: int, cache_kw: str, cache_of: Any, stored: Any = None) -> None:
        self.model, self.window, self.cache_kw, self.cache_of = model, window, cache_kw, cache_of
        self.stored = stored or (lambda t: t)  # keys or values in the batch cache's dtype (Decoder._stored)
        text = model.config.get_text_config()
        self.bidirectional = getattr(text, "use_bidirectional_attention", None) == "vision"
        self.ids: tuple[int, ...] = ()
        self.kv: list[Any] = []  # per cache layer: (keys, values) of shape (1, heads, n, dim), or None (kv-shared)
        self.reused = 0  # prefix tokens not computed again (rows x n, summed over batches)

    @staticmethod
    def supported(model: Any) -> bool:
        """Gemma 4 text attention whose masks ``masks`` reproduces (bidirectional over everything is not)."""
        text = model.config.get_text_config()
        return getattr(text, "use_bidirectional_attention", None) in (None, "vision")

    def prefix_kv(self, ids: list[int], dev: Any) -> list[Any]:
        """Each cache layer's prefix keys and values, computed once per distinct prefix (a shorter one is a slice:
        a causal prefix's keys do not depend on what follows it)."""
        import torch

        n = len(ids)
        if len(self.ids) >= n and self.ids[:n] == tuple(ids):
            return [None if kv is None else (kv[0][:, :, :n], kv[1][:, :, :n]) for kv in self.kv]
        cache = self.cache_of(n)
        for layer in cache.layers:
            layer.__class__ = _swapped(type(layer), "capture")
            layer._docpipe_kv = None
        slots = torch.arange(n, device=dev)
        full, sliding = masks(slots, (slots, slots), torch.ones((1, n), dtype=torch.bool, device=dev),
                              self.window or n + 1, None)
        self.model(input_ids=torch.tensor([ids], device=dev), position_ids=slots[None],
                   attention_mask={"full_attention": full, "sliding_attention": sliding}, use_cache=True,
                   logits_to_keep=1, **{self.cache_kw: cache})
        self.ids = tuple(ids)
        self.kv = [layer._docpipe_kv for layer in cache.layers]
        return self.kv

    def prefill(self, inputs: dict[str, Any], pos0: Any, length: int, row_pages: list[int] | None, n: int,
                steps: tuple[int, int], rows: tuple[Any, Any], sharing: int | None = None) -> tuple[Any, Any]:
        """(filled static cache of ``length`` slots, last-position logits in float32) for a batch whose first
        ``sharing`` rows (None: all) begin with the prefix of ``n`` tokens; rows go through the model ``steps[0]`` at a
        time (the others, prefilled whole by the model's own path, ``steps[1]``), each chunk writing into its rows of
        the batch's cache (``rows``: Decoder._rows_of, which gives a chunk its rows of the cache, and
        Decoder._rows_back, which stores them back where they were a copy)."""
        import torch

        ids, mask = inputs["input_ids"], inputs["attention_mask"].bool()
        b, p = ids.shape
        k_rows = b if sharing is None else sharing
        dev = ids.device
        pads = (~mask).sum(-1)
        first = int(pads[0])
        kv = self.prefix_kv(ids[0, first: first + n].tolist(), dev)
        big = self.cache_of(length)
        win = self.window
        k0 = max(0, n - win + 1) if win else 0  # first slot a sliding layer's queries (slots n..) can see
        rows_of, rows_back = rows
        rows = torch.arange(k_rows, device=dev)[:, None]
        # (rows, n): where each sharing row's prefix lies (a row padded past slot n recomputes all of it)
        prefix_slots = pads[:k_rows, None] + torch.arange(n, device=dev)[None]
        before_slots = torch.arange(k0, n, device=dev)
        span = False  # a sliding layer keeps fewer slots than the cache: it attends a span, not its buffer
        for layer, got in zip(big.layers, kv):
            if got is None:
                continue  # kv-shared layers (E models) hold nothing of their own
            k, v = got
            layer.lazy_initialization(self.stored(k).expand(b, -1, -1, -1), self.stored(v).expand(b, -1, -1, -1))
            if layer.keys.shape[2] == length:  # holds every slot: the prefix goes into each row's own slots
                kv_fp8.put(layer.keys, (rows, slice(None), prefix_slots), k[0].transpose(0, 1)[None])
                kv_fp8.put(layer.values, (rows, slice(None), prefix_slots), v[0].transpose(0, 1)[None])
            else:
                span = True
        blocks = block_ids(inputs["mm_token_type_ids"]) if self.bidirectional and "mm_token_type_ids" in inputs \
            else None
        q_slots = torch.arange(n, p, device=dev)
        all_slots = torch.arange(length, device=dev)
        sliding_slots = torch.arange(k0, p, device=dev) if span else all_slots
        logits = []
        page = 0
        chunks = [(r0, min(k_rows, r0 + steps[0])) for r0 in range(0, k_rows, steps[0])]
        chunks += [(r0, min(b, r0 + steps[1])) for r0 in range(k_rows, b, steps[1])]
        for r0, r1 in chunks:
            whole = r0 >= k_rows  # a row without the prefix: the model's own prefill into its rows of the cache
            cut = 0 if whole else n
            sub: dict[str, Any] = {"input_ids": ids[r0:r1, cut:]}
            if "mm_token_type_ids" in inputs:
                sub["mm_token_type_ids"] = inputs["mm_token_type_ids"][r0:r1, cut:]
            if "pixel_values" in inputs:
                count = sum(row_pages[r0:r1]) if row_pages is not None else inputs["pixel_values"].shape[0]
                sub["pixel_values"] = inputs["pixel_values"][page: page + count]
                sub["image_position_ids"] = inputs["image_position_ids"][page: page + count]
                page += count
            part = self.cache_of(length)
            rows_of(big, part, r0, r1)
            if whole:
                out = self.model(**sub, attention_mask=inputs["attention_mask"][r0:r1], position_ids=pos0[r0:r1],
                                 use_cache=True, logits_to_keep=1, **{self.cache_kw: part})
                logits.append(out.logits[:, -1].float())
                rows_back(big, part, r0, r1)
                del out, part
                continue
            src = (before_slots[None] - pads[r0:r1, None])  # (rows, slots before n): index in the prefix, <0: padding
            src = src.clamp(min=0)
            for layer, got in zip(part.layers, kv):
                if got is None:
                    continue
                layer.__class__ = _swapped(type(layer), "fill")
                layer._docpipe_slots = q_slots
                layer._docpipe_first = k0
                layer._docpipe_cat = _cat
                if layer.keys.shape[2] == length:
                    layer._docpipe_before = None
                else:  # the prefix keys at slots k0..n of each row: (rows, heads, n - k0, dim)
                    layer._docpipe_before = tuple(t[0][:, src].transpose(0, 1) for t in got)
            full, sliding = masks(q_slots, (all_slots, sliding_slots), mask[r0:r1], win or length + p,
                                  None if blocks is None else blocks[r0:r1])
            out = self.model(**sub, position_ids=pos0[r0:r1, n:],
                             attention_mask={"full_attention": full, "sliding_attention": sliding}, use_cache=True,
                             logits_to_keep=1, **{self.cache_kw: part})
            logits.append(out.logits[:, -1].float())
            rows_back(big, part, r0, r1)
            del out, part, full, sliding
        for layer, got in zip(big.layers, kv):
            if got is None:
                continue
            if torch.is_tensor(getattr(layer, "cumulative_length", None)):
                layer.cumulative_length.fill_(p)
            if hasattr(layer, "cumulative_length_int"):
                layer.cumulative_length_int = p
        self.reused += k_rows * n
        return big, torch.cat(logits)
