"""A grouped GEMM over int4 experts as kernels/quantized.py stores them (two values a byte, low nibble first, a bf16
scale per group of the input), reading the packed weights directly: one Triton kernel, for decode steps.

Why: a decode step of 26B-A4B touches most of its 128 experts with a few rows each. Turning a layer's experts back
into bf16 before a grouped GEMM writes and reads again 8x the bytes the int4 weights take, for experts no row was
routed to as well, so the step ran at a fraction of what its int4 bytes allow. Here each program takes one expert and
a block of its output columns, unpacks that block's weights in registers and multiplies the expert's rows by them;
experts without rows read nothing. Prefills (thousands of rows a layer) keep the bf16 path: they are bound by
arithmetic, where cuBLAS's bf16 GEMM is the better kernel.

``TRITON_INTERPRET=1`` runs the kernel on a CPU (the tests do, in a child process).
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

#: output columns a program computes; rows go 16 at a time (the smallest tile tl.dot takes)
BLOCK_N = 64
BLOCK_M = 16
NUM_WARPS = 4
NUM_STAGES = 3


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
    _kernel()[grid](x, q, s, offs, out, n, k, x.stride(0), q.stride(0), q.stride(1), s.stride(0), s.stride(1),
                    out.stride(0), BM=BLOCK_M, BN=BLOCK_N, G=group, num_warps=NUM_WARPS, num_stages=NUM_STAGES)
    return out
