"""Greedy generation for a batch of Gemma 4 requests: one eager prefill into a static KV cache, then a decode loop
whose step is captured once as a CUDA graph and replayed.

Why not ``generate()``: a Gemma 4 decode step is thousands of small kernels (E4B: 66-75 ms a step eager against
2.2 ms of weight reads), and around them ``generate()`` rebuilds 4D masks, runs its stopping checks and syncs with
the GPU every step. Its static cache also keeps each sliding-window layer's length in a Python int that the
compiled step reads (transformers issue 44609), and moves the whole window by one slot every step (``roll`` plus a
copy back: for 26B-A4B at batch 64, tens of GB of memory traffic a step).

What this does instead:
- Prefill is the model's own forward (vision tower, bidirectional image masks) into a ``StaticCache``.
- The sliding-window layers then become ring buffers: the token at padded position ``t`` is written at slot
  ``t % window``. Attention does not care about the order of keys (RoPE is applied before caching), only the mask
  does, so the masks are built inside the step from a device counter ``t`` and the prompt's padding mask: a full
  layer sees slots ``<= t`` that are not padding; a ring slot ``k`` holds position ``t - ((t - k) % window)``.
- With ``kv_cache="fp8"`` the batch's cache holds keys and values in one byte (kv_fp8.py): prefill chunks compute on
  a copy of their rows in the model's dtype and store them in fp8; full layers then also write slot ``t``.
- Nothing in a step reads a Python number that changes or syncs with the host, so on CUDA the whole step (forward,
  greedy pick, stop bookkeeping, counters) is captured once per batch and replayed. Without a logits processor the
  loop only looks at the host every ``CHECK_EVERY`` steps to stop early when every row is done. With one (the JSON
  grammar), the graph computes logits and the processor and the pick run between replays, as in ``generate()``.

The tokens are those of ``generate()`` with greedy decoding; tests compare the two on CPU (where the same loop runs
without graphs) for the dense, MoE and E-model variants and for prompts shorter and longer than the window.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

from . import kv_fp8
from .fusion import _InStep, compile_layers  # noqa: F401  (compile_layers: imported from here too)
from .prefix import MIN_PREFIX, SharedPrefix
from .timing import StageClock

log = logging.getLogger(__name__)

#: how often (steps) the processor-free loop checks on the host whether every row has stopped
CHECK_EVERY = 16


def _ring_update(self: Any, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
    """A cache layer's update during the decode loop: one token written at slot t % length, a ring for a
    sliding-window layer, slot t itself for a full layer (which holds every position; it takes this update only
    when its cache is fp8, which transformers' own update cannot write)."""
    slot = self._docpipe_ring_t.to(self.keys.device).remainder(self.max_cache_len)  # no-op on one device
    kv_fp8.index_copy(self.keys, slot, key_states)
    kv_fp8.index_copy(self.values, slot, value_states)
    return self.keys, self.values


#: ways to attend in a one-token step: "sdpa" (SDPA's fused kernels over grouped queries), "matmul" (two batched
#: GEMMs around a float32 softmax), "auto" (matmul for a layer of heads up to MATMUL_MAX_DIM wide whose cached keys
#: and values are MATMUL_FROM_BYTES or more, sdpa for the rest). Flash decoding with stock kernels (each row's keys
#: cut into chunks run as extra heads of PyTorch's memory-efficient or cuDNN op, merged by log-sum-exp) was built for
#: 31B's few rows and dropped: 296-312 µs against SDPA's 143 at 11 rows on an H100
#: (docs/history/benchmarks-2026-11.md, 7th round).
DECODE_KERNELS = ("auto", "sdpa", "matmul")
#: One layer's attention at decode (scripts/bench_decode_attention.py, H100 and H200): the GEMMs read a big cache of
#: 256-wide heads faster (26B-A4B's sliding layers at 72 rows, 604 MB: 249 against 349 µs on an H100, 182 against
#: 315 on an H200; 31B's at 72 rows: 462 against 653) and a small one slower (E4B's sliding layers at 128 rows, 134
#: MB: 152 against 97; 31B's at 11 rows, 185 MB: 187 against 142). For the 512-wide heads neither wins on both cards
#: (26B-A4B at 72 rows: 189 against 224 µs on an H100, 281 against 205 on an H200), so they stay with SDPA.
MATMUL_FROM_BYTES = 300e6
MATMUL_MAX_DIM = 256
#: how the decode loop stores keys and values: as the model computes them, or in fp8 (kv_fp8.py)
KV_CACHES = tuple(c for c in kv_fp8.CHOICES if c != "auto")


def check_decode_kernel(kernel: str) -> str:
    """``kernel``, if it is one of DECODE_KERNELS (a ValueError that names them otherwise)."""
    if kernel not in DECODE_KERNELS:
        raise ValueError(f"decode attention kernel must be one of {', '.join(DECODE_KERNELS)}, not {kernel!r}")
    return kernel


def decode_attention(original: Callable[..., Any], kernel: str = "auto") -> Callable[..., Any]:
    """transformers' "sdpa" attention, with one-token steps done as grouped-query attention without copies.

    Why: given a mask, transformers expands every cached key and value once per query head (``repeat_kv``) before
    SDPA; on an H200 that copying was 40% of a decode step (E4B, batch 32). A one-token step's query heads that
    share a key/value head are instead passed as that head's queries (``(batch, kv_heads, group, dim)``), so each
    cached key and value is read once. ``kernel`` says by what (DECODE_KERNELS): SDPA's fused kernels split a
    layer's work by (row, key/value head), which leaves big caches of 256-wide heads read at ~60% of the card's
    rate, where two batched GEMMs read them at ~80% (MATMUL_FROM_BYTES). Anything else goes to ``original``."""
    check_decode_kernel(kernel)

    def attend(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
               scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
        import torch

        if query.shape[2] != 1 or attention_mask is None or attention_mask.dtype != torch.bool:
            return original(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
        b, hq, _, d = query.shape
        hkv, n = key.shape[1], key.shape[2]
        q = query.reshape(b, hkv, hq // hkv, d)  # query head h uses key/value head h // group
        mask = attention_mask[:, :, :, :n]
        scale = d**-0.5 if scaling is None else scaling
        if kv_fp8.is_fp8(key):
            return kv_fp8.attention(q, key, value, mask, scale).reshape(b, 1, hq, d), None
        big = 2 * key.numel() * key.element_size() >= MATMUL_FROM_BYTES
        if kernel == "matmul" or (kernel == "auto" and big and d <= MATMUL_MAX_DIM):
            out = grouped_matmul_attention(q, key, value, mask, scale)
        else:
            out = torch.nn.functional.scaled_dot_product_attention(q, key, value, attn_mask=mask, scale=scaling)
        return out.reshape(b, 1, hq, d), None

    return attend


def grouped_matmul_attention(q: Any, key: Any, value: Any, mask: Any, scale: float) -> Any:
    """softmax(q K^T * scale, masked) V for grouped queries (batch, kv heads, group, dim): one GEMM reads the keys,
    one the values; the scores are float32 (straight from the GEMM where torch offers it, as a flash kernel keeps
    them), so rounding them to bf16 does not perturb the softmax."""
    import torch

    b, h, g, d = q.shape
    qs, ks = q.reshape(b * h, g, d), key.reshape(b * h, -1, d).transpose(1, 2)
    if q.is_cuda and q.dtype != torch.float32:
        s = torch.bmm(qs, ks, out_dtype=torch.float32)
    else:
        s = torch.bmm(qs, ks).float()
    p = s.view(b, h, g, -1).mul_(scale).masked_fill_(~mask, float("-inf")).softmax(-1)
    return torch.matmul(p.to(value.dtype), value)


_WRAPPED: dict[Any, Any] = {}


class SdpaSwap:
    """While active, transformers' "sdpa" attention entry is ``wrap(original)`` (restored on exit): how the decode
    step's grouped attention and the prefill's flex attention (gemma_flex) are put in place."""

    def __init__(self, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        self.wrap = wrap

    def __enter__(self) -> None:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        self.saved = ALL_ATTENTION_FUNCTIONS._local_mapping.get("sdpa")
        ALL_ATTENTION_FUNCTIONS["sdpa"] = self.wrap(ALL_ATTENTION_FUNCTIONS["sdpa"])

    def __exit__(self, *exc: object) -> None:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        if self.saved is None:
            del ALL_ATTENTION_FUNCTIONS["sdpa"]
        else:
            ALL_ATTENTION_FUNCTIONS["sdpa"] = self.saved


def _decode_attention_once(original: Callable[..., Any], kernel: str) -> Callable[..., Any]:
    """``decode_attention(original, kernel)``, one function object per pair: a compiled step guards on it."""
    if (original, kernel) not in _WRAPPED:
        _WRAPPED[original, kernel] = decode_attention(original, kernel)
    return _WRAPPED[original, kernel]


_RING_CLASSES: dict[type, type] = {}


def _ring_class(base: type) -> type:
    if base not in _RING_CLASSES:
        _RING_CLASSES[base] = type(f"Ring{base.__name__}", (base,), {"update": _ring_update})
    return _RING_CLASSES[base]


class Decoder:
    """Runs batches for one model; ``graphs`` captures the decode step as a CUDA graph (CUDA only)."""

    def __init__(self, model: Any, graphs: bool = True, attention: str = "docpipe", compile: bool | str = False,
                 prefill_rows: int = 0, prefill_tokens: int = 0, prefill_attention: str = "sdpa",
                 compile_scope: str = "model", decode_kernel: str = "auto", shared_prefix: bool = False,
                 kv_cache: str = "bf16") -> None:
        if attention not in ("docpipe", "sdpa"):
            raise ValueError(f"decode attention must be 'docpipe' or 'sdpa', not {attention!r}")
        if compile_scope not in ("model", "layers"):
            raise ValueError(f"compile scope must be 'model' or 'layers', not {compile_scope!r}")
        if prefill_attention not in ("flex", "sdpa"):
            raise ValueError(f"prefill attention must be 'flex' or 'sdpa', not {prefill_attention!r}")
        if kv_cache not in KV_CACHES:
            raise ValueError(f"kv cache must be one of {', '.join(KV_CACHES)}, not {kv_cache!r}")
        if kv_cache == "fp8" and attention != "docpipe":
            raise ValueError("an fp8 KV cache needs docpipe's decode attention (attention='docpipe')")
        # "fp8": the batch's cache holds keys and values in one byte (kv_fp8.py); prefills compute in the model's
        # dtype on their chunk's rows and store them in fp8, decode steps attend the fp8 cache
        self.kv_fp8 = kv_cache == "fp8"
        self.model = model
        self.attention = attention
        self.decode_kernel = check_decode_kernel(decode_kernel)  # with attention "docpipe"
        # "flex": the prefill's masked attention as block-sparse flex attention (gemma_flex); "sdpa": transformers'
        self.prefill_attention = prefill_attention
        # rows per prefill forward (0: all): a big batch's prefill activations (26B-A4B's experts: ~0.2 GB a row)
        # would otherwise sit beside its whole KV cache
        self.prefill_rows = prefill_rows
        # padded tokens per prefill forward (0: no limit): a batch of long rows (many pages) goes in fewer rows a
        # forward, since activations grow with rows x length
        self.prefill_tokens = prefill_tokens
        # torch.compile (inductor) of the one-token forward: fuses the step's thousands of small elementwise
        # kernels; compiled on the first step of a batch shape, and once more, with dynamic shapes, for the second
        # (dynamic shapes from the start took longer for the first shape and saved 12% over two: bench_compile.py)
        self.step_forward = model.forward
        if compile:  # one compiled forward per model, so every batch's decoder reuses its compiled code
            import torch

            # where a torch version breaks the graph inside a layer, the layer's remainder is compiled once per
            # layer (its index is a constant): dynamo's default limits then left most of 31B's 60 layers eager
            layers = int(model.config.get_text_config().num_hidden_layers)
            cfg = torch._dynamo.config
            cfg.recompile_limit = max(cfg.recompile_limit, 4 * layers)
            cfg.accumulated_recompile_limit = max(cfg.accumulated_recompile_limit, 16 * layers)
            backend = compile if isinstance(compile, str) else "inductor"  # a str names it (tests: "eager")
            if compile_scope == "layers":  # each decoder layer compiled, inside decode steps only
                compile_layers(model, backend)
            else:
                if getattr(model, "_docpipe_step_forward", None) is None:
                    model._docpipe_step_forward = torch.compile(model.forward, fullgraph=False, backend=backend)
                self.step_forward = model._docpipe_step_forward
        text = model.config.get_text_config()
        self.window = int(getattr(text, "sliding_window", 0) or 0)
        params = inspect.signature(model.forward).parameters
        self.cache_kw = "past_key_values" if "past_key_values" in params else "cache"
        # one CUDA graph per batch assumes one device; a model split over GPUs (device_map) decodes eagerly
        devices = set((getattr(model, "hf_device_map", None) or {}).values()) - {"cpu", "disk"}
        self.graphs = graphs and len(devices) <= 1
        # a batch's common prompt prefix prefilled once and shared by its rows (prefix.py); one device only
        self.shared = None
        if shared_prefix and len(devices) <= 1 and SharedPrefix.supported(model):
            self.shared = SharedPrefix(model, self.window, self.cache_kw, self._cache, self._stored)
        self.stats = {"graph_steps": 0, "eager_steps": 0, "captures": 0}
        self.clock = StageClock()  # GPU seconds of prefill and decode (and the vision tower, when it shares it)

    def _prefill_context(self, dev: Any) -> Any:
        if self.prefill_attention != "flex":
            return contextlib.nullcontext()
        from .flex import prefill_attention

        # CPU: flex's unfused reference (tests)
        return SdpaSwap(lambda original: prefill_attention(original, compiled=dev.type == "cuda"))

    # -- the cache ---------------------------------------------------------------------------------------------
    def _cache(self, max_len: int) -> Any:
        from transformers import StaticCache

        return StaticCache(config=self.model.config.get_text_config(decoder=True), max_cache_len=max_len)

    def _stored(self, t: Any) -> Any:
        """``t`` (keys or values) in the batch cache's dtype: fp8 with ``kv_cache="fp8"``, else as computed."""
        return kv_fp8.to_fp8(t) if self.kv_fp8 else t

    def _to_rings(self, cache: Any, prompt_len: int, t: Any) -> None:
        """After prefill: every sliding layer becomes a ring indexed by position % window; with an fp8 cache every
        layer is fp8 (a whole-batch prefill's bf16 cache is converted a layer at a time) and writes at slot t."""
        from transformers.cache_utils import StaticSlidingWindowLayer

        for layer in cache.layers:
            if not layer.is_initialized or getattr(layer, "keys", None) is None:
                continue
            if self.kv_fp8 and not kv_fp8.is_fp8(layer.keys):
                layer.keys, layer.values = kv_fp8.to_fp8(layer.keys), kv_fp8.to_fp8(layer.values)
            ring = isinstance(layer, StaticSlidingWindowLayer)
            if not ring and not self.kv_fp8:
                continue
            w = layer.max_cache_len
            if ring and prompt_len > w and prompt_len % w:
                # prefill kept the last w positions in order at slots 0..w-1; position p belongs at slot p % w
                kv_fp8.roll_(layer.keys, prompt_len % w)
                kv_fp8.roll_(layer.values, prompt_len % w)
            layer.__class__ = _ring_class(type(layer))
            layer._docpipe_ring_t = t

    # -- one batch -----------------------------------------------------------------------------------------------
    def _prefill(self, inputs: dict[str, Any], pos0: Any, length: int, row_pages: list[int] | None,
                 prefix: int = 0, prefix_rows: int | None = None) -> Any:
        """(filled static cache, last-position logits in float32). Rows go through the model ``prefill_rows`` at a
        time (fewer when their padded length passes ``prefill_tokens``): the first chunk into a cache of its own,
        copied into the batch's cache layer by layer once the shapes are known, the others straight into their rows
        of it. ``prefix``: tokens every row begins with, computed once (prefix.SharedPrefix) when sharing is on."""
        import torch

        b, p = inputs["input_ids"].shape
        shared = self.shared is not None and prefix >= MIN_PREFIX and prefix_rows != 0

        def rows_a_forward(tokens: int) -> int:
            step = self.prefill_rows if self.prefill_rows > 0 else b
            if self.prefill_tokens > 0:
                step = max(1, min(step, self.prefill_tokens // tokens))
            if "pixel_values" in inputs and row_pages is None:
                step = b  # which pages belong to which row is unknown
            return step

        step = rows_a_forward(p)
        if shared:
            return self.shared.prefill(inputs, pos0, length, row_pages, prefix, (rows_a_forward(p - prefix), step),
                                       (self._rows_of, self._rows_back), prefix_rows)
        if step >= b:
            cache = self._cache(length)
            out = self.model(**inputs, position_ids=pos0, use_cache=True, logits_to_keep=1,
                             **{self.cache_kw: cache})
            return cache, out.logits[:, -1].float()
        big = self._cache(length)
        logits = []
        page = 0
        for r0 in range(0, b, step):
            r1 = min(b, r0 + step)
            sub = {k: v[r0:r1] for k, v in inputs.items() if k not in ("pixel_values", "image_position_ids")}
            if "pixel_values" in inputs:
                n = sum(row_pages[r0:r1])
                sub["pixel_values"] = inputs["pixel_values"][page: page + n]
                sub["image_position_ids"] = inputs["image_position_ids"][page: page + n]
                page += n
            part = self._cache(length)
            if r0 > 0:  # the chunk writes straight into its rows of the big cache
                self._rows_of(big, part, r0, r1)
            out = self.model(**sub, position_ids=pos0[r0:r1], use_cache=True, logits_to_keep=1,
                             **{self.cache_kw: part})
            logits.append(out.logits[:, -1].float())
            del out
            if r0 > 0:
                self._rows_back(big, part, r0, r1)
            for whole, piece in zip(big.layers, part.layers):
                if not getattr(piece, "is_initialized", False) or getattr(piece, "keys", None) is None:
                    continue  # kv-shared layers (E models) hold nothing of their own
                if not whole.is_initialized:  # allocates (b, heads, len, dim) from the shapes it is shown
                    whole.lazy_initialization(self._stored(piece.keys[:1]).expand(b, -1, -1, -1),
                                              self._stored(piece.values[:1]).expand(b, -1, -1, -1))
                if r0 == 0:
                    whole.keys[r0:r1].copy_(self._stored(piece.keys))
                    whole.values[r0:r1].copy_(self._stored(piece.values))
                    # free the chunk's own layer now: the batch's cache grows as the chunk's shrinks, instead of
                    # both whole at once (4 GiB more at 31B's peak, measured: a row and a half of its cache)
                    piece.keys = piece.values = None
                if hasattr(piece, "cumulative_length") and torch.is_tensor(piece.cumulative_length):
                    whole.cumulative_length.copy_(piece.cumulative_length)
                if hasattr(piece, "cumulative_length_int"):
                    whole.cumulative_length_int = piece.cumulative_length_int
            del part
        return big, torch.cat(logits)

    def _rows_of(self, big: Any, part: Any, r0: int, r1: int) -> None:
        """Make part's layers views of rows r0:r1 of big's (initialized) layers, so a chunk's prefill writes its
        keys and values in place: no second cache of the chunk's size beside the big one, and no copy. An fp8
        cache gives the chunk a copy of its rows in the model's dtype instead, stored back by ``_rows_back``."""
        for whole, piece in zip(big.layers, part.layers):
            if not getattr(whole, "is_initialized", False) or getattr(whole, "keys", None) is None:
                continue
            keys, values = whole.keys[r0:r1], whole.values[r0:r1]
            if self.kv_fp8:
                keys, values = keys.to(self.model.dtype), values.to(self.model.dtype)
            # the layer's own set-up (device, head counts, lengths, flags), shown zero-length rows of the big cache;
            # its own buffers are then replaced by the views
            piece.lazy_initialization(keys[:, :, :0], values[:, :, :0])
            piece.keys, piece.values = keys, values

    def _rows_back(self, big: Any, part: Any, r0: int, r1: int) -> None:
        """After a chunk's forward: its rows into the fp8 cache (nothing to do where they were views)."""
        if not self.kv_fp8:
            return
        for whole, piece in zip(big.layers, part.layers):
            if getattr(whole, "keys", None) is None or getattr(piece, "keys", None) is None:
                continue
            whole.keys[r0:r1].copy_(kv_fp8.to_fp8(piece.keys))
            whole.values[r0:r1].copy_(kv_fp8.to_fp8(piece.values))

    def generate(self, inputs: dict[str, Any], max_new: int, stops: list[int] | None, pad_id: int,
                 processor: Callable[[Any, Any], Any] | None = None, row_pages: list[int] | None = None,
                 between: Callable[[], None] | None = None, prefix: int = 0, prefix_rows: int | None = None) -> Any:
        """New token ids (batch, n <= max_new) on the host; rows that stopped are padded with pad_id after their
        stop token, as ``generate()`` pads them. ``processor(input_ids, scores)`` is a logits processor; its
        ``input_ids`` (the tokens so far) are on the host, so its host work (the JSON grammar's masks) needs no wait
        for the GPU and runs while the step's forward is still computing the scores. ``row_pages`` (pages of each
        row, in ``pixel_values`` order) lets the prefill go in row chunks. ``between()`` is called every
        ``CHECK_EVERY`` decode steps, while the GPU works through the steps already launched (the engine launches
        the next batch's vision tower there, on another stream). ``prefix``: how many tokens the prompts of the first
        ``prefix_rows`` rows (None: every row) begin with alike (``prefix.common_prefix``), prefilled once for the
        batch when the decoder shares prefixes; the other rows are prefilled whole."""
        import torch

        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        dev = ids.device
        b, p = ids.shape
        length = -(-(p + max_new) // 64) * 64  # cache length aligned for SDPA's kernels (extra slots are masked)
        pos0 = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        with self.clock.stage("prefill", dev), self._prefill_context(dev):
            cache, logits = self._prefill(inputs, pos0, length, row_pages, prefix, prefix_rows)

        seq = torch.full((b, length), pad_id, dtype=torch.long, device=dev)
        seq[:, :p] = ids
        # the processor's view of seq, on the host: each token is copied there when its pick is read back (the
        # loop waits for that anyway, to see whether every row stopped), before the next forward is launched
        host_seq = None
        if processor is not None:
            host_seq = torch.full((b, length), pad_id, dtype=torch.long)
            host_seq[:, :p] = ids.cpu()
        stop_t = torch.tensor(stops or [], dtype=torch.long, device=dev)
        done = torch.zeros(b, dtype=torch.bool, device=dev)

        def pick(scores: Any) -> Any:
            """Greedy token; rows already done get pad_id; marks the rows that stop with it."""
            nxt = scores.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
            if stops:
                done.logical_or_((nxt.unsqueeze(1) == stop_t).any(1))
            return nxt

        def host_pick(s: int) -> Any:  # with a processor: it sees the tokens so far, as in generate()
            if processor is None:
                return pick(logits_buf)
            nxt = pick(processor(host_seq[:, : p + s], logits_buf))
            host_seq[:, p + s] = nxt.cpu()
            return nxt

        logits_buf = logits
        nxt = host_pick(0)
        seq[:, p] = nxt
        if max_new == 1 or (stops and bool(done.all())):
            return seq[:, p: p + 1].cpu()

        # decode state, all on the device so that a captured step can read and advance it
        t = torch.full((1,), p, dtype=torch.long, device=dev)  # padded position of the token fed this step
        pos = mask.long().sum(-1, keepdim=True)  # its position id per row (prompt length without padding)
        tok = nxt.unsqueeze(1).clone()
        step = torch.ones((1,), dtype=torch.long, device=dev)  # index of the token this step produces
        attn = torch.ones((b, length), dtype=torch.bool, device=dev)
        attn[:, :p] = mask.bool()
        ar_len = torch.arange(length, device=dev)
        win = min(self.window, length)
        ar_win = torch.arange(win, device=dev) if win else None
        logits_buf = torch.empty_like(logits)
        self._to_rings(cache, p, t)

        def forward() -> None:
            masks = {"full_attention": ((ar_len <= t) & attn)[:, None, None, :]}
            if ar_win is not None:
                held = t - (t - ar_win).remainder(win)  # the position each ring slot holds
                ring = attn.gather(1, held.clamp(min=0).expand(b, -1)) & (held >= 0)
                masks["sliding_attention"] = ring[:, None, None, :]
            o = self.step_forward(input_ids=tok, position_ids=pos, attention_mask=masks, use_cache=True,
                                  logits_to_keep=1, **{self.cache_kw: cache})
            logits_buf.copy_(o.logits[:, -1])

        def advance(nxt: Any) -> None:
            seq.index_copy_(1, step + p, nxt.unsqueeze(1))
            tok.copy_(nxt.unsqueeze(1))
            t.add_(1)
            pos.add_(1)
            step.add_(1)

        def full_step() -> None:  # processor-free: the pick is part of the step
            forward()
            advance(pick(logits_buf))

        body = forward if processor is not None else full_step
        grouped = SdpaSwap(lambda o: _decode_attention_once(o, self.decode_kernel))
        with self.clock.stage("decode", dev), _InStep(), \
                grouped if self.attention == "docpipe" else contextlib.nullcontext():
            graph = None
            if self.graphs and dev.type == "cuda":
                graph = self._capture(body)  # runs step 1 eagerly as its warm-up
                self.stats["eager_steps"] += 1
            else:
                body()
                self.stats["eager_steps"] += 1
            n = 1
            while True:
                if processor is not None:
                    advance(host_pick(n))
                n += 1
                if n >= max_new:
                    break
                if stops and (processor is not None or n % CHECK_EVERY == 0) and bool(done.all()):
                    break
                if graph is not None:
                    graph.replay()
                    self.stats["graph_steps"] += 1
                else:
                    body()
                    self.stats["eager_steps"] += 1
                if between is not None and n % CHECK_EVERY == 2:
                    between()
        return seq[:, p: p + n].cpu()

    def _capture(self, body: Callable[[], None]) -> Any:
        """Run body once eagerly on a side stream (warm-up and the first real step), then capture it; None when
        the step cannot be captured (graphs are then off for this decoder)."""
        import torch

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                body()
        except torch.OutOfMemoryError:
            raise  # the engine halves the batch
        except Exception as e:  # an op that syncs with the host: keep decoding eagerly
            log.warning("decode step could not be captured as a CUDA graph (%s: %s); decoding eagerly",
                        type(e).__name__, e)
            self.graphs = False
            torch.cuda.synchronize()
            return None
        self.stats["captures"] += 1
        return graph
