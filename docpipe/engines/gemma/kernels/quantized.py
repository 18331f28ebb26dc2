"""Quantized storage for what torchao does not quantize here: Gemma 4's MoE experts (3D weights, not nn.Linear),
int4 Linear layers (``Int4Linear``) and the E models' per-layer embeddings, with the forwards that run over them
(quantize.py decides what goes where).

Experts: fp8 weights and per-row fp8 activations multiplied by ``torch._scaled_grouped_mm`` where this torch and
card have it; int8 and int4 (and fp8 elsewhere) turned back into bf16 one layer at a time, in one compiled kernel on
CUDA, for kernels/moe.py's grouped GEMM; int4 experts with the rows of a decode step are multiplied straight from
their packed weights instead (kernels/int4_mm.py). Embeddings: int8 rows, one scale each (a lookup reads a few rows).

Many rows (a prefill): fp8, int8 and int4 layers, Linear layers and experts alike, multiply by their weight turned
back into bf16, one layer at a time (``BF16_FROM_ROWS``). Why: a prefill's GEMMs are bound by arithmetic, not by
reading the weight, so fp8 saves little there, while quantizing every activation row first (torchao's and the
experts' per-row scales, separate kernels over tens of thousands of rows a layer) cost more than it saved
(docs/performance.md). A decode step (a few hundred rows) keeps the quantized kernels, which read a half or a
quarter of the bytes; int8 Linears take the bf16 path at every size (``BF16_FROM_ROWS``).
"""

from __future__ import annotations

import logging
import types
from typing import Any

import torch

from ..quantize import INT4_GROUPS
from . import int4_mm
from .kv_fp8 import FP8_MAX  # largest float8_e4m3fn, one definition for weights and the KV cache
from .moe import _grouped_mm, grouped_experts_forward

log = logging.getLogger(__name__)

#: activation rows from which a quantized Linear (tokens) or experts module (routed rows: tokens x top-k) multiplies by
#: its weight in bf16; a decode step has at most a few hundred tokens (256 rows x 8 experts = 2,048 routed rows).
#: int8 Linears from the first row: torchao's int8 weight-only matmul ran decode steps far slower than one fused cast
#: to bf16 and cuBLAS (docs/performance.md, prefill_bf16)
#: int4 Linears (Int4Linear) take Triton's kernel below this many rows, the bf16 path from it: on 31B's MLP the
#: kernel took half the bf16 path's time at 64 rows and twice it at 512 (scripts/bench_int4.py)
BF16_FROM_ROWS = {"linear": 1024, "experts": 4096, "int8_linear": 1, "int4_linear": 128}


def _dequant_rows(q: Any, s: Any, dtype: Any) -> Any:
    return (q.to(torch.float32) * s.to(torch.float32)).to(dtype)


_COMPILED_ROWS: dict[str, Any] = {}


def dequantize_weight(w: Any, dtype: Any) -> Any:
    """A torchao-quantized Linear weight back in ``dtype``: fp8 or int8 with a scale per row (Float8Tensor,
    Int8Tensor) in one compiled kernel on CUDA, anything else by the tensor's own ``dequantize``."""
    q, s = getattr(w, "qdata", None), getattr(w, "scale", None)
    per_row = s is not None and q is not None and q.dim() == 2 and tuple(s.shape) in ((q.shape[0], 1), (q.shape[0],))
    plain = getattr(w, "zero_point", None) is None and getattr(w, "act_pre_scale", None) is None
    if per_row and plain and q.dtype in (torch.float8_e4m3fn, torch.int8):
        s = s.reshape(q.shape[0], 1)
        if not q.is_cuda or torch.compiler.is_compiling():
            return _dequant_rows(q, s, dtype)
        if "cuda" not in _COMPILED_ROWS:
            _COMPILED_ROWS["cuda"] = torch.compile(_dequant_rows)
        return _COMPILED_ROWS["cuda"](q, s, dtype)
    return w.dequantize().to(dtype)


def _linear_forward(self: Any, x: Any) -> Any:
    """A quantized Linear: with many rows, the GEMM on the weight in bf16; else torchao's quantized kernel."""
    if 0 < self._docpipe_bf16_from <= x.numel() // x.shape[-1]:
        return torch.nn.functional.linear(x, dequantize_weight(self.weight, x.dtype), self.bias)
    return torch.nn.functional.linear(x, self.weight, self.bias)


def bf16_for_many_rows(model: Any, mode: str, on: bool = True) -> int:
    """Give the quantized Linear and experts modules of ``model`` (quantized to ``mode``) the bf16 path for many
    rows (``on``), or take it away; returns how many modules were set. int4 modules choose for themselves
    (``Int4Linear``, ``_experts_mm``)."""
    n = 0
    if mode not in ("fp8", "int8"):
        return n
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and type(module.weight) not in (torch.nn.Parameter, torch.Tensor):
            if not hasattr(module, "_docpipe_bf16_from"):
                module.forward = types.MethodType(_linear_forward, module)
            module._docpipe_bf16_from = BF16_FROM_ROWS["int8_linear" if mode == "int8" else "linear"] if on else 0
            n += 1
        elif getattr(module, "_docpipe_mode", None) == mode and hasattr(module, "gate_up_proj_q"):
            module._docpipe_bf16_from = BF16_FROM_ROWS["experts"] if on else 0
            n += 1
    return n


def _dequant_linear(q: Any, s: Any, dtype: Any) -> Any:
    return dequantize_3d(q.unsqueeze(0), s.unsqueeze(0), "int4", dtype).squeeze(0)


class Int4Linear(torch.nn.Module):
    """An ``nn.Linear`` with its weight in int4, stored as the experts' (``quantize_3d``): a decode step's few rows
    multiply the packed weight in Triton's kernel (kernels/int4_mm.py), a prefill's many rows (or any rows where
    Triton cannot run) the weight turned back into bf16 (one Triton pass where Triton runs) and one GEMM. Why not
    torchao's int4: its tinygemm layout cannot be turned back into bf16, and its kernel ran a prefill's thousands of
    rows at a few percent of the card's bf16 rate; its other layouts need kernel packages PyPI's torch lacks."""

    def __init__(self, q: Any, s: Any, bias: Any, dtype: Any) -> None:
        super().__init__()
        self.register_buffer("q", q)
        self.register_buffer("s", s)
        self.bias = bias
        self.dtype = dtype
        self.out_features, self.in_features = q.shape[0], 2 * q.shape[1]

    @classmethod
    def of(cls, linear: Any, device: str | None = None) -> Int4Linear:
        w = linear.weight.detach()
        if device is not None:
            w = w.to(device)
        stored = quantize_3d(w.unsqueeze(0), "int4")
        bias = linear.bias
        if bias is not None:
            bias = torch.nn.Parameter(bias.detach().to(w.device), requires_grad=False)
        return cls(stored["q"].squeeze(0), stored["s"].squeeze(0), bias, w.dtype)

    def forward(self, x: Any) -> Any:
        rows = x.numel() // x.shape[-1]
        triton = _int4_kernel_runs(x)
        if triton and rows < BF16_FROM_ROWS["int4_linear"]:
            out = int4_mm.int4_linear(x.reshape(rows, -1).to(self.dtype), self.q, self.s)
            out = out.view(*x.shape[:-1], self.out_features)
            return out if self.bias is None else out + self.bias
        # the weight back in bf16: one Triton pass where Triton runs (eager it is five passes over the weight)
        w = int4_mm.dequantize(self.q, self.s, x.dtype) if triton else _dequant_linear(self.q, self.s, x.dtype)
        return torch.nn.functional.linear(x, w, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int4"


class Int8Embedding(torch.nn.Module):
    """An embedding table as int8 rows with one scale each, times the embedding's own scale (Gemma's
    ``Gemma4TextScaledWordEmbedding``); the table halves."""

    def __init__(self, q: Any, scale: Any, dtype: Any, embed_scale: Any) -> None:
        super().__init__()
        self.register_buffer("q", q)
        self.register_buffer("scale", scale)
        self.register_buffer("embed_scale", embed_scale.to(q.device), persistent=False)
        self.dtype = dtype
        self.num_embeddings, self.embedding_dim = q.shape

    @classmethod
    def of(cls, emb: Any, device: str | None) -> Int8Embedding:
        w = emb.weight.detach()
        if device is not None:
            w = w.to(device)
        scale = w.float().abs().amax(-1, keepdim=True).clamp(min=1e-12) / 127
        q = torch.round(w.float() / scale).to(torch.int8)
        embed_scale = getattr(emb, "embed_scale", None)
        return cls(q, scale.to(w.dtype), w.dtype, torch.tensor(1.0) if embed_scale is None else embed_scale)

    def forward(self, ids: Any) -> Any:
        return self.q[ids].to(self.dtype) * self.scale[ids] * self.embed_scale.to(self.dtype)


def convert_experts(module: Any, mode: str) -> None:
    """Replace a Gemma4TextExperts module's two 3D weights by their ``mode`` storage (buffers ``{name}_q`` and
    ``{name}_s``) and give it the grouped forward over them."""
    dtype = module.gate_up_proj.dtype
    for name in ("gate_up_proj", "down_proj"):
        w = getattr(module, name).detach()
        delattr(module, name)
        for key, t in quantize_3d(w, mode).items():
            module.register_buffer(f"{name}_{key}", t)
        del w
    module._docpipe_dtype = dtype
    module._docpipe_mode = mode
    module._docpipe_scaled = mode == "fp8" and _scaled_grouped_ok(module.gate_up_proj_q.device)
    module._docpipe_mm = types.MethodType(_experts_mm, module)
    module.forward = types.MethodType(grouped_experts_forward, module)
    if module.gate_up_proj_q.is_cuda:
        torch.cuda.empty_cache()


def quantize_3d(w: Any, mode: str) -> dict[str, Any]:
    """(experts, out, in) weights -> {"q": ..., "s": ...}: fp8 and int8 with a scale per output row, int4 per group
    of the input (two values a byte, low nibble first)."""
    if mode == "fp8":
        s = (w.float().abs().amax(-1).clamp(min=1e-12) / FP8_MAX)
        return {"q": (w.float() / s.unsqueeze(-1)).to(torch.float8_e4m3fn), "s": s}
    if mode == "int8":
        s = w.float().abs().amax(-1, keepdim=True).clamp(min=1e-12) / 127
        return {"q": torch.round(w.float() / s).to(torch.int8), "s": s.to(w.dtype)}
    g = next(g for g in INT4_GROUPS if w.shape[-1] % g == 0)
    e, o, i = w.shape
    groups = w.float().view(e, o, i // g, g)
    s = groups.abs().amax(-1, keepdim=True).clamp(min=1e-12) / 7
    q = (torch.round(groups / s).clamp(-8, 7) + 8).to(torch.uint8).view(e, o, i)
    return {"q": q[..., 0::2] | (q[..., 1::2] << 4), "s": s.squeeze(-1).to(w.dtype)}


def dequantize_3d(q: Any, s: Any, mode: str, dtype: Any) -> Any:
    """The weights back from ``quantize_3d``'s storage, in ``dtype``."""
    if mode in ("fp8", "int8"):
        return (q.to(torch.float32) * s.float().reshape(*s.shape[:2], 1)).to(dtype)
    lo, hi = (q & 15).to(dtype) - 8, (q >> 4).to(dtype) - 8
    w = torch.stack((lo, hi), -1).flatten(-2)  # (e, o, i)
    e, o, i = w.shape
    g = i // s.shape[-1]
    return (w.view(e, o, i // g, g) * s.unsqueeze(-1)).view(e, o, i)


_COMPILED_DEQUANT: dict[str, Any] = {}


def _dequant_fn(device_type: str) -> Any:
    """dequantize_3d, compiled on CUDA into one kernel (eagerly it is five passes over the layer's experts)."""
    if device_type != "cuda":
        return dequantize_3d
    if "cuda" not in _COMPILED_DEQUANT:
        _COMPILED_DEQUANT["cuda"] = torch.compile(dequantize_3d, dynamic=False)
    return _COMPILED_DEQUANT["cuda"]


def _experts_mm(self: Any, x: Any, name: str, offs: Any) -> Any:
    """x (routed rows, sorted by expert) @ expert weights ``name``, per group of rows given by ``offs``."""
    q, s = getattr(self, f"{name}_q"), getattr(self, f"{name}_s")
    many = 0 < getattr(self, "_docpipe_bf16_from", 0) <= x.shape[0]
    if self._docpipe_scaled and not many:  # fp8 x fp8 on the tensor cores, per-row scales of both
        xs = x.float().abs().amax(-1).clamp(min=1e-12) / FP8_MAX
        xq = (x.float() / xs.unsqueeze(-1)).to(torch.float8_e4m3fn)
        return torch._scaled_grouped_mm(xq, q.transpose(-2, -1), xs, s, offs=offs, out_dtype=self._docpipe_dtype)
    if self._docpipe_mode == "int4" and x.shape[0] < BF16_FROM_ROWS["experts"] and _int4_kernel_runs(x):
        return int4_mm.int4_grouped_mm(x.to(self._docpipe_dtype), q, s, offs)
    w = _dequant_fn(q.device.type)(q, s, self._docpipe_mode, self._docpipe_dtype)
    return _grouped_mm()(x.to(w.dtype), w.transpose(-2, -1), offs=offs)


def _int4_kernel_runs(x: Any) -> bool:
    """Triton's kernel for int4 experts runs here: on CUDA, or on a CPU under TRITON_INTERPRET=1 (the tests)."""
    import os

    return int4_mm.available() and (x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1")


_SCALED_OK: dict[Any, bool] = {}


def _scaled_grouped_ok(device: Any) -> bool:
    """Whether torch._scaled_grouped_mm runs on this device (Hopper and this torch); else fp8 experts are turned back
    into bf16 for each layer's GEMM, as int8 ones are."""
    if device.type != "cuda":
        return False
    if device not in _SCALED_OK:
        try:
            a = torch.randn(32, 64, device=device).to(torch.float8_e4m3fn)
            b = torch.randn(2, 32, 64, device=device).to(torch.float8_e4m3fn)
            offs = torch.tensor([16, 32], dtype=torch.int32, device=device)
            torch._scaled_grouped_mm(a, b.transpose(-2, -1), torch.ones(32, device=device),
                                     torch.ones(2, 32, device=device), offs=offs, out_dtype=torch.bfloat16)
            _SCALED_OK[device] = True
        except Exception as e:  # no kernel for this card or torch
            log.warning("fp8 grouped GEMM unavailable (%s); fp8 experts are dequantized per layer", e)
            _SCALED_OK[device] = False
    return _SCALED_OK[device]
