"""int4 experts multiplied straight from their packed weights (kernels/int4_mm.py), the path a decode step of an
int4 MoE model takes on a GPU: the same numbers as the weights the storage gives back. Triton's interpreter runs the
kernel on this CPU, in a child process (TRITON_INTERPRET is read when a kernel is defined)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("triton")

TESTS = Path(__file__).parent

CHILD = textwrap.dedent("""
    import copy, sys
    import torch
    sys.path.insert(0, sys.argv[1])
    from docpipe.engines.gemma.kernels.int4_mm import int4_grouped_mm
    from docpipe.engines.gemma.kernels.quantized import convert_experts, dequantize_3d, quantize_3d

    torch.manual_seed(0)
    # uneven groups, experts without rows, a group of 64 (192 is no multiple of 128), more rows than one tile
    w = torch.randn(5, 80, 192)
    stored = quantize_3d(w, "int4")
    back = dequantize_3d(stored["q"], stored["s"], "int4", torch.float32)
    counts = torch.tensor([0, 21, 0, 3, 17])
    offs = torch.cumsum(counts, 0).to(torch.int32)
    x = torch.randn(int(counts.sum()), 192)
    got = int4_grouped_mm(x, stored["q"], stored["s"], offs)
    want = torch.cat([x[int(o - c):int(o)] @ back[i].T for i, (c, o) in enumerate(zip(counts, offs))])
    assert got.shape == (41, 80) and torch.allclose(got, want, atol=1e-3, rtol=1e-3), (got - want).abs().max()
    assert int4_grouped_mm(x[:0], stored["q"], stored["s"], torch.zeros(5, dtype=torch.int32)).shape == (0, 80)

    # a tiny 26B-style model's experts in int4: the grouped forward through the kernel is transformers' own loop
    from gemma_tiny import build_model, build_tokenizer
    model = build_model(build_tokenizer(), "moe")
    experts = next(m for m in model.modules() if type(m).__name__ == "Gemma4TextExperts")
    for p in experts.parameters():
        torch.nn.init.normal_(p, std=0.5)
    reference = copy.deepcopy(experts)
    convert_experts(experts, "int4")
    with torch.no_grad():
        for name in ("gate_up_proj", "down_proj"):
            getattr(reference, name).copy_(dequantize_3d(getattr(experts, f"{name}_q"),
                                                        getattr(experts, f"{name}_s"), "int4", torch.float32))
        h = torch.randn(37, 64)
        idx = torch.stack([torch.randperm(experts.num_experts)[:2] for _ in range(37)])
        wts = torch.softmax(torch.randn(37, 2), -1)
        got = experts(h, idx, wts)
        want = type(reference).forward(reference, h, idx, wts)
    assert torch.allclose(got, want, atol=1e-3, rtol=1e-3), (got - want).abs().max()

    # a Linear layer (bias, a batch of sequences): the kernel (under 128 rows; whole or split along K) and the bf16
    # path over the same weights agree
    from docpipe.engines.gemma.kernels import int4_mm
    from docpipe.engines.gemma.kernels.quantized import Int4Linear, _dequant_linear
    linear = torch.nn.Linear(256, 96)
    packed = Int4Linear.of(linear)
    x = torch.randn(3, 7, 256)
    want = torch.nn.functional.linear(x, _dequant_linear(packed.q, packed.s, torch.float32), linear.bias)
    for per_sm in (1, 64):  # one program per block of outputs, or K split in two as well
        int4_mm.PROGRAMS_PER_SM = per_sm
        got = packed(x)
        assert got.shape == (3, 7, 96) and torch.allclose(got, want, atol=1e-3, rtol=1e-3), (got - want).abs().max()
    x = torch.randn(200, 256)  # a prefill's rows: the weight turned back into bf16 by Triton, then one GEMM
    want = torch.nn.functional.linear(x, _dequant_linear(packed.q, packed.s, torch.float32), linear.bias)
    assert torch.allclose(packed(x), want, atol=1e-3, rtol=1e-3)
    assert torch.equal(int4_mm.dequantize(packed.q, packed.s, torch.float32),
                       _dequant_linear(packed.q, packed.s, torch.float32))
    print("ok")
""")


def test_int4_kernel_computes_the_stored_weights_product():
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([sys.executable, "-c", CHILD, str(TESTS)], capture_output=True, text=True, env=env,
                         cwd=TESTS.parent, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]
