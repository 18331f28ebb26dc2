"""A grouped-GEMM forward for Gemma 4's MoE experts (26B-A4B), installed on the loaded model's expert modules.

Why: on transformers 5.17 (the lent GPU machines' version) a decode step of 26B-A4B at batch 32 spent about a
third of its GPU time in gathers of expert weights, i.e. copying ~1 GB of weights per layer per step instead of
reading them once. This forward sorts the (token, expert) pairs by expert and runs two grouped GEMMs over the
experts' weight tensors as they are stored (no copy, no per-expert Python loop), so a step reads each touched
expert's weights once. It computes the same function as ``Gemma4TextExperts.forward``; the tests check that.
"""

from __future__ import annotations

import types
from typing import Any


def _grouped_mm() -> Any:
    import torch

    return getattr(torch.nn.functional, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)


def grouped_experts_forward(self: Any, hidden_states: Any, top_k_index: Any, top_k_weights: Any) -> Any:
    """(tokens, hidden) -> (tokens, hidden): sum over each token's top-k experts of weight x expert(token)."""
    import torch

    mm = _grouped_mm()
    n_tok, k = top_k_index.shape
    flat = top_k_index.reshape(-1)
    order = torch.argsort(flat, stable=True)
    # a fixed-size count (bincount's output size depends on the data, which breaks a compiled graph)
    counts = torch.zeros(self.num_experts, dtype=torch.long, device=flat.device).scatter_add_(0, flat,
                                                                                            torch.ones_like(flat))
    offs = torch.cumsum(counts, 0, dtype=torch.int32)
    # the routed copies are (tokens x k) rows each: in a prefill chunk, ~1 GB apiece, so each goes when used
    x = hidden_states[order // k].to(getattr(self, "_docpipe_dtype", None) or self.gate_up_proj.dtype)
    gate, up = _expert_mm(self, mm, x, "gate_up_proj", offs).chunk(2, dim=-1)
    del x
    h = self.act_fn(gate) * up
    del gate, up
    out = _expert_mm(self, mm, h, "down_proj", offs)
    del h
    # back to (token, slot) order, then each token's k outputs weighted and summed by one batched matmul
    # (accumulates in float32); a float32 index_add over the routed rows moved 4x the bytes, with atomics
    back = torch.empty_like(order)
    back[order] = torch.arange(order.numel(), device=order.device)
    per_slot = out[back].view(n_tok, k, -1)
    del out
    final = torch.bmm(top_k_weights.to(per_slot.dtype).unsqueeze(1), per_slot).squeeze(1)
    return final.to(hidden_states.dtype)


def _expert_mm(self: Any, mm: Any, x: Any, name: str, offs: Any) -> Any:
    """x @ expert weights ``name`` per group of rows; quantized experts (gemma/quantize.py) bring their own."""
    own = getattr(self, "_docpipe_mm", None)
    return own(x, name, offs) if own is not None else mm(x, getattr(self, name).transpose(-2, -1), offs=offs)


def install(model: Any) -> int:
    """Use the grouped forward on every Gemma 4 experts module of model; returns how many were switched."""
    if _grouped_mm() is None:
        return 0
    n = 0
    for module in model.modules():
        if type(module).__name__ == "Gemma4TextExperts" and hasattr(module, "gate_up_proj") and \
                not hasattr(module, "_hf_hook"):  # accelerate's device_map hook wraps the forward: keep it
            module.forward = types.MethodType(grouped_experts_forward, module)
            n += 1
    return n
