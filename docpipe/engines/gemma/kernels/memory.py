"""How many requests of a Gemma 4 model fit on the GPU at once: the default batch size on CUDA.

Why: decode throughput grows with the batch until memory runs out (26B-A4B on an H200 at 1120 image tokens: 1.3
pages/s at batch 32, 3.3 at batch 128), so a fixed default is either slow on a big card or out of memory on a small
one. The static KV cache of one request is known from the model's layers and the context length; the rest of the
free memory after the weights, less a reserve for the prefill's activations, is divided by it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GiB = 2**30
#: never batch more than this many requests: a bigger first batch waits longer for its pages. 128 capped E4B at a
#: third of an 80 GB card; on an H200, E4B at 256 rows ran 10.6 pages/s against 9.6 at 128 (decode 22 against 33 ms
#: a page; docs/history/benchmarks-2026-11.md, eighth round)
MAX_ROWS = 256
#: memory kept free beside the caches and a prefill chunk's activations (the vision tower's batch, CUDA graphs,
#: cuBLAS workspaces, logits), at most: 5 GiB until the first prefill chunk's own cache was found alive beside the
#: batch's (gemma_generate's _prefill now frees it layer by layer; 4 GiB at 31B's peak, measured)
RESERVE = 3 * GiB
#: of RESERVE, what does not grow with the vision tower's batch (CUDA graphs, cuBLAS workspaces): a small card's E
#: model has less than 3 GiB left beside its weights, and a fixed 3 GiB planned it one row
RESERVE_FIXED = GiB
#: live activations of the vision tower, in vectors of its width per patch (calibrated so that 26B-A4B's and 31B's
#: tower at 16 pages of 1120 tokens gives RESERVE)
VISION_LIVE_VECTORS = 8


#: rows per prefill forward of a mixture-of-experts model: the experts' grouped GEMMs see only top_k / num_experts of
#: a forward's tokens each, so they need big forwards (26B-A4B measured at 16 rows of 1,750 tokens)
MOE_PREFILL_ROWS = 16
#: the fewest tokens a dense model's prefill forward is given when memory is short: its matmuls are then still
#: thousands of rows tall, and the activations of fewer rows leave room for more rows' caches (31B: 8 -> 12 rows);
#: ``plan`` goes below it only where even so fewer than MOE_PREFILL_ROWS rows fit (a small card)
DENSE_PREFILL_TOKENS = 8192


#: PyTorch's allocator settings docpipe asks for unless the user set their own: expandable segments map one growing
#: range of GPU memory instead of caching fixed blocks, so the caches, prefill activations and vision batches that
#: come and go do not leave the free memory in pieces too small for the next batch
ALLOCATOR = "expandable_segments:True"


def allocator_defaults() -> None:
    """Set ``ALLOCATOR`` as PyTorch's CUDA allocator config unless one is set. Call it before CUDA is first used
    (the allocator reads the variable once, when it starts)."""
    if not (os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF")):
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = ALLOCATOR


def cap_memory(device: Any, cap_bytes: float) -> None:
    """Let this process use at most ``cap_bytes`` of the card (``torch.cuda.set_per_process_memory_fraction``): how a
    24 GB card is simulated on a bigger one; ``usable_bytes`` then plans within it."""
    import torch

    index = torch.device(device).index or 0
    total = torch.cuda.get_device_properties(index).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_bytes / total), index)
    _CAP[index] = cap_bytes


_CAP: dict[int, float] = {}


def usable_bytes(device: Any) -> float:
    """GPU memory a batch may still take: the card's free memory, plus what PyTorch's allocator holds unused, within
    the cap ``cap_memory`` set (mem_get_info knows nothing of the per-process fraction)."""
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    # blocks PyTorch's allocator keeps cached (an earlier engine's caches in this process) are free to it too
    free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    index = torch.device(device).index
    cap = _CAP.get(torch.cuda.current_device() if index is None else index)
    return free if cap is None else min(free, cap - torch.cuda.memory_allocated(device))


def attention_shapes(model: Any) -> list[tuple[str, int, int, bool]]:
    """(layer type, query width, key width, stores its own KV) for each text layer, read from the built modules."""
    tc = model.config.get_text_config()
    layers = model.model.language_model.layers
    n_own = tc.num_hidden_layers - (tc.num_kv_shared_layers or 0)
    out = []
    for i, layer in enumerate(layers):
        k = getattr(layer.self_attn, "k_proj", None)  # kv-shared layers (E models) have none
        out.append((tc.layer_types[i], layer.self_attn.q_proj.out_features, k.out_features if k else 0,
                    i < n_own and k is not None))
    return out


@dataclass(frozen=True)
class KVRow:
    """One request's KV-cache size as a function of its context, read once from a model's layers (the engine asks
    it for every candidate row of every batch; walking the layers each time took ~0.6 ms for 31B)."""

    window: int
    sliding_width: int  # key width summed over the sliding layers that store their own K and V
    full_width: int  # the same over the full-attention layers

    @classmethod
    def of(cls, model: Any) -> KVRow:
        shapes = [(t, kw) for t, _, kw, own in attention_shapes(model) if own]
        return cls(int(model.config.get_text_config().sliding_window),
                   sum(kw for t, kw in shapes if t == "sliding_attention"),
                   sum(kw for t, kw in shapes if t != "sliding_attention"))

    def __call__(self, context: int, dtype_bytes: int = 2) -> float:
        """Bytes of K and V at ``context`` tokens (sliding layers hold a window)."""
        return (min(context, self.window) * self.sliding_width + context * self.full_width) * 2 * dtype_bytes


def reserve_bytes(model: Any, image_tokens: int, pages: int) -> float:
    """``RESERVE`` scaled to the model: the fixed part plus the vision tower's activations for ``pages`` pages at
    ``image_tokens`` (each a pooled kernel of patches), never more than ``RESERVE``."""
    vc = getattr(model.config, "vision_config", None)
    if vc is None or image_tokens <= 0:
        return float(RESERVE)
    patches = image_tokens * int(getattr(vc, "pooling_kernel_size", 1) or 1) ** 2
    vision = pages * patches * int(vc.hidden_size) * 2 * VISION_LIVE_VECTORS
    return float(min(RESERVE, RESERVE_FIXED + vision))


def kv_bytes_per_row(model: Any, context: int, dtype_bytes: int = 2) -> float:
    """Bytes of K and V one request's static cache holds at ``context`` tokens (sliding layers hold a window)."""
    return KVRow.of(model)(context, dtype_bytes)


def prefill_bytes_per_row(model: Any, prompt: int) -> float:
    """One request's prefill activations, roughly: 16 hidden-size bf16 vectors a token (residual, norms, attention),
    3 of the dense MLP's width (gate, up, their product), and for MoE 2 per routed expert (the routed copies, freed
    as the experts' forward goes). Measured on an H100 (scripts/profile_prefill.py, chunks write into the batch's
    cache in place): 26B-A4B peaked 0.235 GiB a row over weights and cache in a 16-row forward of 1,750 tokens; this
    gives 0.31. 31B at 10 rows ran out of memory on an H100 with the MLP's width left out."""
    tc = model.config.get_text_config()
    per_token = tc.hidden_size * 2 * 16 + tc.intermediate_size * 2 * 3
    if getattr(tc, "enable_moe_block", False):
        per_token += tc.top_k_experts * tc.hidden_size * 2 * 2
    return prompt * per_token


#: memory planned per byte of KV cache: 15% more for the fragmentation of PyTorch's default allocator, 2% with
#: expandable segments (``ALLOCATOR``), which leave no holes between blocks (an H100 then held 14 rows of 31B at 1120
#: image tokens, 77.3 GiB at peak, where 15% planned 11)
SLACK, SLACK_EXPANDABLE = 1.15, 1.02


def expandable_segments(device: Any) -> bool:
    """Whether PyTorch's allocator maps ``device``'s memory as expandable segments: asked of the allocator itself
    (its segments), since the variable may have been set after CUDA started."""
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    return any(s.get("is_expandable") for s in torch.cuda.memory_snapshot() if s.get("device") == index)


def rows_that_fit(model: Any, free_bytes: float, prompt: int, new_tokens: int, prefill_rows: int,
                  slack: float = SLACK, image_tokens: int = 0, vision_pages: int = 16, kv_bytes: int = 2) -> int:
    """Requests of ``prompt`` + ``new_tokens`` tokens whose caches fit in ``free_bytes`` beside a prefill of
    ``prefill_rows`` requests (0: all; fewer when fewer fit) and a reserve (CUDA graphs, logits, the vision tower's
    batch of up to ``vision_pages`` pages of ``image_tokens``, cuBLAS workspaces; ``RESERVE`` when ``image_tokens``
    is 0), with the allocator's ``slack`` on the caches (SLACK or SLACK_EXPANDABLE). ``kv_bytes``: 1 for an fp8
    cache, whose prefill chunk computes on a bf16 copy of its rows beside it."""
    row = kv_bytes_per_row(model, prompt + new_tokens)
    per_row = slack * row * kv_bytes / 2 + 262_144 * 4  # + a row of float32 logits
    act = prefill_bytes_per_row(model, prompt) + (row if kv_bytes < 2 else 0)
    chunk = prefill_rows if prefill_rows > 0 else MAX_ROWS  # 0: the whole batch in one prefill forward

    def need(rows: int) -> float:
        return (reserve_bytes(model, image_tokens, min(rows, vision_pages)) + min(rows, chunk) * act
                + rows * per_row)

    return max([1, *(r for r in range(1, MAX_ROWS + 1) if need(r) <= free_bytes)])


def plan(model: Any, free_bytes: float, prompt: int, new_tokens: int, prefill_rows: int | None,
         slack: float = SLACK, image_tokens: int = 0, vision_pages: int = 16, kv_bytes: int = 2) -> tuple[int, int]:
    """(requests per batch, rows per prefill forward). ``prefill_rows`` None chooses it: MoE models keep
    ``MOE_PREFILL_ROWS``; a dense model whose caches do not all fit takes the prefill chunk, down to
    ``DENSE_PREFILL_TOKENS`` tokens, that lets the most rows fit, and down to one row where even then fewer than
    ``MOE_PREFILL_ROWS`` rows fit (a small card: each row's prefill activations cost several rows of cache)."""
    if prefill_rows is not None:
        return rows_that_fit(model, free_bytes, prompt, new_tokens, prefill_rows, slack, image_tokens,
                             vision_pages, kv_bytes), prefill_rows
    def best(chunks: Iterable[int]) -> tuple[int, int]:  # ties: the bigger chunk
        return max((rows_that_fit(model, free_bytes, prompt, new_tokens, c, slack, image_tokens, vision_pages,
                                  kv_bytes), c) for c in chunks)

    if getattr(model.config.get_text_config(), "enable_moe_block", False):
        return best([MOE_PREFILL_ROWS])
    fewest = min(MOE_PREFILL_ROWS, max(1, -(-DENSE_PREFILL_TOKENS // max(1, prompt))))
    rows, chunk = best(range(MOE_PREFILL_ROWS, fewest - 1, -1))
    if rows < MOE_PREFILL_ROWS and fewest > 1:  # a small card: down to one row a prefill forward
        rows, chunk = best(range(fewest, 0, -1))
    return rows, chunk
