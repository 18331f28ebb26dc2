"""An fp8 KV cache (``kv_cache="fp8"``, kernels/kv_fp8.py): the decode loop stores keys and values in one byte and
attends them there.

What a user depends on: with the cache in fp8 the loop still computes the model (padding, rings past the window,
chunked and shared-prefix prefills, kv-shared layers), and only the rounding of keys and values to fp8 differs. So
the tests round the model's own keys and values to the fp8 grid (RoPE's output and v_norm's): fp8 then holds them
exactly, and the tokens must be ``generate()``'s. The Triton kernel itself runs under Triton's interpreter in a
child process (TRITON_INTERPRET is read when a kernel is defined) against the plain PyTorch path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
from gemma_tiny import build_model, build_tokenizer  # noqa: E402
from test_gemma_generate import _prefixed_batch, _reference, _text_batch  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def _fp8_grid(t):
    import torch

    return t.to(torch.float8_e4m3fn).to(t.dtype)


@pytest.fixture
def on_fp8_grid(monkeypatch):
    """Build a tiny model whose keys and values are exactly representable in fp8 (queries and the vision tower's
    RoPE rounded alike, which both sides of a comparison share)."""
    from transformers.models.gemma4 import modeling_gemma4

    rope = modeling_gemma4.apply_rotary_pos_emb
    monkeypatch.setattr(modeling_gemma4, "apply_rotary_pos_emb", lambda *a, **k: _fp8_grid(rope(*a, **k)))

    def build(tok, variant):
        model = build_model(tok, variant)
        for layer in model.model.language_model.layers:
            if hasattr(layer.self_attn, "v_norm"):  # kv-shared layers (E models) compute no keys of their own
                layer.self_attn.v_norm.register_forward_hook(lambda mod, inp, out: _fp8_grid(out))
        return model

    return build


@pytest.fixture
def fp8_calls(monkeypatch):
    """How many decode-step attentions read an fp8 cache (the real function, counted)."""
    from docpipe.engines.gemma.kernels import kv_fp8

    calls = []
    real = kv_fp8.attention

    def counted(q, key, value, mask, scale):
        calls.append(key.dtype)
        return real(q, key, value, mask, scale)

    monkeypatch.setattr(kv_fp8, "attention", counted)
    return calls


@pytest.mark.parametrize("variant", ["dense", "moe", "e"])
@pytest.mark.parametrize("width,prefill_rows", [(40, 0), (150, 2), (90, 1)])  # inside, past twice the window
def test_an_fp8_cache_that_holds_the_keys_exactly_gives_the_tokens_of_generate(tokenizer, on_fp8_grid, fp8_calls,
                                                                                variant, width, prefill_rows):
    import torch

    from docpipe.engines.gemma.kernels.generate import Decoder

    model = on_fp8_grid(tokenizer, variant)
    inputs = _text_batch(tokenizer, [(width, 0), (width, 11), (width - 5, 0)])
    ref = _reference(model, tokenizer, inputs, 30, None)
    got = Decoder(model, prefill_rows=prefill_rows, kv_cache="fp8").generate(inputs, 30, None,
                                                                             tokenizer.pad_token_id)
    assert got.tolist() == ref.tolist()
    assert fp8_calls and set(fp8_calls) == {torch.float8_e4m3fn}


@pytest.mark.parametrize("variant", ["dense", "moe", "e"])
@pytest.mark.parametrize("n,widths,prefill_rows", [(40, [150, 150, 120], 0), (80, [150, 100, 130], 2)])
def test_an_fp8_cache_after_a_shared_prefix_gives_the_tokens_of_generate(tokenizer, on_fp8_grid, fp8_calls, variant,
                                                                         n, widths, prefill_rows):
    """The prefix's keys go into every row's fp8 slots and each chunk computes on a copy of its rows."""
    from docpipe.engines.gemma.kernels.generate import Decoder

    model = on_fp8_grid(tokenizer, variant)
    inputs = _prefixed_batch(tokenizer, n, widths)
    ref = _reference(model, tokenizer, inputs, 30, None)
    dec = Decoder(model, prefill_rows=prefill_rows, shared_prefix=True, kv_cache="fp8")
    got = dec.generate(inputs, 30, None, tokenizer.pad_token_id, prefix=n)
    assert got.tolist() == ref.tolist()
    assert dec.shared.reused == len(widths) * n and fp8_calls


def test_an_fp8_cache_changes_the_answer_only_by_the_rounding_of_keys_and_values(tokenizer):
    """Without the rounding fixture: the first token (from the prefill, before anything is stored) is bf16's, and the
    fp8 decoder runs to the end with sane tokens."""
    from docpipe.engines.gemma.kernels.generate import Decoder

    model = build_model(tokenizer, "moe")
    inputs = _text_batch(tokenizer, [(120, 0), (120, 7)])
    plain = Decoder(model, prefill_rows=1).generate(inputs, 12, None, tokenizer.pad_token_id)
    fp8 = Decoder(model, prefill_rows=1, kv_cache="fp8").generate(inputs, 12, None, tokenizer.pad_token_id)
    assert fp8.shape == plain.shape and fp8[:, 0].tolist() == plain[:, 0].tolist()
    assert int(fp8.min()) >= 0 and int(fp8.max()) < len(tokenizer)


def test_unknown_cache_types_and_sdpa_decoding_are_refused(tokenizer):
    from docpipe.engines.gemma.kernels.generate import Decoder

    model = build_model(tokenizer, "dense")
    with pytest.raises(ValueError, match="kv cache must be one of bf16, fp8"):
        Decoder(model, kv_cache="int8")
    with pytest.raises(ValueError, match="needs docpipe's decode attention"):
        Decoder(model, attention="sdpa", kv_cache="fp8")


def test_auto_keeps_fp8_where_the_gpu_converts_it_and_fp8_where_it_cannot_run_is_refused_with_the_reason():
    from docpipe.engines.gemma.kernels.kv_fp8 import choose
    from docpipe.engines.gemma.settings import engine_settings
    from docpipe.errors import EngineUnavailable

    assert engine_settings({})["kv_cache"] == "auto"
    assert choose("auto", "cuda", (9, 0)) == "fp8" and choose("auto", "cuda", (8, 9)) == "fp8"
    assert choose("auto", "cuda", (8, 0)) == "bf16"  # an A100: no fp8 conversion in Triton
    assert choose("auto", "cpu") == "bf16" and choose("fp8", "cpu") == "fp8"  # PyTorch's path: tests, small models
    assert choose("auto", "cuda", (9, 0), decode="generate") == "bf16" and choose("bf16", "cuda", (9, 0)) == "bf16"
    with pytest.raises(EngineUnavailable, match=r"kv_cache fp8 needs a GPU of compute capability 8.9 or later .* "
                                                r"this one is 8.0; use kv_cache bf16"):
        choose("fp8", "cuda", (8, 0))
    with pytest.raises(EngineUnavailable, match="kv_cache fp8 needs docpipe's decode loop"):
        choose("fp8", "cpu", decode="generate")


def test_the_planner_holds_more_rows_when_the_cache_is_fp8(tokenizer):
    """Half the bytes a row, less the chunk a prefill computes in bf16 beside the fp8 cache (a long context, where
    the cache is most of a row, as a page's is on a real model)."""
    from docpipe.engines.gemma.kernels.memory import RESERVE, kv_bytes_per_row, prefill_bytes_per_row, rows_that_fit

    model = build_model(tokenizer, "dense")
    prompt = 200_000
    free = RESERVE + 4 * prefill_bytes_per_row(model, prompt) + 40 * kv_bytes_per_row(model, prompt + 100)
    bf16 = rows_that_fit(model, free, prompt, 100, 4, slack=1.0, kv_bytes=2)
    fp8 = rows_that_fit(model, free, prompt, 100, 4, slack=1.0, kv_bytes=1)
    assert 36 <= bf16 <= 40 and fp8 >= 1.6 * bf16


CHILD = textwrap.dedent("""
    import sys
    import torch
    sys.path.insert(0, sys.argv[1])
    from docpipe.engines.gemma.kernels import kv_fp8
    from docpipe.engines.gemma.kernels.generate import grouped_matmul_attention

    torch.manual_seed(0)
    # Triton's interpreter multiplies float32 (its bf16 dot is wrong); a GPU runs q in bf16
    cases = [(3, 2, 2, 600, 256), (2, 1, 8, 100, 512), (1, 2, 3, 1000, 256), (40, 2, 2, 300, 256)]
    for b, h, g, n, d in cases:
        q = torch.randn(b, h, g, d) * 0.1
        k, v = torch.randn(b, h, n, d), torch.randn(b, h, n, d)
        mask = torch.rand(b, 1, 1, n) > 0.3
        mask[0, ..., : n // 2] = False  # a row whose first half (a whole split) is padding
        k8, v8 = kv_fp8.to_fp8(k), kv_fp8.to_fp8(v)
        got = kv_fp8.attention(q, k8, v8, mask, 0.06)
        want = grouped_matmul_attention(q, k8.float(), v8.float(), mask, 0.06)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5), (b, (got - want).abs().max())
    assert kv_fp8.splits_for(2, 1000, 1) == 2 and kv_fp8.splits_for(40 * 2, 300, 132) == 1
    print("ok")
""")


def test_the_triton_kernel_attends_the_fp8_cache_as_pytorch_does():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(TESTS)}
    run = subprocess.run([sys.executable, "-c", CHILD, str(TESTS.parent)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]
