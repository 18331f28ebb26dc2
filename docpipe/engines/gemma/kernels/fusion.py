"""Compiled forwards for the elementwise-heavy parts of Gemma 4's text model: RMSNorm, the MLP, the MoE router, RoPE.

Why: on an H100, a text prefill of 26B-A4B (16 rows of 1,750 tokens) spent 35 ms of its 70 ms a row in elementwise
and cast kernels against a 13.8 ms matmul floor; E4B 27 of 54 ms. Most of it is RMSNorm: transformers computes it
in float32 as seven passes over the activations (cast, pow, mean, add, pow, mul, mul, cast back), and a 26B-A4B layer
has ten of them. ``torch.compile`` turns each such forward into one or two fused kernels; the matmuls stay cuBLAS.

RoPE (``apply_rotary_pos_emb``, a function of transformers' module, not a module) is replaced in that module by a
wrapper that uses the compiled function for tensors on the devices of the installed models and the original for the
rest. One compiled function per module class serves every instance (dynamo takes the module's weights as inputs); shapes
become dynamic after the first recompile, so prefill chunks of any size and the decode step share a few graphs.
The model's own forwards are compiled, so the arithmetic is the model's (fused float32, rounded once at the end).
``compile_layers`` (decode_compile="layers") compiles whole decoder layers for the decode loop the same way.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

#: the text-model module classes whose forward gets compiled
FUSED = ("Gemma4RMSNorm", "Gemma4TextMLP", "Gemma4TextRouter")
_COMPILED: dict[tuple[Any, str], Any] = {}
#: device type -> compiled RoPE, for the wrapper installed in transformers' gemma4 module
_ROPE: dict[str, Any] = {}


def install(model: Any, backend: str = "inductor") -> int:
    """Compile the forwards of FUSED modules in model's language model; returns how many modules were switched.
    backend: a torch.compile backend ("eager" in tests: dynamo's tracing without code generation)."""
    import torch

    cfg = torch._dynamo.config
    # norms come in several shapes (hidden, per-head q/k/v) and with and without a scale
    cfg.recompile_limit = max(cfg.recompile_limit, 64)
    root = _language_model(model)
    n = 0
    for module in root.modules():
        cls = type(module)
        if cls.__name__ not in FUSED or getattr(module, "_docpipe_fused", False):
            continue
        if hasattr(module, "_hf_hook"):  # accelerate's device_map hook wraps this forward (moves inputs): keep it
            continue
        key = (cls, backend)
        if key not in _COMPILED:
            _COMPILED[key] = _eager_inside_compile(cls.forward, torch.compile(cls.forward, backend=backend))
        module.forward = types.MethodType(_COMPILED[key], module)
        module._docpipe_fused = True
        n += 1
    _install_rope(model, backend)
    return n


def uninstall(model: Any) -> None:
    """Back to the model's own forwards (and RoPE, once no device uses the compiled one)."""
    for module in _language_model(model).modules():
        if getattr(module, "_docpipe_fused", False):
            del module.forward
            del module._docpipe_fused
    _ROPE.pop(next(model.parameters()).device.type, None)


def _install_rope(model: Any, backend: str) -> None:
    import torch
    from transformers.models.gemma4 import modeling_gemma4 as mod

    original = getattr(mod.apply_rotary_pos_emb, "_docpipe_original", mod.apply_rotary_pos_emb)
    key = (original, backend)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(original, backend=backend)
    _ROPE[next(model.parameters()).device.type] = _COMPILED[key]
    if getattr(mod.apply_rotary_pos_emb, "_docpipe_original", None) is None:

        def apply_rotary_pos_emb(x: Any, cos: Any, sin: Any, unsqueeze_dim: int = 1) -> Any:
            if torch.compiler.is_compiling():  # a compiled caller (the decode step) fuses the original itself
                return original(x, cos, sin, unsqueeze_dim)
            return _ROPE.get(x.device.type, original)(x, cos, sin, unsqueeze_dim)

        apply_rotary_pos_emb._docpipe_original = original  # type: ignore[attr-defined]
        mod.apply_rotary_pos_emb = apply_rotary_pos_emb


def _eager_inside_compile(original: Any, compiled: Any) -> Any:
    """compiled, except while dynamo traces a caller (the compiled decode step): then the original forward, which
    the caller's graph fuses with its neighbours. Called from there, the compiled function breaks the caller's
    graph at every norm (torch 2.11: "failed to bind arguments when attempting to inline"), and each layer's
    remainder is then compiled once per layer."""
    import torch

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():
            return original(self, *args, **kwargs)
        return compiled(self, *args, **kwargs)

    return forward


def _language_model(model: Any) -> Any:
    """The text decoder of a Gemma4ForConditionalGeneration (or the model itself when it has none)."""
    inner = getattr(model, "model", model)
    return getattr(inner, "language_model", inner)


#: True while a decode step runs (eagerly or being captured): compiled layers are used only then
_IN_STEP = [False]
_LAYER_FORWARDS: dict[tuple[type, str], Callable[..., Any]] = {}


class _InStep:
    def __enter__(self) -> None:
        self.saved = _IN_STEP[0]
        _IN_STEP[0] = True

    def __exit__(self, *exc: object) -> None:
        _IN_STEP[0] = self.saved


def compile_layers(model: Any, backend: str = "inductor") -> int:
    """Compile the decoder layers' forward for decode steps: one compiled function per layer class, shared by all its
    instances, so inductor builds code for the kinds of layers rather than for a whole 60-layer step in one graph
    (that took minutes per batch shape on an H100). The attention stays eager, with its own fused norms and RoPE
    (gemma_fusion): its cache update indexes the cache by the layer's number, a constant that made dynamo trace
    every layer again (E4B's layout on a CPU: 202 s of compiling for two batch shapes with the attention inside,
    294 s for the whole step, 86 s without it). What is compiled is the rest: norms, MLP or experts, per-layer
    inputs, residuals. Prefill (anything outside a decode step) keeps the original forward. Returns the layers
    switched."""
    import torch

    n = 0
    for layer in getattr(_language_model(model), "layers", []):
        if getattr(layer, "_docpipe_step_compiled", False) or hasattr(layer, "_hf_hook"):
            continue  # done already, or accelerate's device_map hook owns this forward
        key = (type(layer), backend)
        if key not in _LAYER_FORWARDS:
            original = type(layer).forward
            compiled = torch.compile(original, backend=backend)

            def forward(self: Any, *args: Any, _original: Any = original, _compiled: Any = compiled,
                        **kwargs: Any) -> Any:
                run = _compiled if _IN_STEP[0] and not torch.compiler.is_compiling() else _original
                return run(self, *args, **kwargs)

            _LAYER_FORWARDS[key] = forward
        layer.forward = types.MethodType(_LAYER_FORWARDS[key], layer)
        attn = getattr(layer, "self_attn", None)
        if attn is not None:  # eager inside the compiled layer (a graph break), one function for every instance
            akey = (type(attn), "eager")
            if akey not in _LAYER_FORWARDS:
                _LAYER_FORWARDS[akey] = torch._dynamo.disable(type(attn).forward)
            attn.forward = types.MethodType(_LAYER_FORWARDS[akey], attn)
        layer._docpipe_step_compiled = True
        n += 1
    return n
