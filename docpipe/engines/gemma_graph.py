"""A compiled, CUDA-graph-replayed decode step for Gemma 4 under ``generate()`` with a static KV cache.

Why: eager decode is launch-bound (thousands of small kernels a step: E4B took 66 ms a step against 2.2 ms of
weight reads). transformers' own answer, ``cache_implementation="static"`` with its automatic
``torch.compile(mode="reduce-overhead")``, does not work for Gemma 4 (5.17 to 5.24 at least): the sliding-window
layers of the static cache (``StaticSlidingWindowLayer``) keep their length in a Python int that ``update`` reads
and bumps inside the compiled forward, so dynamo guards on its value and recompiles every step until it hits its
recompile limit and falls back (measured 307 ms a step; upstream declined to change it, huggingface/transformers
issue 44609).

What this does instead, the same on 5.17 and 5.24:
- ``generate()`` still builds the static cache (``cache_implementation="static"``) and the 4D masks outside the
  model (it does so for any compileable cache), but its own compile is switched off (``disable_compile``).
- The model's ``forward`` is wrapped. Prefill, and any step where a sliding layer is not yet full (short text-only
  prompts), run eagerly as before. Once every sliding layer holds a full window, a one-token step runs a
  ``torch.compile``d forward in which those layers take the "already full" path (roll the window, write the new
  token last) without reading the Python int; the wrapper advances the int after the step, eagerly, where the mask
  builder reads it. Nothing in the compiled step depends on a Python number that changes per step, so it is
  compiled once per shape and replayed as a CUDA graph.
The "full" path is the one transformers takes itself once a sliding layer is full, so the result is the same
function; the tests compare it with eager decoding on CPU (dynamo's eager backend).
"""

from __future__ import annotations

import functools
from typing import Any

#: marker attribute on a model whose forward is wrapped
_MARK = "_docpipe_decode_graph"


def _rolling_update(self: Any, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
    """``StaticSlidingWindowLayer.update`` for a full window and one new token, without touching the Python int;
    any other case goes to the original."""
    import torch

    if not getattr(self, "_docpipe_rolling", False):
        return type(self).__mro__[1].update(self, key_states, value_states, *args, **kwargs)
    new_keys = self.keys.roll(-1, dims=-2)
    new_values = self.values.roll(-1, dims=-2)
    index = torch.tensor([-1], dtype=torch.long, device=self.keys.device)
    new_keys[:, :, index] = key_states
    new_values[:, :, index] = value_states
    self.keys.copy_(new_keys)
    self.values.copy_(new_values)
    return self.keys, self.values


@functools.lru_cache(maxsize=None)
def _rolling_class(base: type) -> type:
    return type(f"Rolling{base.__name__}", (base,), {"update": _rolling_update})


def _sliding_layers(cache: Any) -> list[Any] | None:
    """The cache's sliding-window layers, or None when the cache is not one this wrapper understands."""
    try:
        from transformers.cache_utils import StaticLayer, StaticSlidingWindowLayer
    except ImportError:
        return None
    layers = getattr(cache, "layers", None)
    if not layers:
        return None
    out = []
    for layer in layers:
        base = type(layer).__mro__[1] if type(layer).__name__.startswith("Rolling") else type(layer)
        if base is StaticSlidingWindowLayer:
            if not hasattr(layer, "cumulative_length_int"):
                return None
            out.append(layer)
        elif base is not StaticLayer and type(layer).__name__ != "DummyLayer":  # DummyLayer: kv-shared layers
            return None
    return out


class DecodeGraph:
    """Wraps ``model.forward``: eager prefill, compiled + CUDA-graph decode steps (see the module doc)."""

    def __init__(self, model: Any, backend: str = "inductor", mode: str | None = "reduce-overhead",
                 recompile_limit: int = 64) -> None:
        import torch

        self.model = model
        self.eager = model.forward
        self.calls = {"eager": 0, "graph": 0}
        for name in ("recompile_limit", "cache_size_limit"):  # torch >= 2.6 / older spelling
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), recompile_limit))
        if backend == "inductor" and mode == "reduce-overhead":
            # each generate() builds a fresh static cache: new addresses re-record the graph once per call
            triton_cfg = getattr(torch._inductor.config, "triton", None)
            if triton_cfg is not None and hasattr(triton_cfg, "cudagraph_unexpected_rerecord_limit"):
                triton_cfg.cudagraph_unexpected_rerecord_limit = max(
                    triton_cfg.cudagraph_unexpected_rerecord_limit, 1 << 20)
        kw: dict[str, Any] = {"backend": backend, "fullgraph": False}
        if mode is not None and backend == "inductor":
            kw["mode"] = mode
        self.compiled = torch.compile(self.eager, **kw)
        self._cudagraphs = backend == "inductor" and mode == "reduce-overhead"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        ids = kwargs.get("input_ids", args[0] if args else None)
        one_token = ids is not None and ids.dim() == 2 and ids.shape[1] == 1 and kwargs.get("pixel_values") is None
        sliding = _sliding_layers(cache) if one_token and cache is not None else None
        if sliding is None or any(not l.is_initialized or l.cumulative_length_int < l.max_cache_len
                                  for l in sliding):
            self.calls["eager"] += 1
            return self.eager(*args, **kwargs)
        if kwargs.get("position_ids") is None:
            # what the model computes itself from cache.get_seq_length(), which would read the int inside the graph
            kwargs["position_ids"] = (torch.arange(ids.shape[1], device=ids.device) + cache.get_seq_length()).unsqueeze(0)
        for layer in sliding:
            if not type(layer).__name__.startswith("Rolling"):
                layer.__class__ = _rolling_class(type(layer))
            layer._docpipe_rolling = True
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        try:
            out = self.compiled(*args, **kwargs)
        finally:
            for layer in sliding:
                layer._docpipe_rolling = False
        for layer in sliding:
            layer.cumulative_length_int += 1
        self.calls["graph"] += 1
        return out


def install(model: Any, **kwargs: Any) -> DecodeGraph:
    """Wrap model.forward once (idempotent); returns the wrapper (its ``calls`` counts eager and graph steps)."""
    wrapper = getattr(model, _MARK, None)
    if wrapper is None:
        wrapper = DecodeGraph(model, **kwargs)
        wrapped = functools.wraps(wrapper.eager)(wrapper)
        model.forward = wrapped
        setattr(model, _MARK, wrapper)
    return wrapper
