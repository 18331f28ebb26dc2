"""docpipe's decode loop (gemma_generate.Decoder) gives the tokens transformers' ``generate()`` gives.

The loop replaces ``generate()`` on the GPU (one CUDA graph per batch, sliding windows as ring buffers, masks built
from a device counter). On CPU the same loop runs without the graph, so the ring indexing, the masks, the position
ids, stopping and the logits-processor hand-off are checked here against greedy ``generate()`` on tiny random
models: dense (31B-style, bidirectional image mask), MoE (26B-A4B-style) and E-style (per-layer embeddings,
kv-shared layers), with left padding, prompts shorter and longer than the sliding window (64 in the tiny config),
and with real page images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

sys.path.insert(0, str(Path(__file__).parent))
from gemma_tiny import build_model, build_processor, build_tokenizer  # noqa: E402

SAMPLES = Path(__file__).parent.parent / "samples"


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def _reference(model, tok, inputs, max_new, stops, processors=None):
    from transformers import GenerationConfig

    gen = GenerationConfig(max_new_tokens=max_new, do_sample=False, eos_token_id=stops, pad_token_id=tok.pad_token_id)
    saved = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = stops  # no stops: fixed length, not the config's own eos
    try:
        out = model.generate(**inputs, generation_config=gen, logits_processor=processors)
    finally:
        model.generation_config.eos_token_id = saved
    return out[:, inputs["input_ids"].shape[1]:]


def _text_batch(tok, widths_pads, seed=3):
    import torch

    torch.manual_seed(seed)
    width = max(w for w, _ in widths_pads)
    ids = torch.randint(300, len(tok), (len(widths_pads), width))
    mask = torch.ones_like(ids)
    for r, (w, pad) in enumerate(widths_pads):
        pad = pad + width - w
        ids[r, :pad] = tok.pad_token_id
        mask[r, :pad] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("variant", ["dense", "moe", "e"])
@pytest.mark.parametrize("width", [40, 64, 90, 150])  # below, at, above and past twice the window
def test_text_prompts_give_the_tokens_of_generate(tokenizer, variant, width):
    from docpipe.engines.gemma.kernels.generate import Decoder

    model = build_model(tokenizer, variant)
    inputs = _text_batch(tokenizer, [(width, 0), (width, 11), (width - 5, 0)])
    ref = _reference(model, tokenizer, inputs, 40, None)
    got = Decoder(model).generate(inputs, 40, None, tokenizer.pad_token_id)
    assert got.tolist() == ref.tolist()
    got = Decoder(model, prefill_rows=2).generate(inputs, 40, None, tokenizer.pad_token_id)  # rows 0-1, then 2
    assert got.tolist() == ref.tolist()
    # the GEMM attention ("auto" takes it for big caches on a GPU): padding, rings and all
    got = Decoder(model, decode_kernel="matmul").generate(inputs, 40, None, tokenizer.pad_token_id)
    assert got.tolist() == ref.tolist()


def test_rows_stop_and_are_padded_as_generate_pads_them(tokenizer):
    """Stop tokens picked from what the model really says, so that rows stop at different steps."""
    from docpipe.engines.gemma.kernels.generate import Decoder

    model = build_model(tokenizer, "dense")
    inputs = _text_batch(tokenizer, [(70, 0), (70, 9), (61, 0), (70, 30)])
    free = _reference(model, tokenizer, inputs, 30, None)
    stops = sorted({int(free[0, 5]), int(free[1, 12]), int(free[2, 20])})
    ref = _reference(model, tokenizer, inputs, 30, stops)
    got = Decoder(model).generate(inputs, 30, stops, tokenizer.pad_token_id)
    n = got.shape[1]
    assert got.tolist() == ref[:, :n].tolist()
    assert (ref[:, n:] == tokenizer.pad_token_id).all()  # generate() ran on only because a row had not stopped


def test_a_logits_processor_sees_what_it_sees_in_generate(tokenizer):
    """The processor gets the tokens so far and the step's scores; here it bans whatever token came last, which
    changes every later token, so any misalignment of the hand-off shows."""
    import torch
    from transformers import LogitsProcessorList

    from docpipe.engines.gemma.kernels.generate import Decoder

    class BanLast:
        def __init__(self):
            self.widths = []

        def __call__(self, input_ids, scores):
            self.widths.append(input_ids.shape[1])
            scores[torch.arange(len(scores)), input_ids[:, -1]] = float("-inf")
            return scores

    model = build_model(tokenizer, "e")
    inputs = _text_batch(tokenizer, [(80, 0), (80, 13)])
    ref_p, got_p = BanLast(), BanLast()
    ref = _reference(model, tokenizer, inputs, 25, None, LogitsProcessorList([ref_p]))
    got = Decoder(model).generate(inputs, 25, None, tokenizer.pad_token_id, processor=got_p)
    assert got.tolist() == ref.tolist()
    assert got_p.widths == ref_p.widths


def _two_pages(tokenizer):
    """(PromptBuilder of the tiny processor at 70 image tokens, two real sample pages as its float32 pixels)."""
    import torch

    from docpipe.discover import describe
    from docpipe.engines.gemma.inputs import PromptBuilder
    from docpipe.engines.vlm.prompting import render_spec_for_tokens
    from docpipe.rasterize import open_document

    prompts = PromptBuilder(build_processor(tokenizer, max_soft_tokens=70))
    pages = []
    for name in ("receipt_en_harbor_bean.png", "scan_invoice_fr_moderne_grey.png"):
        with open_document(describe(SAMPLES / name)) as d:
            page = next(iter(d.pages()))
            pages.append(prompts.pixels(page.render(render_spec_for_tokens(70)), 70, torch.float32))
    return prompts, pages


@pytest.mark.parametrize("variant,prefill_rows,prefill_tokens,attention", [
    ("dense", 0, 0, "sdpa"), ("moe", 0, 0, "sdpa"), ("dense", 1, 0, "sdpa"), ("dense", 16, 1, "sdpa"),
    ("dense", 2, 0, "flex"), ("moe", 0, 0, "flex")])
def test_page_images_give_the_tokens_of_generate(tokenizer, variant, prefill_rows, prefill_tokens, attention,
                                                 monkeypatch):
    """Prefill with real page pixels (vision tower, bidirectional image-token mask) then decode; also with the
    prefill done one row at a time (by a row limit, or by a token limit that long rows exceed), each row writing
    into its rows of the batch's cache, and with the prefill's attention as block-sparse flex attention."""
    import torch

    from docpipe.engines.gemma.inputs import collate
    from docpipe.engines.gemma.kernels import flex as gemma_flex
    from docpipe.engines.gemma.kernels.generate import Decoder

    built = []
    real = gemma_flex.block_mask
    monkeypatch.setattr(gemma_flex, "block_mask", lambda mask: built.append(mask.shape) or real(mask))
    model = build_model(tokenizer, variant)
    prompts, pages = _two_pages(tokenizer)
    rows = []
    for k, imgs in enumerate([pages[:1], pages, pages[1:]]):  # rows of 1, 2 and 1 pages
        msgs = [{"role": "user", "content": [*({"type": "image"} for _ in imgs),
                                             {"type": "text", "text": "Read it." * (k * 9 + 1)}]}]
        rows.append((prompts.encode(msgs, [], imgs), imgs))
    inputs = collate(rows, tokenizer.pad_token_id, prompts.image_id, torch.device("cpu"), torch.float32)
    ref = _reference(model, tokenizer, inputs, 20, None)
    dec = Decoder(model, prefill_rows=prefill_rows, prefill_tokens=prefill_tokens, prefill_attention=attention)
    got = dec.generate(inputs, 20, None, tokenizer.pad_token_id, row_pages=[len(imgs) for _, imgs in rows])
    assert got.tolist() == ref.tolist()
    assert bool(built) == (attention == "flex")  # flex really ran on the image prompts' masks
    spent = dec.clock.settle()  # where a batch's time went, for the engine's stats and bench_gemma.py
    assert spent["prefill"] > 0 and spent["decode"] > 0


def _compile_case(tokenizer, variant, **layout):
    """(model, two text batches, the plain loop's tokens for them) for the compile tests, dynamo reset and its
    counters cleared after the reference runs. MoE runs docpipe's grouped experts forward (the GPU path) inside
    the graph, in bf16 (grouped_mm's dtype)."""
    import torch
    from torch._dynamo.utils import counters

    from docpipe.engines.gemma.kernels import moe as gemma_moe
    from docpipe.engines.gemma.kernels.generate import Decoder

    torch._dynamo.reset()
    model = build_model(tokenizer, variant, **layout)
    if variant == "moe":
        model = model.to(torch.bfloat16)
        assert gemma_moe.install(model) == model.config.get_text_config().num_hidden_layers
    cases = [_text_batch(tokenizer, [(90, 0), (90, 17), (80, 0)]), _text_batch(tokenizer, [(97, 0), (97, 5)], 4)]
    refs = [Decoder(model).generate(c, 12, None, tokenizer.pad_token_id) for c in cases]
    counters.clear()
    return model, cases, refs


@pytest.mark.parametrize("variant", ["e", "moe"])
def test_compiled_step_gives_the_same_tokens_and_compiles_once_per_shape(tokenizer, variant):
    """decode_compile: the one-token forward through torch.compile (dynamo's eager backend here, so it runs on CPU)
    gives the tokens of the plain loop and is not recompiled every step (transformers' own static-cache compile
    was, on Gemma 4's sliding layers), only for a new batch shape."""
    from torch._dynamo.utils import counters

    from docpipe.engines.gemma.kernels.generate import Decoder

    model, cases, refs = _compile_case(tokenizer, variant)
    for c, ref in zip(cases, refs):
        got = Decoder(model, compile="eager").generate(c, 12, None, tokenizer.pad_token_id)
        assert got.tolist() == ref.tolist()
    assert 1 <= counters["stats"]["unique_graphs"] <= 2  # first shape, then one dynamic recompile; not one a step


@pytest.mark.parametrize("variant", ["e", "moe"])
def test_layer_compiled_step_gives_the_same_tokens_and_leaves_prefill_alone(tokenizer, variant):
    """decode_compile="layers": each decoder layer's forward through torch.compile (dynamo's eager backend here)
    inside decode steps only, its attention eager. Same tokens as the plain loop; dynamo traces each kind of layer
    once per batch shape, not each layer and never each step; a forward outside a decode step traces nothing."""
    import torch
    from torch._dynamo.utils import counters

    from docpipe.engines.gemma.kernels.generate import Decoder, compile_layers

    layout = {"num_hidden_layers": 8, "layer_types": (["sliding_attention"] * 3 + ["full_attention"]) * 2}
    if variant == "e":
        layout["num_kv_shared_layers"] = 4
    model, cases, refs = _compile_case(tokenizer, variant, **layout)
    for c, ref in zip(cases, refs):
        got = Decoder(model, compile="eager", compile_scope="layers").generate(c, 12, None, tokenizer.pad_token_id)
        assert got.tolist() == ref.tolist()
    assert 0 < counters["stats"]["unique_graphs"] <= 8  # one trace a layer would be 16 (8 layers, 2 shapes)
    assert compile_layers(model, "eager") == 0  # installed once
    traced = counters["stats"]["unique_graphs"]
    with torch.no_grad():
        model(**cases[0])  # a prefill-like forward: the original layers
    Decoder(model, compile="eager", compile_scope="layers").generate(cases[0], 12, None, tokenizer.pad_token_id)
    assert counters["stats"]["unique_graphs"] == traced


@pytest.mark.parametrize("variant", ["e", "moe"])
def test_fused_text_modules_give_the_same_tokens(tokenizer, variant):
    """text_compile: RMSNorm, MLP, router and RoPE through torch.compile (dynamo's eager backend here, so it runs
    on CPU) give the tokens of the plain model, with prefill and decode through the compiled modules, and a
    run of shapes seen before compiles nothing."""
    import torch
    from torch._dynamo.utils import counters

    from docpipe.engines.gemma.kernels import fusion as gemma_fusion
    from docpipe.engines.gemma.kernels.generate import Decoder

    torch._dynamo.reset()
    model = build_model(tokenizer, variant)
    cases = [_text_batch(tokenizer, [(90, 0), (90, 17), (80, 0)]), _text_batch(tokenizer, [(97, 0), (97, 5)], 4)]
    refs = [Decoder(model).generate(c, 12, None, tokenizer.pad_token_id) for c in cases]
    counters.clear()
    from accelerate.hooks import ModelHook, add_hook_to_module

    final_norm = model.model.language_model.norm  # as if device_map had put it on a device of its own
    add_hook_to_module(final_norm, ModelHook())
    hooked = final_norm.forward
    switched = gemma_fusion.install(model, backend="eager")
    assert final_norm.forward is hooked  # accelerate's hook (it moves inputs between GPUs) is left in place
    layers = model.config.get_text_config().num_hidden_layers
    assert switched >= 5 * layers  # at least the four layer norms and the MLP of every layer
    assert gemma_fusion.install(model, backend="eager") == 0  # installing twice changes nothing
    for c, ref in zip(cases, refs):
        got = Decoder(model, prefill_rows=2).generate(c, 12, None, tokenizer.pad_token_id)
        assert got.tolist() == ref.tolist()
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    Decoder(model, prefill_rows=2).generate(cases[1], 12, None, tokenizer.pad_token_id)
    assert counters["stats"]["unique_graphs"] == graphs  # shapes seen before: nothing compiles again
    gemma_fusion.uninstall(model)  # the model's own forwards and RoPE again, as the other tests expect
    counters.clear()
    assert Decoder(model).generate(cases[0], 12, None, tokenizer.pad_token_id).tolist() == refs[0].tolist()
    assert counters["stats"]["unique_graphs"] == 0


def test_default_batch_is_what_the_free_memory_holds(tokenizer):
    """The batch-size planner: a request's cache bytes come from the model's own layers (sliding layers hold only
    their window), and the batch is the free memory after a prefill reserve divided by them, within 1..MAX_ROWS."""
    from docpipe.engines.gemma.kernels.memory import (
        MAX_ROWS,
        RESERVE,
        SLACK_EXPANDABLE,
        GiB,
        kv_bytes_per_row,
        prefill_bytes_per_row,
        rows_that_fit,
    )

    model = build_model(tokenizer, "dense")  # [sliding (window 64), full] layers, one 32-wide KV head each
    assert kv_bytes_per_row(model, 100) == (64 + 100) * 32 * 2 * 2  # K and V in bf16
    assert kv_bytes_per_row(model, 1000) - kv_bytes_per_row(model, 900) == 100 * 32 * 2 * 2  # only the full layer

    per_row = 1.15 * kv_bytes_per_row(model, 300 + 200) + 262_144 * 4  # PyTorch's default allocator: 15% slack
    reserve = RESERVE + 8 * prefill_bytes_per_row(model, 300)
    assert rows_that_fit(model, reserve + 10 * per_row + 1, 300, 200, 8) == 10
    assert rows_that_fit(model, reserve + 10 * per_row - 1, 300, 200, 8) == 9
    assert rows_that_fit(model, 1 * GiB, 300, 200, 8) == 1  # never 0: the engine halves on out-of-memory anyway
    # when fewer rows than a prefill chunk fit, the reserve is for the rows that fit, not for a whole chunk
    free = RESERVE + 10 * prefill_bytes_per_row(model, 300) + 10 * per_row + 1
    assert rows_that_fit(model, free, 300, 200, 16) == 10
    assert rows_that_fit(model, free - 2, 300, 200, 16) == 9
    assert rows_that_fit(model, 10_000 * GiB, 300, 200, 8) == MAX_ROWS
    # with expandable segments (the engine's default allocator settings) the caches leave no holes: 2% slack
    per_row = 1.02 * kv_bytes_per_row(model, 300 + 200) + 262_144 * 4
    assert rows_that_fit(model, reserve + 10 * per_row + 1, 300, 200, 8, SLACK_EXPANDABLE) == 10
    assert rows_that_fit(model, reserve + 10 * per_row - 1, 300, 200, 8, SLACK_EXPANDABLE) == 9


def test_engine_asks_for_expandable_segments_unless_the_user_set_the_allocator(monkeypatch):
    """docpipe's allocator default is set before CUDA starts, and a user's own PYTORCH_CUDA_ALLOC_CONF (or the newer
    PYTORCH_ALLOC_CONF) is left as it is."""
    import os

    from docpipe.engines.gemma.kernels.memory import ALLOCATOR, allocator_defaults

    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    monkeypatch.delenv("PYTORCH_ALLOC_CONF", raising=False)
    allocator_defaults()
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == ALLOCATOR
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:512")
    allocator_defaults()
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:512"
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF")
    monkeypatch.setenv("PYTORCH_ALLOC_CONF", "backend:native")
    allocator_defaults()
    assert "PYTORCH_CUDA_ALLOC_CONF" not in os.environ


def test_planner_gives_a_dense_model_smaller_prefill_chunks_when_memory_binds(tokenizer):
    """A dense model short of memory prefills fewer rows at once (not under ~8k tokens a forward while 16 rows fit)
    so that more rows' caches fit; a MoE model keeps its 16-row forwards; a prefill_rows setting is kept as it is."""
    from docpipe.engines.gemma.kernels.memory import DENSE_PREFILL_TOKENS, MAX_ROWS, RESERVE, GiB, plan, rows_that_fit

    dense, moe = build_model(tokenizer, "dense"), build_model(tokenizer, "moe")
    prompt = 1000
    fewest = -(-DENSE_PREFILL_TOKENS // prompt)  # 9 rows of 1,000 tokens
    free = RESERVE + 0.05 * GiB
    rows, chunk = plan(dense, free, prompt, 200, None)
    assert chunk == fewest and rows > rows_that_fit(dense, free, prompt, 200, 16)
    assert rows == rows_that_fit(dense, free, prompt, 200, fewest)
    assert plan(moe, free, prompt, 200, None)[1] == 16
    assert plan(dense, 10_000 * GiB, prompt, 200, None) == (MAX_ROWS, 16)  # nothing binds: the biggest forwards
    assert plan(dense, free, prompt, 200, 4) == (rows_that_fit(dense, free, prompt, 200, 4), 4)


def test_planner_on_a_small_card_reserves_for_the_vision_batch_and_prefills_a_row_at_a_time(tokenizer):
    """A small card (an E model on 8-12 GB: a few hundred MB beside the weights): the reserve is what the model's
    vision tower needs for its batch plus a fixed part, not 3 GiB for every model, and a dense model that fits fewer
    than 16 rows even at ~8k-token prefill forwards prefills down to one row at a time, so more rows' caches fit."""
    from docpipe.engines.gemma.kernels.memory import (
        DENSE_PREFILL_TOKENS,
        RESERVE,
        RESERVE_FIXED,
        GiB,
        plan,
        reserve_bytes,
        rows_that_fit,
    )

    dense = build_model(tokenizer, "dense")
    prompt = 1000
    fewest = -(-DENSE_PREFILL_TOKENS // prompt)
    assert reserve_bytes(dense, 0, 16) == RESERVE  # image tokens not known: the old fixed reserve
    assert RESERVE_FIXED < reserve_bytes(dense, 70, 1) < reserve_bytes(dense, 70, 16) <= RESERVE
    free = RESERVE_FIXED + 0.03 * GiB
    assert plan(dense, free, prompt, 200, None)[0] == 1  # a fixed 3 GiB: one row, and only because never 0
    rows, chunk = plan(dense, free, prompt, 200, None, image_tokens=70)
    assert chunk < fewest and rows > rows_that_fit(dense, free, prompt, 200, fewest, image_tokens=70) > 1
    assert rows == rows_that_fit(dense, free, prompt, 200, chunk, image_tokens=70)
    # a short prompt (16 rows make ~8k tokens) goes down to one row a forward too
    rows, chunk = plan(dense, free, 400, 200, None, image_tokens=70)
    assert chunk < 16 and rows > rows_that_fit(dense, free, 400, 200, 16, image_tokens=70)


def _sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' attention-function signature over plain SDPA (grouped key/value heads repeated): the reference
    gemma_flex's attention is compared with, and falls back to."""
    import torch

    g = query.shape[1] // key.shape[1]
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key.repeat_interleave(g, 1), value.repeat_interleave(g, 1), attn_mask=attention_mask, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def test_flex_prefill_attention_equals_sdpa_with_the_same_mask():
    """gemma_flex cuts the dense mask into 128 x 128 blocks (skipped, unmasked or masked): whatever the pattern
    (sliding window, a bidirectional image block, left padding, an empty cache tail past the prompt), every query
    that may see a key gets SDPA's result, with grouped query heads."""
    import torch

    from docpipe.engines.gemma.kernels.flex import block_mask, prefill_attention

    torch.manual_seed(0)
    b, hq, hk, q_len, k_len, d = 3, 4, 2, 400, 520, 32
    q, k, v = torch.randn(b, hq, q_len, d), torch.randn(b, hk, k_len, d), torch.randn(b, hk, k_len, d)
    i, j = torch.arange(q_len)[:, None], torch.arange(k_len)[None, :]
    pattern = ((j <= i) & (i - j < 100)) | ((i >= 50) & (i < 300) & (j >= 50) & (j < 300))
    mask = pattern[None].repeat(b, 1, 1)
    mask[1, :, :37] = False  # row 1 is left-padded by 37
    mask[1, :37, :] = False
    mask = mask[:, None]

    ref, _ = _sdpa(None, q, k, v, mask, scaling=0.3)
    got, _ = prefill_attention(_sdpa, compiled=False)(None, q, k, v, mask, scaling=0.3)
    seen = mask[:, 0].any(-1)
    assert torch.allclose(got[seen], ref[seen], atol=1e-5)
    blocks = block_mask(mask)
    assert 0.3 < blocks.sparsity() / 100 < 0.6  # the keys past 384 and the far corner are skipped, not computed
    one = torch.randn(b, hq, 1, d)  # a one-token step goes to the original function
    assert torch.equal(prefill_attention(_sdpa, compiled=False)(None, one, k, v, mask[:, :, :1])[0],
                       _sdpa(None, one, k, v, mask[:, :, :1])[0])


def test_flex_that_fails_falls_back_to_sdpa_for_that_head_size(monkeypatch, caplog):
    """A torch whose flex attention cannot run (or a kernel that does not build) costs speed, not documents: the
    call is answered by SDPA, the reason is logged once, and that head size goes to SDPA from then on."""
    import torch

    from docpipe.engines.gemma.kernels import flex as gemma_flex

    monkeypatch.setattr(gemma_flex, "_FAILED", set())
    calls = []

    def broken(mask):
        calls.append(1)
        raise TypeError("from_kv_blocks() got an unexpected keyword argument 'seq_lengths'")

    monkeypatch.setattr(gemma_flex, "block_mask", broken)

    q, k, v = torch.randn(1, 2, 40, 16), torch.randn(1, 2, 40, 16), torch.randn(1, 2, 40, 16)
    mask = torch.ones(1, 1, 40, 40, dtype=torch.bool).tril()
    attend = gemma_flex.prefill_attention(_sdpa, compiled=False)
    for _ in range(2):
        assert torch.equal(attend(None, q, k, v, mask)[0], _sdpa(None, q, k, v, mask)[0])
    assert len(calls) == 1 and ("cpu", 16) in gemma_flex._FAILED
    assert "flex attention failed for head size 16 on cpu (TypeError" in caplog.text


@pytest.mark.parametrize("variant", ["dense", "moe", "e"])
def test_flex_prefill_gives_the_tokens_of_generate(tokenizer, variant, monkeypatch):
    """prefill_attention="flex" (CPU: flex's unfused reference) through the whole loop, with left padding and a
    prompt longer than two of flex's 128-token blocks, gives generate()'s tokens; the flex path really ran."""
    from docpipe.engines.gemma.kernels import flex as gemma_flex
    from docpipe.engines.gemma.kernels.generate import Decoder

    built = []
    real = gemma_flex.block_mask
    monkeypatch.setattr(gemma_flex, "block_mask", lambda mask: built.append(mask.shape) or real(mask))
    model = build_model(tokenizer, variant)
    inputs = _text_batch(tokenizer, [(300, 0), (300, 41), (260, 0)])
    ref = _reference(model, tokenizer, inputs, 12, None)
    got = Decoder(model, prefill_attention="flex", prefill_rows=2).generate(inputs, 12, None, tokenizer.pad_token_id)
    assert got.tolist() == ref.tolist()
    assert built and not gemma_flex._FAILED  # no fallback to SDPA


def _prefixed_batch(tok, n, widths, seed=5):
    """Left-padded rows of the given widths that all begin with the same n tokens."""
    import torch

    g = torch.Generator().manual_seed(seed)
    shared = torch.randint(300, len(tok), (n,), generator=g)
    width = max(widths)
    ids = torch.full((len(widths), width), tok.pad_token_id)
    mask = torch.zeros_like(ids)
    for r, w in enumerate(widths):
        ids[r, width - w:] = torch.cat([shared, torch.randint(300, len(tok), (w - n,), generator=g)])
        mask[r, width - w:] = 1
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("variant", ["dense", "moe", "e"])
@pytest.mark.parametrize("n,widths,prefill_rows", [
    (40, [150, 150, 120], 0),  # prefix inside the sliding window (64), prompts past twice the window
    (80, [150, 100, 130], 2),  # prefix longer than the window; rows in two chunks
    (35, [150, 40, 90], 0),  # a row padded past the prefix: its padding lies in the slots computed anew
    (33, [60, 50], 1),  # the whole prompt inside the window
])
def test_a_shared_prefix_prefilled_once_gives_the_tokens_of_the_whole_prefill(tokenizer, variant, n, widths,
                                                                                prefill_rows):
    """shared_prefix: the rows' common first tokens go through the model once, as one row, and every row's prefill
    starts from their keys and values (copied into its own padded slots; the sliding layers attend the window
    before the rest). The tokens are those of the plain prefill and of generate(), and the same prefix computed
    once serves the next batch too."""
    from docpipe.engines.gemma.kernels.generate import Decoder
    from docpipe.engines.gemma.kernels.prefix import common_prefix

    model = build_model(tokenizer, variant)
    inputs = _prefixed_batch(tokenizer, n, widths)
    rows = [r[m.bool()].tolist() for r, m in zip(inputs["input_ids"], inputs["attention_mask"])]
    assert common_prefix(rows, set()) == n
    ref = _reference(model, tokenizer, inputs, 30, None)
    assert Decoder(model, prefill_rows=prefill_rows).generate(inputs, 30, None, tokenizer.pad_token_id).tolist() \
        == ref.tolist()
    dec = Decoder(model, prefill_rows=prefill_rows, shared_prefix=True)
    got = dec.generate(inputs, 30, None, tokenizer.pad_token_id, prefix=n)
    assert got.tolist() == ref.tolist()
    assert dec.shared.reused == len(widths) * n
    computed = dec.shared.kv
    again = _prefixed_batch(tokenizer, n, [w + 3 for w in widths], seed=5)  # same prefix, other rows
    got = dec.generate(again, 30, None, tokenizer.pad_token_id, prefix=n)
    assert dec.shared.kv is computed  # not computed again
    assert got.tolist() == _reference(model, tokenizer, again, 30, None).tolist()


@pytest.mark.parametrize("variant,attention,prefill_rows", [("dense", "flex", 0), ("moe", "sdpa", 1), ("e", "sdpa", 2)])
def test_a_shared_prefix_before_page_images_gives_the_tokens_of_the_whole_prefill(tokenizer, variant, attention,
                                                                                   prefill_rows):
    """Extraction prompts as the engine lays them out with shared_prefix (instructions, fields and JSON Schema in
    the system turn, then each row's pages and its own text), with real page pixels: the image tokens' bidirectional
    mask and the vision tower run on each row's own part only, and the tokens are the plain prefill's."""
    import torch

    from docpipe.engines.gemma.inputs import collate
    from docpipe.engines.gemma.kernels.generate import Decoder
    from docpipe.engines.gemma.kernels.prefix import MIN_PREFIX, common_prefix
    from docpipe.engines.vlm.messages import extraction_of
    from docpipe.schemas import resolve

    model = build_model(tokenizer, variant)
    prompts, pages = _two_pages(tokenizer)
    rows = []
    for imgs, total in ([pages[:1], 1], [pages, 3], [pages[1:], 1]):  # rows of 1, 2 and 1 pages
        p = extraction_of(resolve("receipt"), imgs, [""] * len(imgs), 1, total, shared_first=True)
        rows.append((prompts.encode(p.messages, p.texts, imgs), imgs))
    n = common_prefix([ids for ids, _ in rows], {prompts.boi_id, prompts.image_id})
    assert n >= MIN_PREFIX and prompts.boi_id not in rows[0][0][:n]
    inputs = collate(rows, tokenizer.pad_token_id, prompts.image_id, torch.device("cpu"), torch.float32)
    row_pages = [len(imgs) for _, imgs in rows]
    ref = Decoder(model, prefill_rows=prefill_rows, prefill_attention=attention).generate(
        inputs, 12, None, tokenizer.pad_token_id, row_pages=row_pages)
    dec = Decoder(model, prefill_rows=prefill_rows, prefill_attention=attention, shared_prefix=True)
    got = dec.generate(inputs, 12, None, tokenizer.pad_token_id, row_pages=row_pages, prefix=n)
    assert got.tolist() == ref.tolist()
    assert dec.shared.reused == 3 * n


@pytest.mark.parametrize("variant", ["dense", "e"])
@pytest.mark.parametrize("other_width,prefill_rows", [(160, 0), (70, 1)])  # the longest row, or a short one
def test_rows_without_the_shared_prefix_are_prefilled_whole_beside_those_with_it(tokenizer, variant, other_width,
                                                                                  prefill_rows):
    """A batch where only the first rows share a prefix (extraction requests beside --summarize ones): those start
    from the prefix computed once, the others go through the model's own prefill into their rows of the cache; the
    tokens are those of the plain prefill, also when a row without the prefix is the longest (so every sharing row
    is padded)."""
    import torch

    from docpipe.engines.gemma.kernels.generate import Decoder
    from docpipe.engines.gemma.kernels.prefix import MIN_PREFIX, sharing_rows

    model = build_model(tokenizer, variant)
    shared = _prefixed_batch(tokenizer, 50, [150, 120])
    other = _text_batch(tokenizer, [(other_width, 0)], seed=9)
    width = max(150, other_width)

    def widen(t, fill):  # left-pad to the batch's width
        return torch.cat([torch.full((t.shape[0], width - t.shape[1]), fill, dtype=t.dtype), t], dim=1)

    inputs = {"input_ids": torch.cat([widen(shared["input_ids"], tokenizer.pad_token_id),
                                      widen(other["input_ids"], tokenizer.pad_token_id)]),
              "attention_mask": torch.cat([widen(shared["attention_mask"], 0), widen(other["attention_mask"], 0)])}
    rows = [r[m.bool()].tolist() for r, m in zip(inputs["input_ids"], inputs["attention_mask"])]
    n, members = sharing_rows(rows, set())
    assert n == 50 >= MIN_PREFIX and members == [0, 1]
    ref = Decoder(model, prefill_rows=prefill_rows).generate(inputs, 25, None, tokenizer.pad_token_id)
    dec = Decoder(model, prefill_rows=prefill_rows, shared_prefix=True)
    got = dec.generate(inputs, 25, None, tokenizer.pad_token_id, prefix=n, prefix_rows=2)
    assert got.tolist() == ref.tolist()
    assert dec.shared.reused == 2 * n
