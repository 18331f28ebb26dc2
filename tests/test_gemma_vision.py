"""The trimmed vision tower (gemma_vision) gives the model's own image features, on CPU with the tiny Gemma 4.

Pages of different real patch counts (an A4 invoice, a receipt, a wide strip) at budget 70 go through the real
image processor, so each is padded to 630 patches as in a run; the runner must return what
``Gemma4Model.get_image_features`` returns, page by page in the original order, for any chunk size.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

sys.path.insert(0, str(Path(__file__).parent))
from gemma_tiny import build_model, build_processor, build_tokenizer  # noqa: E402

from docpipe.engines.gemma.kernels.timing import StageClock  # noqa: E402
from docpipe.engines.gemma.kernels.vision import VisionRunner, image_features, install  # noqa: E402

SAMPLES = Path(__file__).parent.parent / "samples"
BUDGET = 70


@pytest.fixture(scope="module")
def tok():
    import torch

    torch.set_num_threads(1)
    return build_tokenizer()


@pytest.fixture(scope="module")
def pages(tok):
    """(pixel_values, position ids) of 7 pages, sizes interleaved: A4, receipt, A4, wide, receipt, A4, A4."""
    from PIL import Image

    from docpipe.discover import describe
    from docpipe.engines.vlm.prompting import render_spec_for_tokens
    from docpipe.rasterize import open_document

    spec = render_spec_for_tokens(BUDGET)
    imgs = {}
    for key, name in (("a4", "invoice_de_din_mueller.pdf"), ("receipt", "receipt_en_harbor_bean.png")):
        with open_document(describe(SAMPLES / name)) as doc:
            imgs[key] = next(iter(doc.pages())).render(spec)
    imgs["wide"] = Image.effect_noise((900, 200), 60).convert("RGB")
    order = ["a4", "receipt", "a4", "wide", "receipt", "a4", "a4"]
    enc = build_processor(tok).image_processor([imgs[k] for k in order], return_tensors="pt",
                                               max_soft_tokens=BUDGET)
    return enc["pixel_values"], enc["image_position_ids"]


@pytest.fixture(scope="module")
def model(tok):
    """The dense tiny model in float32, its vision output standardized with random statistics (as 26B/31B)."""
    import torch

    m = build_model(tok, "dense")
    vt = m.model.vision_tower
    vt.config.standardize = True
    g = torch.Generator().manual_seed(3)
    vt.register_buffer("std_bias", torch.randn(vt.config.hidden_size, generator=g))
    vt.register_buffer("std_scale", 1 + 0.1 * torch.rand(vt.config.hidden_size, generator=g))
    return m


def assert_same(out, ref) -> None:
    import torch

    assert len(out.pooler_output) == len(ref.pooler_output)
    for a, b in zip(out.pooler_output, ref.pooler_output):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.last_hidden_state, ref.last_hidden_state, rtol=1e-5, atol=1e-4)


def test_pages_have_different_real_sizes_and_padding(pages):
    _, pos = pages
    real = (pos != -1).all(-1).sum(-1).tolist()
    assert pos.shape[1] == BUDGET * 9
    assert len(set(real)) == 3 and all(n % 9 == 0 and n < pos.shape[1] for n in real)


def test_pages_encoded_ahead_are_taken_in_place_of_the_tower(model, pages):
    """encode_ahead (the engine's vision_ahead): later calls, in row chunks as a chunked prefill makes them, take the
    features of pages encoded ahead and run the tower only on the others; a page twice in a batch (its extraction
    and its summary) gets its features both times; what comes back is the model's own, in order."""
    import torch

    from docpipe.engines.gemma.inputs import PagePixels, stack_pages

    pv, pos = pages
    real = (pos != -1).all(-1).sum(-1).tolist()
    pp = [PagePixels(pv[i, :n], pos[i, :n], n // 9, pv.shape[1]) for i, n in enumerate(real)]
    keys = [pp[0], pp[1], pp[2], pp[0], pp[3], pp[4], pp[5], pp[6]]
    bpv, bpos = stack_pages(keys, "cpu", pv.dtype)
    with torch.no_grad():
        ref = model.model.get_image_features(bpv, bpos, return_dict=True)
        runner = VisionRunner(model.model, chunk=2)
        runner.clock = StageClock()
        runner.encode_ahead([pp[0], pp[2], pp[5]], "cpu", pv.dtype)
        assert len(runner.ahead) == 3
        encoded = []
        encode = runner.encode
        runner.encode = lambda p, q: encoded.append(q.shape[0]) or encode(p, q)
        runner.keys = list(keys)
        first, second = runner(bpv[:3], bpos[:3]), runner(bpv[3:], bpos[3:])
    assert sum(encoded) == 4  # pages 1, 3, 4 and 6; the ones encoded ahead are not encoded again
    assert runner.ahead == {} and runner.keys == []
    for a, b in zip(first.pooler_output + second.pooler_output, ref.pooler_output, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([first.last_hidden_state, second.last_hidden_state]),
                               ref.last_hidden_state, rtol=1e-5, atol=1e-4)
    assert runner.clock.totals["vision_ahead"] > 0 and runner.clock.totals["vision"] > 0


@pytest.mark.parametrize("chunk", [1, 2, 100])
def test_trimmed_features_equal_the_models_own(model, pages, chunk):
    import torch

    pv, pos = pages
    inner = model.model
    with torch.no_grad():
        ref = inner.get_image_features(pv, pos, return_dict=True)
        runner = VisionRunner(inner, chunk)
        calls = []
        encode = runner.encode
        runner.encode = lambda p, q: calls.append(tuple(q.shape[:2])) or encode(p, q)
        runner.original = None  # every page here must take the trimmed path
        out = image_features(runner, pv, pos)
    assert_same(out, ref)
    real = (pos != -1).all(-1).sum(-1).tolist()
    assert sorted(n for b, n in calls for _ in range(b)) == sorted(real)  # each page once, no padding patch
    assert all(b <= chunk for b, _ in calls)
    assert len(calls) == sum(-(-real.count(n) // chunk) for n in set(real))


def test_pages_with_odd_padding_take_the_models_path(model, pages):
    import torch

    pv, pos = pages
    pv, pos = pv.clone(), pos.clone()
    pv[1], pos[1] = pv[1].roll(100, 0), pos[1].roll(100, 0)  # padding first: this page cannot be sliced
    inner = model.model
    with torch.no_grad():
        ref = inner.get_image_features(pv, pos, return_dict=True)
        runner = VisionRunner(inner, 2)
        padded = []
        original = runner.original
        runner.original = lambda p, q, **kw: padded.append(p.shape[0]) or original(p, q, **kw)
        out = image_features(runner, pv, pos)
    assert_same(out, ref)
    assert padded == [1]


def test_installed_runner_gives_the_same_prefill_logits(tok, pages):
    import torch

    pv, pos = pages
    model = build_model(tok, "dense")
    boi, image, eoi = tok.convert_tokens_to_ids(["<|image>", "<|image|>", "<image|>"])
    text = tok("Total", add_special_tokens=False)["input_ids"]
    rows = [[0, 1], [2, 3, 6], [4, 5]]  # pages of each prompt
    soft = ((pos != -1).all(-1).sum(-1) // 9).tolist()
    ids = [[tok.bos_token_id] + [t for j in r for t in [boi] + [image] * soft[j] + [eoi]] + text for r in rows]
    width = max(map(len, ids))
    input_ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in ids])
    order = [j for r in rows for j in r]
    batch = {"input_ids": input_ids, "attention_mask": (input_ids != tok.pad_token_id).long(),
             "mm_token_type_ids": (input_ids == image).long(), "pixel_values": pv[order],
             "image_position_ids": pos[order]}
    with torch.no_grad():
        ref = model(**batch).logits
        runner = install(model, chunk=2)
        assert install(model, chunk=2) is runner  # once per model
        runner.clock = StageClock()  # the engine shares its decoder's clock: the tower's time is its own stage
        got = model(**batch).logits
        assert runner.clock.settle()["vision"] > 0
        as_tuple = model.model.get_image_features(pv, pos, return_dict=False)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    assert isinstance(as_tuple, tuple)


def test_compiled_layers_share_one_graph_across_layers_and_chunk_sizes(tok, pages):
    """Dynamic page and patch dims: one graph for every shape with 2+ pages, one for single pages, whatever the
    number of layers (dynamo's own backend "eager" here: the compile plumbing, not inductor's kernels)."""
    import torch
    from torch._dynamo.utils import counters
    from transformers import Gemma4ForConditionalGeneration

    pv, pos = pages
    cfg = build_model(tok, "dense").config
    cfg.vision_config.num_hidden_layers = 3
    torch.manual_seed(1)
    inner = Gemma4ForConditionalGeneration(cfg).eval().model
    torch._dynamo.reset()
    counters.clear()
    with torch.no_grad():
        ref = inner.get_image_features(pv, pos, return_dict=True)
        for chunk in (2, 3):
            runner = VisionRunner(inner, chunk, True, sdpa_backend="math", compile_backend="eager")
            assert_same(image_features(runner, pv, pos), ref)
    assert counters["stats"]["unique_graphs"] == 2
    torch._dynamo.reset()


def test_bad_settings_are_refused(model):
    with pytest.raises(ValueError, match="vision_sdpa_backend"):
        VisionRunner(model.model, 4, sdpa_backend="fast")
    with pytest.raises(ValueError, match="vision_compile"):
        VisionRunner(model.model, 4, compile_mode="always")
