"""--quantize for the Gemma engine on CPU: int8 and int4 end to end with the tiny models, the expert and embedding
storage of every mode, and fp8 (GPU-only) refused with a reason before anything loads.

fp8 Linear layers need a CUDA GPU (torchao's kernels); int4's Triton kernels run here in Triton's interpreter
(test_gemma_int4_kernel.py); scripts/check_gemma_numerics.py checks every mode on a GPU at full size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torchvision")
pytest.importorskip("xgrammar")
pytest.importorskip("torchao")

from typer.testing import CliRunner  # noqa: E402

from docpipe.cli import app  # noqa: E402
from docpipe.engines import EngineOptions  # noqa: E402
from docpipe.engines.gemma import quantize as q  # noqa: E402
from docpipe.engines.gemma.engine import GemmaEngine  # noqa: E402
from docpipe.engines.gemma.kernels.quantized import convert_experts, dequantize_3d, quantize_3d  # noqa: E402
from docpipe.engines.gemma.models import choose_model  # noqa: E402
from docpipe.errors import EngineUnavailable  # noqa: E402
from docpipe.store import Store  # noqa: E402

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from gemma_tiny import build_model, build_processor, build_tokenizer  # noqa: E402

GiB = 2**30


@pytest.fixture(scope="module")
def tokenizer():
    import torch

    torch.set_num_threads(1)
    return build_tokenizer()


@pytest.fixture(scope="module")
def moe_folder(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("gemma-moe-q")
    build_model(tokenizer, "moe").save_pretrained(folder)
    build_processor(tokenizer).save_pretrained(folder)
    return folder


def _cosine(a, b) -> float:
    import torch

    return float(torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1).min())


def test_known_parameter_counts_are_the_checkpoints_configs():
    """The table `docpipe engines` and auto read without weights is what the real architectures hold."""
    import torch
    from transformers import Gemma4ForConditionalGeneration

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_gemma import config

    tok = build_tokenizer()
    for key, mid in (("26b-a4b", "google/gemma-4-26B-A4B-it"), ("31b", "google/gemma-4-31B-it"),
                     ("e4b", "google/gemma-4-E4B-it"), ("e2b", "google/gemma-4-E2B-it")):
        with torch.device("meta"):
            model = Gemma4ForConditionalGeneration._from_config(config(key, tok), dtype=torch.bfloat16)
        assert q.params_of(model) == q.KNOWN[mid], key
    # what a 24 GB card is for: 26B-A4B and 31B only in int4, each beside its headroom
    p26, p31 = q.KNOWN["google/gemma-4-26B-A4B-it"], q.KNOWN["google/gemma-4-31B-it"]
    assert p26.bytes("none") / GiB > 45 and p26.bytes("int4") / GiB < 16
    assert p31.bytes("int4") + q.HEADROOM < 24 * GiB < p31.bytes("int8")


@pytest.mark.parametrize("variant", ["moe", "e", "dense"])
def test_int8_model_answers_close_to_the_unquantized_one_in_less_memory(tokenizer, variant):
    import torch

    model = build_model(tokenizer, variant)
    ids = torch.randint(10, len(tokenizer), (2, 48))
    with torch.no_grad():
        ref = model(input_ids=ids).logits[:, -1]
    q.quantize_model(model, "int8")
    with torch.no_grad():
        got = model(input_ids=ids).logits[:, -1]
    assert torch.isfinite(got).all()
    assert _cosine(got, ref) > 0.97
    assert q.active_mode(model) == "int8"
    lm = model.model.language_model
    taken = [type(m.weight).__name__ for n, m in lm.named_modules() if q.quantizable(n, m)]
    assert taken and set(taken) == {"Int8Tensor"}
    assert all(type(m.weight) is torch.nn.Parameter for n, m in lm.named_modules() if "router.proj" in n)
    if variant == "moe":
        experts = next(m for m in lm.modules() if type(m).__name__ == "Gemma4TextExperts")
        assert experts.gate_up_proj_q.dtype == torch.int8 and not hasattr(experts, "gate_up_proj")
    if variant == "e":
        assert lm.embed_tokens_per_layer.q.dtype == torch.int8


@pytest.mark.parametrize("variant", ["moe", "e", "dense"])
def test_int4_model_computes_bf16_with_the_weights_its_storage_gives_back(tokenizer, variant):
    """int4 on a CPU: every quantizable Linear becomes an Int4Linear (a quarter of bf16's bytes plus its scales) and
    the experts are packed; the quantized model computes the bf16 model with the weights that storage gives back.
    (How far 4 bits move the answer needs full-size weights: scripts/check_gemma_numerics.py on a GPU.)"""
    import copy

    import torch

    from docpipe.engines.gemma.kernels.quantized import Int4Linear, _dequant_linear, dequantize_3d

    model = build_model(tokenizer, variant)
    lm = model.model.language_model
    linear_bytes = sum(m.weight.numel() * 2 for n, m in lm.named_modules() if q.quantizable(n, m))
    ids = torch.randint(10, len(tokenizer), (2, 48))
    turned_back = copy.deepcopy(model)
    q.quantize_model(model, "int4")
    same = turned_back.model.language_model
    with torch.no_grad():
        for name, m in lm.named_modules():
            if isinstance(m, Int4Linear):
                same.get_submodule(name).weight.copy_(_dequant_linear(m.q, m.s, m.dtype))
            elif type(m).__name__ == "Gemma4TextExperts":
                for w in ("gate_up_proj", "down_proj"):
                    getattr(same.get_submodule(name), w).copy_(
                        dequantize_3d(getattr(m, f"{w}_q"), getattr(m, f"{w}_s"), "int4", torch.float32))
        got = model(input_ids=ids).logits[:, -1]
        want = turned_back(input_ids=ids).logits[:, -1]
    assert torch.isfinite(got).all() and _cosine(got, want) > 0.9999
    assert q.active_mode(model) == "int4"
    packed = [m for m in lm.modules() if isinstance(m, Int4Linear)]
    assert packed and not any(q.quantizable(n, m) for n, m in lm.named_modules())
    assert sum(m.q.numel() + 2 * m.s.numel() for m in packed) < 0.3 * linear_bytes
    assert all(type(m.weight) is torch.nn.Parameter for n, m in lm.named_modules() if "router.proj" in n)


@pytest.mark.parametrize("mode,bound", [("fp8", 0.07), ("int8", 0.01), ("int4", 0.15)])
def test_expert_weights_round_trip_within_the_modes_precision(mode, bound):
    import torch

    torch.manual_seed(0)
    w = torch.randn(4, 96, 192, dtype=torch.bfloat16)
    stored = quantize_3d(w, mode)
    back = dequantize_3d(stored["q"], stored["s"], mode, torch.bfloat16)
    rel = float((back.float() - w.float()).norm() / w.float().norm())
    assert rel < bound, rel
    if mode == "int4":  # two values a byte, scales per group of 64 (192 is not a multiple of 128)
        assert stored["q"].shape == (4, 96, 96) and stored["s"].shape == (4, 96, 3)


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantized_experts_forward_is_the_reference_loop_over_the_stored_weights(tokenizer, mode):
    """The grouped forward over quantized experts computes transformers' own per-expert loop with the weights the
    storage gives back (on a CPU int4 experts take the bf16 path; test_gemma_int4_kernel.py runs the kernel)."""
    import copy

    import torch

    model = build_model(tokenizer, "moe")
    experts = next(m for m in model.modules() if type(m).__name__ == "Gemma4TextExperts")
    for p in experts.parameters():
        torch.nn.init.normal_(p, std=0.5)
    reference = copy.deepcopy(experts)
    convert_experts(experts, mode)
    with torch.no_grad():
        for name in ("gate_up_proj", "down_proj"):
            stored = dequantize_3d(getattr(experts, f"{name}_q"), getattr(experts, f"{name}_s"), mode,
                                     torch.float32)
            getattr(reference, name).copy_(stored)
        torch.manual_seed(1)
        h = torch.randn(37, 64)
        idx = torch.stack([torch.randperm(experts.num_experts)[:2] for _ in range(37)])
        wts = torch.softmax(torch.randn(37, 2), -1)
        got = experts(h, idx, wts)
        want = type(reference).forward(reference, h, idx, wts)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ["fp8"])
def test_gpu_only_modes_refused_on_a_cpu_with_the_reason(monkeypatch, tmp_path, moe_folder, mode):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    choose_model.cache_clear()
    why = GemmaEngine.unavailable_reason(EngineOptions(model=str(moe_folder), extra={"quantize": mode}))
    assert why and f"--quantize {mode} needs a CUDA GPU" in why and "int8, int4" in why
    res = CliRunner().invoke(app, ["ingest", str(ROOT / "samples" / "receipt_en_harbor_bean.png"), "--engine",
                                   "gemma", "--model", str(moe_folder), "--quantize", mode,
                                   "--db", str(tmp_path / "x.duckdb"), "--quiet"])
    assert res.exit_code != 0 and "needs a CUDA GPU" in res.output
    assert not (tmp_path / "x.duckdb").exists() or not _extractions(tmp_path / "x.duckdb")
    choose_model.cache_clear()


def test_unknown_quantize_value_is_refused_before_loading():
    with pytest.raises(EngineUnavailable, match="quantize must be"):
        GemmaEngine(EngineOptions(extra={"quantize": "int3"}))


def _extractions(db: Path) -> list:
    with Store.open(db, read_only=True) as s:
        return s.query("SELECT status, data FROM extractions")[1]


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_ingest_with_quantized_weights_stores_schema_valid_rows(monkeypatch, tmp_path, moe_folder, mode):
    from docpipe.schemas import resolve

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DOCPIPE_GEMMA", json.dumps({"max_new_tokens": 48, "batch_size": 4}))
    choose_model.cache_clear()
    db = tmp_path / "q.duckdb"
    res = CliRunner().invoke(app, ["ingest", str(ROOT / "samples" / "receipt_en_harbor_bean.png"),
                                   str(ROOT / "samples" / "invoice_en_2page_globex.pdf"), "--engine", "gemma",
                                   "--model", str(moe_folder), "--quantize", mode, "--image-tokens", "70",
                                   "--db", str(db), "--quiet"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    got = _extractions(db)
    assert len(got) == 2 and all(status == "ok" for status, _ in got)
    for _, data in got:
        resolve("invoice").model.model_validate(json.loads(data))
    choose_model.cache_clear()


def test_auto_takes_bf16_with_room_for_rows_else_fp8_else_the_most_precise_mode_that_fits():
    p26, p31 = q.KNOWN["google/gemma-4-26B-A4B-it"], q.KNOWN["google/gemma-4-31B-it"]
    e4b = q.KNOWN["google/gemma-4-E4B-it"]
    assert q.auto_mode(p26, 141 * GiB, (9, 0)) == "none"  # an H200
    assert q.auto_mode(p31, 141 * GiB, (9, 0)) == "none"
    # an 80 GB H100: bf16 fits, but fp8 holds ~3x the rows and ran faster for the two big models
    assert q.auto_mode(p26, 80 * GiB, (9, 0)) == "fp8"
    assert q.auto_mode(p31, 80 * GiB, (9, 0)) == "fp8"
    assert q.auto_mode(e4b, 80 * GiB, (9, 0)) == "none"
    assert q.auto_mode(p26, 80 * GiB, (8, 0)) == "none"  # an A100: no fp8 matmuls, so bf16 while it fits
    assert q.auto_mode(p31, 48 * GiB, (8, 9)) == "fp8"  # an L40S
    assert q.auto_mode(p31, 48 * GiB, (8, 6)) == "int8"  # an A40: no fp8 matmuls
    assert q.auto_mode(p26, 24 * GiB, (8, 9)) == "int4"  # an RTX 4090
    assert q.auto_mode(e4b, 16 * GiB, (8, 6)) == "int8"  # a 16 GB Ampere card
    assert q.auto_mode(e4b, 12 * GiB, (8, 6)) == "int4"
    assert q.auto_mode(p26, None) == "none"  # no GPU
    table = {(m, mode): v for m, mode, v in q.fits_table(24 * GiB, (8, 9))}
    assert table["gemma-4-26B-A4B-it", "int4"] == "14.2 GiB: fits (auto)"
    assert table["gemma-4-E4B-it", "none"] == "14.8 GiB: fits"
    assert table["gemma-4-E4B-it", "fp8"] == "8.5 GiB: fits (auto)"  # bf16 would fill 62% of the card
    h100 = {(m, mode): v for m, mode, v in q.fits_table(80 * GiB, (9, 0))}
    assert h100["gemma-4-26B-A4B-it", "fp8"].endswith("fits (auto)")
    assert h100["gemma-4-26B-A4B-it", "none"].endswith("fits")
    assert "needs" in table["gemma-4-31B-it", "fp8"]
    cpu = {(m, mode): v for m, mode, v in q.fits_table(None, None)}
    assert cpu["gemma-4-E2B-it", "fp8"].endswith("needs a GPU")
    assert cpu["gemma-4-E2B-it", "int8"].endswith("on the CPU (no GPU here)")
    assert cpu["gemma-4-E2B-it", "int4"].endswith("on the CPU (no GPU here)")


def test_engines_command_lists_models_by_mode():
    res = CliRunner().invoke(app, ["engines"])
    assert res.exit_code == 0
    assert "gemma --quantize" in res.output and "gemma-4-26B-A4B-it" in res.output and "int4" in res.output


def test_a_checkpoint_quantized_already_loads_as_it_is(tmp_path, moe_folder, caplog):
    """A quantization_config in config.json (compressed-tensors, FP8, torchao releases): transformers' own quantizer
    loads it; --quantize neither counts its bytes again nor quantizes it twice."""
    from docpipe.engines.gemma.models import ModelChoice

    folder = tmp_path / "prequantized"
    folder.mkdir()
    cfg = json.loads((moe_folder / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "compressed-tensors", "format": "float-quantized"}
    (folder / "config.json").write_text(json.dumps(cfg))
    choice = ModelChoice(str(folder), folder, 12_345)
    assert q.prequantized(folder) == "compressed-tensors" and q.prequantized(moe_folder) is None
    assert q.load_bytes(choice, "int4") == 12_345
    with caplog.at_level("WARNING"):
        assert q.load_plan(choice, "int8", "cpu") == ("none", None)
    assert "quantized already (compressed-tensors)" in caplog.text


@pytest.mark.parametrize("variant", ["moe", "dense"])
def test_many_rows_multiply_by_the_weights_in_bf16_and_a_decode_step_by_the_quantized_ones(tokenizer, variant,
                                                                                        monkeypatch):
    """prefill_bf16: a forward over many rows (a prefill) multiplies each quantized Linear by its weight turned back
    into bf16 and the experts by theirs; one over a few rows (a decode step) keeps the quantized kernels. Both
    compute the same model: the logits agree with the quantized kernels' own, and with the setting off nothing
    changes path."""
    import torch

    from docpipe.engines.gemma.kernels import quantized

    model = build_model(tokenizer, variant)
    q.quantize_model(model, "int8")
    lm = model.model.language_model
    turned: list[tuple] = []
    real = quantized.dequantize_weight
    monkeypatch.setattr(quantized, "dequantize_weight", lambda w, dtype: turned.append(w.shape) or real(w, dtype))
    # int8 stands in for fp8 (no fp8 on a CPU): its Linears given fp8's rule
    monkeypatch.setattr(quantized, "BF16_FROM_ROWS", {"linear": 64, "experts": 64 * 2, "int8_linear": 64})
    set_ = quantized.bf16_for_many_rows(model, "int8", on=False)
    assert set_ == sum(1 for n, m in lm.named_modules() if q.quantizable(n, m)) + (2 if variant == "moe" else 0)
    ids = torch.randint(10, len(tokenizer), (2, 48))  # 96 rows: many
    with torch.no_grad():
        ref = model(input_ids=ids).logits[:, -1]
        assert not turned
        quantized.bf16_for_many_rows(model, "int8")
        got = model(input_ids=ids).logits[:, -1]
        assert len(turned) == set_ - (2 if variant == "moe" else 0)  # every Linear once
        assert _cosine(got, ref) > 0.999
        turned.clear()
        model(input_ids=ids[:1, :40])  # 40 rows: few
        assert not turned
    if variant == "moe":  # the experts took the grouped bf16 GEMM on their stored weights for the 96 rows
        experts = next(m for m in lm.modules() if type(m).__name__ == "Gemma4TextExperts")
        assert experts._docpipe_bf16_from == 128


def test_int8_linears_multiply_by_their_weight_in_bf16_at_every_size(tokenizer):
    """int8 decode steps too go through the weight turned back into bf16 (torchao's own int8 matmul was 10x slower
    than bf16 on a GPU), and compute what torchao's kernel computes."""
    import torch

    from docpipe.engines.gemma.kernels import quantized

    model = build_model(tokenizer, "dense")
    q.quantize_model(model, "int8")
    linear = next(m for n, m in model.model.language_model.named_modules() if q.quantizable(n, m))
    assert linear._docpipe_bf16_from == 1
    x = torch.randn(3, linear.in_features, dtype=linear.weight.dtype)  # three rows: a decode step
    w = quantized.dequantize_weight(linear.weight, x.dtype)
    assert w.dtype == x.dtype and w.shape == (linear.out_features, linear.in_features)
    with torch.no_grad():
        got = linear(x)
        quantized.bf16_for_many_rows(model, "int8", on=False)
        ref = linear(x)  # torchao's int8 kernel
    assert _cosine(got.float(), ref.float()) > 0.9999
