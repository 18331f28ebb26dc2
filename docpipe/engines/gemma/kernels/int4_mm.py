"""Products with int4 weights as kernels/quantized.py stores them (two values a byte, low nibble first, a bf16 scale
per group of the input), reading the packed weights directly: Triton kernels for decode steps, a grouped one for MoE
experts and a split-K one for Linear layers, and a one-pass dequantize for a prefill's bf16 GEMM.

Why: a decode step of 26B-A4B touches most of its 128 experts with a few rows each. Turning a layer's experts back
into bf16 before a grouped GEMM writes and reads again 8x the bytes the int4 weights take, for experts no row was
routed to as well, so the step ran at a fraction of what its int4 bytes allow. Here each program takes one expert and
a block of its output columns, unpacks that block's weights in registers and multiplies the expert's rows by them;
experts without rows read nothing. Prefills (thousands of rows a layer) keep the bf16 path: they are bound by
arithmetic, where cuBLAS's bf16 GEMM is the better kernel.

A Linear layer at a decode step's few rows has too few output blocks to keep the card busy, so its programs also
split the input (K) and a sum adds their float32 parts.

``TRITON_INTERPRET=1`` runs the kernels on a CPU (the tests do, in a child process); scripts/bench_int4.py times
them against the bf16 path.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

from .launch import multiprocessors, on_device_of

#: output columns a program computes; rows go 16 at a time (the smallest tile tl.dot takes)
BLOCK_N = 64
BLOCK_M = 16
NUM_WARPS = 4
NUM_STAGES = 3
#: programs a Linear layer's product aims for, per multiprocessor (it splits K until there are this many)
PROGRAMS_PER_SM = 4


@functools.cache
def available() -> bool:
    """Whether Triton is installed (it comes with torch's Linux wheels)."""
    return importlib.util.find_spec("triton") is not None


@functools.cache
def _kernel() -> Any:
    import triton
    import triton.language as tl

    @triton.jit
    def int4_grouped_kernel(x_ptr, q_ptr, s_ptr, offs_ptr, out_ptr, N, K, stride_xm, stride_qe, stride_qn,
                            stride_se, stride_sn, stride_om,
                            BM: tl.constexpr, BN: tl.constexpr, G: tl.constexpr):  # pragma: no cover (Triton)
        pid_n = tl.program_id(0)
        e = tl.program_id(1)
        end = tl.load(offs_ptr + e)
        start = tl.load(offs_ptr + e - 1, mask=e > 0, other=0)
        rn = pid_n * BN + tl.arange(0, BN)
        rk = tl.arange(0, G)
        rkh = tl.arange(0, G // 2)
        n_ok = rn < N
        for m0 in range(start, end, BM):
            rm = m0 + tl.arange(0, BM)
            m_ok = rm < end
            acc = tl.zeros((BM, BN), dtype=tl.float32)
            for k0 in range(0, K, G):
                xt = tl.load(x_ptr + rm[:, None] * stride_xm + (k0 + rk)[None, :], mask=m_ok[:, None], other=0.0)
                packed = tl.load(q_ptr + e * stride_qe + rn[:, None] * stride_qn + (k0 // 2 + rkh)[None, :],
                                 mask=n_ok[:, None], other=0)
                lo = (packed & 15).to(tl.float32) - 8.0
                hi = (packed >> 4).to(tl.float32) - 8.0
                sc = tl.load(s_ptr + e * stride_se + rn * stride_sn + k0 // G, mask=n_ok, other=0.0)
                w = (tl.join(lo, hi).reshape(BN, G) * sc.to(tl.float32)[:, None]).to(xt.dtype)
                acc = tl.dot(xt, tl.trans(w), acc)
            tl.store(out_ptr + rm[:, None] * stride_om + rn[None, :], acc.to(out_ptr.dtype.element_ty),
                     mask=m_ok[:, None] & n_ok[None, :])

    return int4_grouped_kernel


def int4_grouped_mm(x: Any, q: Any, s: Any, offs: Any, out_dtype: Any = None) -> Any:
    """x (rows sorted by expert, K) times each expert's int4 weights (E, N, K // 2) with scales (E, N, K // g):
    (rows, N), row r multiplied by the expert whose group ``offs`` (cumulative row ends, int32) puts it in."""
    import torch

    rows, k = x.shape
    e, n, half = q.shape
    if half * 2 != k or offs.shape[0] != e:
        raise ValueError(f"int4_grouped_mm: x {tuple(x.shape)}, weights {tuple(q.shape)}, {offs.shape[0]} groups")
    group = k // s.shape[-1]
    x = x.contiguous()
    out = torch.empty((rows, n), dtype=out_dtype or x.dtype, device=x.device)
    if rows == 0:
        return out
    grid = ((n + BLOCK_N - 1) // BLOCK_N, e)
    with on_device_of(x):
        _kernel()[grid](x, q, s, offs, out, n, k, x.stride(0), q.stride(0), q.stride(1), s.stride(0), s.stride(1),
                        out.stride(0), BM=BLOCK_M, BN=BLOCK_N, G=group, num_warps=NUM_WARPS, num_stages=NUM_STAGES)
    return out


@functools.cache
def _linear_kernel() -> Any:
    import triton
    import triton.language as tl

    @triton.jit
    def int4_linear_kernel(x_ptr, q_ptr, s_ptr, out_ptr, M, N, K, k_per_split, stride_xm, stride_qn, stride_sn,
                           stride_os, stride_om,
                           BM: tl.constexpr, BN: tl.constexpr, G: tl.constexpr):  # pragma: no cover (Triton)
        pid_n = tl.program_id(0)
        pid_k = tl.program_id(1)
        pid_m = tl.program_id(2)
        rm = pid_m * BM + tl.arange(0, BM)
        rn = pid_n * BN + tl.arange(0, BN)
        rk = tl.arange(0, G)
        rkh = tl.arange(0, G // 2)
        m_ok = rm < M
        n_ok = rn < N
        acc = tl.zeros((BM, BN), dtype=tl.float32)
        k_lo = pid_k * k_per_split
        for k0 in range(k_lo, tl.minimum(k_lo + k_per_split, K), G):
            xt = tl.load(x_ptr + rm[:, None] * stride_xm + (k0 + rk)[None, :], mask=m_ok[:, None], other=0.0)
            packed = tl.load(q_ptr + rn[:, None] * stride_qn + (k0 // 2 + rkh)[None, :], mask=n_ok[:, None], other=0)
            lo = (packed & 15).to(tl.float32) - 8.0
            hi = (packed >> 4).to(tl.float32) - 8.0
            sc = tl.load(s_ptr + rn * stride_sn + k0 // G, mask=n_ok, other=0.0)
            w = (tl.join(lo, hi).reshape(BN, G) * sc.to(tl.float32)[:, None]).to(xt.dtype)
            acc = tl.dot(xt, tl.trans(w), acc)
        tl.store(out_ptr + pid_k * stride_os + rm[:, None] * stride_om + rn[None, :], acc,
                 mask=m_ok[:, None] & n_ok[None, :])

    return int4_linear_kernel


def int4_linear(x: Any, q: Any, s: Any) -> Any:
    """x (rows, K) times a Linear layer's int4 weight (N, K // 2) with scales (N, K // g): (rows, N) in x's dtype."""
    import torch

    m, k = x.shape
    n, half = q.shape
    if half * 2 != k:
        raise ValueError(f"int4_linear: x {tuple(x.shape)}, weight {tuple(q.shape)}")
    group = k // s.shape[-1]
    x = x.contiguous()
    if m == 0:
        return torch.empty((0, n), dtype=x.dtype, device=x.device)
    bm = 16 if m <= 16 else 32 if m <= 32 else 64
    blocks = -(-n // BLOCK_N) * -(-m // bm)
    groups = k // group
    split = max(1, min(groups, -(-PROGRAMS_PER_SM * multiprocessors(x.device) // blocks)))
    per = -(-groups // split) * group
    split = -(-k // per)
    part = torch.empty((split, m, n), dtype=torch.float32, device=x.device)
    grid = (-(-n // BLOCK_N), split, -(-m // bm))
    with on_device_of(x):
        _linear_kernel()[grid](x, q, s, part, m, n, k, per, x.stride(0), q.stride(0), s.stride(0), part.stride(0),
                               part.stride(1), BM=bm, BN=BLOCK_N, G=group, num_warps=NUM_WARPS, num_stages=NUM_STAGES)
    return (part.sum(0) if split > 1 else part[0]).to(x.dtype)


@functools.cache
def _dequant_kernel() -> Any:
    import triton
    import triton.language as tl

    @triton.jit
    def int4_dequant_kernel(q_ptr, s_ptr, out_ptr, N, stride_qn, stride_sn, stride_on,
                            BN: tl.constexpr, G: tl.constexpr):  # pragma: no cover (Triton)
        rn = tl.program_id(0) * BN + tl.arange(0, BN)
        k0 = tl.program_id(1) * G
        n_ok = rn < N
        packed = tl.load(q_ptr + rn[:, None] * stride_qn + (k0 // 2 + tl.arange(0, G // 2))[None, :],
                         mask=n_ok[:, None], other=0)
        lo = (packed & 15).to(tl.float32) - 8.0
        hi = (packed >> 4).to(tl.float32) - 8.0
        sc = tl.load(s_ptr + rn * stride_sn + k0 // G, mask=n_ok, other=0.0)
        w = tl.join(lo, hi).reshape(BN, G) * sc.to(tl.float32)[:, None]
        tl.store(out_ptr + rn[:, None] * stride_on + (k0 + tl.arange(0, G))[None, :],
                 w.to(out_ptr.dtype.element_ty), mask=n_ok[:, None])

    return int4_dequant_kernel


def dequantize(q: Any, s: Any, dtype: Any) -> Any:
    """A Linear layer's int4 weight (N, K // 2) with scales (N, K // g) back as (N, K) in ``dtype``, in one pass:
    for a prefill's GEMM, which cuBLAS runs far faster in bf16 than any int4 kernel here."""
    import torch

    n, half = q.shape
    group = 2 * half // s.shape[-1]
    out = torch.empty((n, 2 * half), dtype=dtype, device=q.device)
    with on_device_of(q):
        _dequant_kernel()[(-(-n // BLOCK_N), s.shape[-1])](q, s, out, n, q.stride(0), s.stride(0), out.stride(0),
                                                           BN=BLOCK_N, G=group)
    return out
