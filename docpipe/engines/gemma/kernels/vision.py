"""Gemma 4's vision tower over a batch of pages, without padding patches: the same soft tokens, sooner.

Why: on an H200 the 26B-A4B/31B vision tower took ~255 ms a page at 1120 image tokens against ~46 ms of FLOPs.
The image processor pads every page to ``max_soft_tokens x 9`` patches (an A4 page: 9,828 real + 252 padding),
so transformers hands SDPA a padding mask, which rules out the flash kernel (cuDNN ran at ~160 TFLOP/s, 76 ms a
page), and ~60 ms a page went to float32 elementwise work (RMSNorm casts, the 2-D RoPE's split/cat).

What this does instead (``image_features``): pages with the same real patch count run together with the padding
sliced off (the processor puts it at the end), so no mask exists and SDPA may pick flash; pages of other sizes go
in their own calls, at most ``chunk`` pages each (activation memory), and the results come back in page order in
the object ``Gemma4Model.get_image_features`` returns (``pooler_output``: one tensor per page; ``last_hidden_state``:
the soft tokens before ``embed_vision``, all pages concatenated). The pooler still works: a real count is
(width/3 x height/3) x 9 patches, so ``output_length = patches / 9`` is exactly the page's soft-token count.
Optionally the encoder layers are compiled (``torch.compile`` fuses the float32 elementwise work) and the SDPA
backend is pinned (for benchmarks). Pages that don't fit the pattern (padding not at the end, a count that is not
a multiple of 9) take the model's own path.

Encoding ahead (``VisionRunner.encode_ahead``, the engine's ``vision_ahead``): while a batch waits for more pages,
the engine has the tower encode the pages already waiting; the runner keeps their features by page, and when the
batch's prefill calls the tower (``keys``: the batch's pages in ``pixel_values`` order, taken call by call) those
pages' features are taken instead of encoded again. Without it the GPU idles while the first batch gathers (26B-A4B
on an H100: the tower is 64 ms of a page's 125 ms prefill, and a 144-page run waited 4.7 s for pages).

Compiling: one layer function is compiled and serves all layers (dynamo takes a layer's weights as inputs). With
``"dynamic"`` (the default when on) the page and patch dims are marked dynamic, so one graph serves every chunk size
and page shape (plus one for a single page: size-1 dims are always specialised); ``"static"`` compiles once per
(pages, patches) shape with a raised recompile limit: maybe faster kernels, but a new shape costs a compile.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: SDPA backends a setting may name (None: let PyTorch choose)
SDPA_BACKENDS = ("flash", "efficient", "cudnn", "math")
COMPILE_MODES = ("dynamic", "static")


def sdpa_context(backend: str | None) -> Any:
    """A context that pins SDPA to one backend, or does nothing."""
    import contextlib

    if backend is None:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    names = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
             "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
    return sdpa_kernel([names[backend]])


def _layer_step(layer: Any, hidden: Any, cos: Any, sin: Any, pos: Any) -> Any:
    """One encoder layer with no attention mask (what gets compiled; the same code for every layer)."""
    return layer(hidden, position_embeddings=(cos, sin), attention_mask=None, position_ids=pos)


class VisionRunner:
    """Runs the vision tower + ``embed_vision`` of a ``Gemma4Model`` (``inner``) page group by page group."""

    def __init__(self, inner: Any, chunk: int = 16, compile_mode: bool | str = False,
                 sdpa_backend: str | None = None, compile_backend: str = "inductor") -> None:
        import torch

        if sdpa_backend is not None and sdpa_backend not in SDPA_BACKENDS:
            raise ValueError(f"vision_sdpa_backend must be one of {SDPA_BACKENDS} or null, not {sdpa_backend!r}")
        mode = "dynamic" if compile_mode is True else (compile_mode or None)
        if mode is not None and mode not in COMPILE_MODES:
            raise ValueError(f"vision_compile must be false, true or one of {COMPILE_MODES}, not {compile_mode!r}")
        self.inner, self.chunk, self.sdpa_backend, self.compile_mode = inner, max(1, int(chunk)), sdpa_backend, mode
        self.original = inner.get_image_features
        self.clock: Any = None  # a gemma_timing.StageClock that gets the tower's time as "vision", when set
        # pages encoded before their batch (encode_ahead): id(page) -> (page, soft tokens, features, the CUDA event
        # of their stream or None); the page is held so its id stays its own
        self.ahead: dict[int, tuple[Any, Any, Any, Any]] = {}
        self._last: Any = None  # the event of the last encode_ahead on a side stream
        # the pages (PagePixels) of the next calls, in pixel_values order, as the engine collated them: calls take
        # them in order (a prefill in row chunks makes one call a chunk); None: not known, nothing is looked up
        self.keys: list[Any] | None = None
        self.step: Any = _layer_step
        if mode == "static":
            cfg = torch._dynamo.config
            cfg.recompile_limit = max(cfg.recompile_limit, 64)
            self.step = torch.compile(_layer_step, dynamic=False, backend=compile_backend)
        elif mode == "dynamic":
            self.step = torch.compile(_layer_step, backend=compile_backend)

    def __call__(self, pixel_values: Any, image_position_ids: Any) -> Any:
        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        n = pixel_values.shape[0]
        keys = None
        if self.keys is not None and len(self.keys) >= n:
            keys, self.keys = self.keys[:n], self.keys[n:]
        if not keys or not any(id(k) in self.ahead for k in keys):
            return self._timed("vision", pixel_values, image_position_ids)
        hidden: list[Any] = [None] * n
        feats: list[Any] = [None] * n
        todo = [i for i, k in enumerate(keys) if id(k) not in self.ahead]
        for i, k in enumerate(keys):  # a page can be in a batch twice (its extraction and its summary)
            if id(k) in self.ahead:
                _, hidden[i], feats[i], made = self.ahead[id(k)]
                if made is not None:  # encoded on a side stream: this stream waits for it, and owns them now
                    here = torch.cuda.current_stream(hidden[i].device)
                    here.wait_event(made)
                    hidden[i].record_stream(here)
                    feats[i].record_stream(here)
        later = {id(k) for k in self.keys or ()}
        for k in keys:  # kept while a later call of the batch still takes the page
            if id(k) not in later:
                self.ahead.pop(id(k), None)
        if todo:
            out = self._timed("vision", _take(pixel_values, todo), _take(image_position_ids, todo))
            for i, (h, f) in zip(todo, _per_page(out)):
                hidden[i], feats[i] = h, f
        return BaseModelOutputWithPooling(last_hidden_state=torch.cat(hidden), pooler_output=tuple(feats))

    def encode_ahead(self, pages: list[Any], device: Any, dtype: Any, stream: Any = None) -> None:
        """Encode pages (gemma_inputs.PagePixels) of a batch still being gathered; the batch's prefill then takes
        their features instead of running the tower on them (clock stage "vision_ahead", outside the prefill).
        With a CUDA ``stream`` the work is queued there, beside whatever the current stream runs (a decode)."""
        import contextlib

        import torch

        from ..inputs import stack_pages

        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            pv, pos = stack_pages(pages, device, dtype)
            out = self._timed("vision_ahead", pv, pos)
            made = None
            if stream is not None:
                made = torch.cuda.Event()
                made.record(stream)
                self._last = made
        for p, (h, f) in zip(pages, _per_page(out)):
            self.ahead[id(p)] = (p, h, f, made)

    def busy(self) -> bool:
        """Whether the last encode_ahead on a side stream is still running on the GPU."""
        return self._last is not None and not self._last.query()

    def _timed(self, stage: str, pixel_values: Any, image_position_ids: Any) -> Any:
        if self.clock is None:
            return image_features(self, pixel_values, image_position_ids)
        with self.clock.stage(stage, pixel_values.device):
            return image_features(self, pixel_values, image_position_ids)

    def encode(self, pixel_values: Any, pos: Any) -> Any:
        """(pages, n, 3*p*p) pixels of pages with n real patches each, no padding -> (pages*n/k², hidden) soft
        tokens before ``embed_vision``: ``Gemma4VisionModel.forward`` with the mask left out."""
        import torch

        vt = self.inner.vision_tower
        cfg = vt.config
        # a slice of the padded ids has their strides and offset, which a compiled layer would guard on
        pos = pos.clone(memory_format=torch.contiguous_format)
        no_pad = torch.zeros(pos.shape[:2], dtype=torch.bool, device=pos.device)
        hidden = vt.patch_embedder(pixel_values, pos, no_pad)
        dtype = hidden.dtype
        cos, sin = vt.encoder.rotary_emb(hidden, pos)
        dynamic = self.compile_mode == "dynamic"
        with sdpa_context(self.sdpa_backend):
            for layer in vt.encoder.layers[: cfg.num_hidden_layers]:
                if dynamic:
                    for t in (hidden, cos, sin, pos):
                        torch._dynamo.maybe_mark_dynamic(t, 0)
                        torch._dynamo.maybe_mark_dynamic(t, 1)
                hidden = self.step(layer, hidden, cos, sin, pos)
        length = pos.shape[1] // cfg.pooling_kernel_size**2
        pooled, _ = vt.pooler(hidden_states=hidden, pixel_position_ids=pos, padding_positions=no_pad,
                              output_length=length)
        pooled = pooled.reshape(-1, pooled.shape[-1])  # every pooled cell holds k² real patches: none to strip
        if cfg.standardize:
            pooled = (pooled - vt.std_bias.float()) * vt.std_scale.float()
        return pooled.to(dtype)


def _groups(valid: Any, k2: int) -> tuple[dict[int, list[int]], list[int]]:
    """({real patch count: page indices} for pages whose padding is all at the end and whose count is a multiple
    of k², [other pages]), with one device->host copy."""
    import torch

    counts = valid.sum(-1)
    leading = valid.int().cumprod(-1).sum(-1)  # real patches before the first padding one
    sizes, prefix = torch.stack([counts, leading]).tolist()
    groups: dict[int, list[int]] = {}
    other: list[int] = []
    for i, (n, lead) in enumerate(zip(sizes, prefix)):
        if n > 0 and n == lead and n % k2 == 0:
            groups.setdefault(n, []).append(i)
        else:
            other.append(i)
    return groups, other


def _take(t: Any, idx: list[int], n: int | None = None) -> Any:
    """Rows idx of t (a view when they are consecutive), first n entries of dim 1."""
    import torch

    rows = slice(idx[0], idx[-1] + 1) if idx == list(range(idx[0], idx[-1] + 1)) else \
        torch.tensor(idx, device=t.device)
    return t[rows, :n] if n is not None else t[rows]


def _per_page(out: Any) -> Iterator[tuple[Any, Any]]:
    """(hidden states, soft tokens) of each page of a tower call's output, whose hidden states are concatenated."""
    sizes = [f.shape[0] for f in out.pooler_output]
    return zip(out.last_hidden_state.split(sizes), out.pooler_output)


def image_features(runner: VisionRunner, pixel_values: Any, image_position_ids: Any) -> Any:
    """What ``Gemma4Model.get_image_features(pixel_values, image_position_ids)`` returns, computed with the
    padding trimmed (see the module doc)."""
    import torch
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    inner, chunk = runner.inner, runner.chunk
    k2 = inner.config.vision_config.pooling_kernel_size ** 2
    groups, other = _groups((image_position_ids != -1).all(dim=-1), k2)
    n_pages = pixel_values.shape[0]
    feats: list[Any] = [None] * n_pages
    hidden: list[Any] = [None] * n_pages
    for n, idx in groups.items():
        for s in range(0, len(idx), chunk):
            part = idx[s:s + chunk]
            h = runner.encode(_take(pixel_values, part, n), _take(image_position_ids, part, n))
            f = inner.embed_vision(inputs_embeds=h)
            for i, hi, fi in zip(part, h.chunk(len(part)), f.chunk(len(part))):
                hidden[i], feats[i] = hi, fi
    for s in range(0, len(other), chunk):  # the model's own path, with its padding mask
        part = other[s:s + chunk]
        out = runner.original(_take(pixel_values, part), _take(image_position_ids, part), return_dict=True)
        for i, (h, f) in zip(part, _per_page(out)):
            hidden[i], feats[i] = h, f
    return BaseModelOutputWithPooling(last_hidden_state=torch.cat(hidden), pooler_output=tuple(feats))


def install(model: Any, chunk: int = 16, compile_mode: bool | str = False, sdpa_backend: str | None = None) -> Any:
    """Route ``model.model.get_image_features`` (what ``generate()``'s prefill calls) through a VisionRunner;
    returns the runner. Calls asking for more than the features (hidden states of every layer, attentions) keep
    the model's own path."""
    inner = model.model
    runner = getattr(inner, "_docpipe_vision", None)
    if runner is not None:
        return runner
    runner = VisionRunner(inner, chunk, compile_mode, sdpa_backend)

    def get_image_features(pixel_values: Any, image_position_ids: Any = None, return_dict: bool | None = None,
                           **kwargs: Any) -> Any:
        if image_position_ids is None or any(v for v in kwargs.values()):
            return runner.original(pixel_values, image_position_ids, return_dict=return_dict, **kwargs)
        out = runner(pixel_values, image_position_ids)
        return out if return_dict or return_dict is None and inner.config.return_dict else out.to_tuple()

    inner.get_image_features = get_image_features
    inner._docpipe_vision = runner
    return runner
