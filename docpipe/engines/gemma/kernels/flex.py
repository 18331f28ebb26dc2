"""Prefill attention of the text model as block-sparse flex attention, exact to transformers' own mask.

Why: in a prefill, transformers hands SDPA a dense boolean mask (sliding window, the bidirectional block of each
image, left padding, and for full layers the static cache's empty tail). With a mask, SDPA's kernels compute every
query-key block and then mask it, and the global layers' 512-wide heads go to the slowest kernel. On an H100 (26B-A4B,
1120 image tokens, torch.profiler) the text attention took 28 ms of a 144 ms page, at about 90 TFLOP/s.

Here the same dense mask is cut into 128 x 128 blocks: blocks with no allowed pair are skipped, blocks where every
pair is allowed run without a mask, and only the blocks in between read the dense mask (``mask_mod`` indexes it).
So the result is the one SDPA gives for the same mask (up to float rounding), whatever pattern the model builds.
``gemma_generate.SdpaSwap`` puts it in place for a prefill. One-token steps, calls without a boolean mask and (on
CUDA) heads wider than ``MAX_CUDA_HEAD`` go to the original function.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

BLOCK = 128
#: head sizes whose flex kernel failed to build on this process's device: they use the original function
_FAILED: set[tuple[str, int]] = set()
_COMPILED: dict[str, Any] = {}
#: widest head that goes to flex on CUDA; the global layers' 512-wide heads stay with SDPA until flex is measured
#: faster for them. On an H100 (torch 2.11) flex's default tiles for them need 258 KB of shared memory (the card has
#: 227 KB), so its kernel fails to build; with WIDE_HEAD_TILES it builds, but the one run of that (31B) timed a
#: prefill that included a recompile, so its speed is unknown. bench_gemma.py --flex-wide sets this to 512.
MAX_CUDA_HEAD = 256
WIDE_HEAD_TILES = {"BLOCK_M": 64, "BLOCK_N": 32, "num_stages": 2, "num_warps": 4}


def block_mask(mask: Any) -> Any:
    """A flex ``BlockMask`` for a dense boolean mask (batch, 1, q, k), True where a query may see a key."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention.flex_attention import BlockMask

    b, _, q, k = mask.shape
    qb, kb = -(-q // BLOCK), -(-k // BLOCK)
    # padded to whole blocks (False), so mask_mod never reads past the tensor in a ragged last block
    dense = F.pad(mask[:, 0], (0, kb * BLOCK - k, 0, qb * BLOCK - q))
    tiles = dense.view(b, qb, BLOCK, kb, BLOCK)
    some = tiles.any(4).any(2)
    full = tiles.all(4).all(2)
    partial = some & ~full

    def listed(sel: Any) -> tuple[Any, Any]:
        count = sel.sum(-1, dtype=torch.int32)
        order = torch.argsort(sel.to(torch.int8), dim=-1, descending=True, stable=True).to(torch.int32)
        return count[:, None], order[:, None]

    def mask_mod(bi: Any, hi: Any, qi: Any, ki: Any) -> Any:
        return dense[bi, qi, ki]

    n, idx = listed(partial)
    fn, fidx = listed(full)
    return BlockMask.from_kv_blocks(n, idx, fn, fidx, BLOCK_SIZE=BLOCK, mask_mod=mask_mod, seq_lengths=(q, k))


def _flex(device_type: str, compiled: bool) -> Any:
    from torch.nn.attention.flex_attention import flex_attention

    if not compiled:
        return flex_attention
    if device_type not in _COMPILED:
        import torch

        _COMPILED[device_type] = torch.compile(flex_attention)
    return _COMPILED[device_type]


def prefill_attention(original: Callable[..., Any], compiled: bool = True) -> Callable[..., Any]:
    """transformers' attention-function signature; multi-token calls with a boolean mask run as flex attention.
    compiled=False runs flex's unfused reference (tests on CPU)."""
    # one BlockMask per mask tensor, which every layer of its type shares in a forward; a new forward (the next row
    # chunk) brings new masks, so only the last few are kept
    cache: dict[int, tuple[Any, Any]] = {}

    def attend(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
               scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
        import torch

        d = query.shape[-1]
        where = (query.device.type, d)
        if (query.shape[2] == 1 or attention_mask is None or attention_mask.dtype != torch.bool
                or attention_mask.shape[1] != 1 or attention_mask.shape[2] != query.shape[2]
                or where in _FAILED or kwargs.get("softcap") is not None or dropout
                or (query.device.type == "cuda" and d > MAX_CUDA_HEAD)):
            return original(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
        tiles = WIDE_HEAD_TILES if d > 256 and query.device.type == "cuda" else None
        try:  # any failure here (a torch without flex, a kernel that does not build) falls back to SDPA
            hit = cache.get(id(attention_mask))
            if hit is None or hit[0] is not attention_mask:
                if len(cache) >= 4:
                    cache.clear()
                hit = (attention_mask, block_mask(attention_mask[:, :, :, : key.shape[2]]))
                cache[id(attention_mask)] = hit
            # detached: a prefill needs no gradient (and flex has no CPU backward to build)
            with warnings.catch_warnings():  # uncompiled is chosen on purpose (CPU reference): no advice needed
                warnings.filterwarnings("ignore", "flex_attention called without torch.compile")
                out = _flex(query.device.type, compiled)(query.detach(), key.detach(), value.detach(),
                                                         block_mask=hit[1], scale=scaling,
                                                         enable_gqa=query.shape[1] != key.shape[1],
                                                         kernel_options=tiles)
        except torch.OutOfMemoryError:
            raise
        except Exception as e:  # e.g. no kernel config fits this head size in shared memory
            log.warning("flex attention failed for head size %d on %s (%s: %s); SDPA for it from now on",
                        d, query.device.type, type(e).__name__, str(e)[:200])
            _FAILED.add(where)
            return original(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
        return out.transpose(1, 2).contiguous(), None

    return attend

