"""A decode step's attention over keys and values cached in fp8 (e4m3): one Triton kernel that reads the cache's
bytes once and multiplies in bf16, and the plain PyTorch path where Triton cannot run.

Why: at a big batch a decode step reads far more cache than weights (26B-A4B at 231 rows: ~56 GB of keys and values
against ~14 GB of int4 weights a step), so storing them in one byte instead of two halves what the step reads and
doubles the rows the card holds. PyTorch's attention kernels take no fp8 keys (SDPA, flex) and casting the cache
back to bf16 each step writes and reads more than it saves; this kernel casts a tile at a time in registers.

Why no scale: Gemma 4 normalizes keys and values (``k_norm``, ``v_norm``, RMS ~1 times a learned weight) before they
are cached, so e4m3's range (up to 448, ~2 significant decimal digits) holds them as they are; ``to_fp8`` saturates
instead of overflowing where a weight is large.

Each program takes one (row, key/value head) and a slice of the cache (flash decoding: slices when rows x heads are
too few to fill the card); the slices' partial sums are merged by their log-sum-exp in PyTorch.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

from ....errors import EngineUnavailable
from .launch import multiprocessors, on_device_of

#: e4m3 without infinities (torch.float8_e4m3fn): the format Hopper and Ada tensor cores read; largest value 448
FP8_MAX = 448.0
#: cache slots a program reads at a time, by head width (512-wide heads in smaller tiles: registers)
BLOCK_N = {256: 64, 512: 32}
NUM_WARPS = {256: 4, 512: 8}
#: programs a step's attention aims for, per multiprocessor (it splits each row's cache until there are this many)
PROGRAMS_PER_SM = 4
#: the fewest cache slots a split reads (a split's partial sums cost a write and a merge)
MIN_SPLIT = 256


#: the ``kv_cache`` setting's values
CHOICES = ("auto", "bf16", "fp8")


def choose(setting: str, device: str, capability: tuple[int, int] | None = None, decode: str = "loop") -> str:
    """The cache the decode loop keeps for ``kv_cache=setting``: "fp8" or "bf16". auto: fp8 on a CUDA GPU that
    converts fp8 in Triton (compute capability 8.9+: Ada, Hopper, Blackwell) with docpipe's decode loop, else bf16;
    fp8 asked for where it cannot run: EngineUnavailable, saying why, before any weights load. On a CPU fp8 runs
    through PyTorch (slowly; for tests)."""
    if setting not in CHOICES:
        raise EngineUnavailable(f"kv_cache must be one of {', '.join(CHOICES)}, not {setting!r}")
    if setting == "bf16":
        return "bf16"
    problem = None
    if decode != "loop":
        problem = "needs docpipe's decode loop (decode 'loop'), not transformers' generate()"
    elif device == "cuda" and capability is not None and tuple(capability) < (8, 9):
        problem = (f"needs a GPU of compute capability 8.9 or later (Ada, Hopper, Blackwell); this one is "
                   f"{capability[0]}.{capability[1]}")
    elif device == "cuda" and importlib.util.find_spec("triton") is None:
        problem = "needs Triton (it comes with PyTorch's Linux wheels)"
    if setting == "fp8":
        if problem:
            raise EngineUnavailable(f"kv_cache fp8 {problem}; use kv_cache bf16")
        return "fp8"
    return "fp8" if device == "cuda" and problem is None else "bf16"


def dtype() -> Any:
    import torch

    return torch.float8_e4m3fn


def to_fp8(x: Any) -> Any:
    """``x`` in the cache's fp8, saturated at ±FP8_MAX."""
    return x.clamp(-FP8_MAX, FP8_MAX).to(dtype())


def is_fp8(t: Any) -> bool:
    return t.dtype == dtype()


@functools.cache
def _kernel() -> Any:
    import triton
    import triton.language as tl

    @triton.jit
    def fp8_decode_kernel(q_ptr, k_ptr, v_ptr, m_ptr, acc_ptr, ml_ptr, H, N, G, per_split,
                          sq_b, sq_h, sq_g, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, sm_b, scale,
                          GP: tl.constexpr, D: tl.constexpr, BN: tl.constexpr):  # pragma: no cover (Triton)
        bh = tl.program_id(0)
        split = tl.program_id(1)
        splits = tl.num_programs(1)
        b = bh // H
        h = bh % H
        rg = tl.arange(0, GP)
        rd = tl.arange(0, D)
        q = tl.load(q_ptr + b * sq_b + h * sq_h + rg[:, None] * sq_g + rd[None, :], mask=rg[:, None] < G, other=0.0)
        m_i = tl.full((GP,), -1.0e30, dtype=tl.float32)
        l_i = tl.zeros((GP,), dtype=tl.float32)
        acc = tl.zeros((GP, D), dtype=tl.float32)
        lo = split * per_split
        hi = tl.minimum(lo + per_split, N)
        for n0 in range(lo, hi, BN):
            rn = n0 + tl.arange(0, BN)
            ok = rn < hi
            held = tl.load(m_ptr + b * sm_b + rn, mask=ok, other=0) != 0
            kt = tl.load(k_ptr + b * sk_b + h * sk_h + rn[:, None] * sk_n + rd[None, :], mask=ok[:, None], other=0.0)
            s = tl.dot(q, tl.trans(kt.to(q.dtype))) * scale
            s = tl.where(held[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.exp(m_i - m_new)
            p = tl.exp(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(p, 1)
            vt = tl.load(v_ptr + b * sv_b + h * sv_h + rn[:, None] * sv_n + rd[None, :], mask=ok[:, None], other=0.0)
            acc = acc * alpha[:, None] + tl.dot(p.to(q.dtype), vt.to(q.dtype))
            m_i = m_new
        out = (bh * splits + split) * G  # the group's real rows only (GP pads them to tl.dot's tile)
        real = rg < G
        tl.store(acc_ptr + (out + rg[:, None]) * D + rd[None, :], acc, mask=real[:, None])
        tl.store(ml_ptr + (out + rg) * 2, m_i, mask=real)
        tl.store(ml_ptr + (out + rg) * 2 + 1, l_i, mask=real)

    return fp8_decode_kernel


def splits_for(programs: int, slots: int, multiprocessors: int) -> int:
    """Slices each (row, head) cache is read in: enough programs for the card, none shorter than MIN_SPLIT slots."""
    want = -(-PROGRAMS_PER_SM * multiprocessors // max(1, programs))
    return max(1, min(want, slots // MIN_SPLIT))


def attention(q: Any, key: Any, value: Any, mask: Any, scale: float) -> Any:
    """softmax(q K^T * scale, masked) V for grouped queries ``q`` (rows, kv heads, group, dim) over fp8 ``key`` and
    ``value`` (rows, kv heads, slots, dim); ``mask`` (rows, 1, 1, slots) is True where a slot is attended. Triton's
    kernel on a GPU (or under TRITON_INTERPRET=1), else the cache cast to q's dtype and two matmuls."""
    import os

    import torch

    b, h, g, d = q.shape
    n = key.shape[2]
    triton = (q.is_cuda or os.environ.get("TRITON_INTERPRET") == "1") and d in BLOCK_N
    if not triton:
        from .generate import grouped_matmul_attention

        return grouped_matmul_attention(q, key.to(q.dtype), value.to(q.dtype), mask[..., :n], scale)
    gp = max(16, 1 << (g - 1).bit_length())  # tl.dot's smallest tile
    splits = splits_for(b * h, n, multiprocessors(q.device))
    bn = BLOCK_N[d]
    slice_len = -(-n // splits)
    per = -(-slice_len // bn) * bn  # slots a split reads, whole tiles
    splits = -(-n // per)
    held = mask.reshape(b, -1).view(torch.uint8)
    acc = torch.empty((b * h * splits * g, d), dtype=torch.float32, device=q.device)
    ml = torch.empty((b * h * splits * g, 2), dtype=torch.float32, device=q.device)
    with on_device_of(q):
        _kernel()[(b * h, splits)](q, key, value, held, acc, ml, h, n, g, per,
                                   q.stride(0), q.stride(1), q.stride(2), key.stride(0), key.stride(1), key.stride(2),
                                   value.stride(0), value.stride(1), value.stride(2), held.stride(0), float(scale),
                                   GP=gp, D=d, BN=bn, num_warps=NUM_WARPS[d], num_stages=2)
    acc = acc.view(b, h, splits, g, d)
    ml = ml.view(b, h, splits, g, 2)
    top, total = ml[..., 0], ml[..., 1]  # each split's running maximum and sum of exponentials
    w = (top - top.amax(2, keepdim=True)).exp()  # (b, h, splits, g)
    out = (acc * w[..., None]).sum(2) / (total * w).sum(2)[..., None]
    return out.to(q.dtype)


def _bytes(t: Any) -> Any:
    import torch

    return t.view(torch.uint8)


def index_copy(dest: Any, index: Any, src: Any) -> None:
    """``dest.index_copy_(2, index, src)``, ``src`` stored in dest's dtype (an fp8 cache through its bytes: index_copy_
    has no fp8 kernel on every device)."""
    if is_fp8(dest):
        _bytes(dest).index_copy_(2, index, _bytes(to_fp8(src)))
    else:
        dest.index_copy_(2, index, src)


def put(dest: Any, index: tuple[Any, ...], src: Any) -> None:
    """``dest[index] = src``, ``src`` stored in dest's dtype (fp8 through bytes, as ``index_copy``)."""
    if is_fp8(dest):
        _bytes(dest)[index] = _bytes(to_fp8(src))
    else:
        dest[index] = src


def roll_(t: Any, shift: int) -> None:
    """Roll a cache (rows, heads, slots, dim) along its slots in place (fp8 through its bytes)."""
    view = _bytes(t) if is_fp8(t) else t
    view.copy_(view.roll(shift, dims=2))
