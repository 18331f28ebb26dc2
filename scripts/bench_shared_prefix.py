#!/usr/bin/env python3
"""What the shared prompt prefix (setting ``shared_prefix``) saves in a Gemma 4 text prefill, and that it computes the
same first token.

Rows are the engine's own extraction prompts (``messages.extraction(shared_first=True)``, the invoice schema, the
benchmarks' in-code tokenizer), one page of ``--page-tokens`` image tokens each (every other row a shorter page, so
rows are left-padded as in a real batch). The image tokens carry no pixels: the vision tower is not timed, and its
time does not change with the prefix. Per setting, docpipe's decoder prefills the rows (1 new token) with the common
prefix computed once and without; ms a row is the median of ``--reps`` timed prefills (the prefix's own forward,
once per run in the engine, is timed apart). On CUDA the model is the checkpoint's real architecture in bf16 with
random weights (bench_gemma.py's build); on a CPU a model cut to ``--layers`` layers in float32.

    python scripts/bench_shared_prefix.py --model 26b-a4b --rows 16
    python scripts/bench_shared_prefix.py --model e2b --device cpu --layers 2 --rows 2 --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))


def build_cpu(key: str, layers: int):
    """The checkpoint's architecture cut to ``layers`` layers (the last one full attention), float32, on the CPU."""
    import torch
    from bench_gemma import config
    from gemma_tiny import build_processor, build_tokenizer
    from transformers import Gemma4ForConditionalGeneration

    tok = build_tokenizer()
    cfg = config(key, tok)
    text = cfg.text_config
    text.num_hidden_layers = layers
    text.layer_types = ["sliding_attention"] * (layers - 1) + ["full_attention"]
    text.num_kv_shared_layers = 0
    cfg.audio_config = None  # the E models' audio tower: not used, and it has no SDPA attention
    torch.manual_seed(0)
    model = Gemma4ForConditionalGeneration._from_config(cfg, dtype=torch.float32, attn_implementation="sdpa").eval()
    return model, build_processor(tok)


def batch(proc, rows: int, page_tokens: int, device):
    """(inputs, prefix length): left-padded extraction prompts, every other row's page 5% shorter."""
    import torch

    from docpipe.engines.gemma.inputs import PagePixels, PromptBuilder
    from docpipe.engines.gemma.kernels.prefix import common_prefix
    from docpipe.engines.vlm.messages import extraction_of
    from docpipe.schemas import resolve

    pb = PromptBuilder(proc)
    ids = []
    for r in range(rows):
        page = PagePixels(None, None, page_tokens if r % 2 == 0 else page_tokens * 19 // 20, 0)
        prompt = extraction_of(resolve("invoice"), [page], [""], 1, 1, shared_first=True)
        ids.append(pb.encode(prompt.messages, prompt.texts, [page]))
    n = common_prefix(ids, {pb.boi_id, pb.image_id})
    width = max(map(len, ids))
    pad = proc.tokenizer.pad_token_id
    x = torch.full((rows, width), pad, dtype=torch.long)
    mask = torch.zeros_like(x)
    for r, row in enumerate(ids):
        x[r, width - len(row):] = torch.tensor(row)
        mask[r, width - len(row):] = 1
    inputs = {"input_ids": x.to(device), "attention_mask": mask.to(device),
              "mm_token_type_ids": (x == pb.image_id).long().to(device)}
    return inputs, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="26b-a4b")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--layers", type=int, default=2, help="CPU: layers the model is cut to")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--page-tokens", type=int, default=1092, help="image tokens of a page (an A4 page at 1120)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=0, help="the decoder's prefill_rows (0: all rows in one forward)")
    a = ap.parse_args()

    import torch
    from bench_gemma import _checkout_schemas

    from docpipe.engines.gemma.kernels.generate import Decoder

    _checkout_schemas()
    torch.set_grad_enabled(False)
    cuda = a.device == "cuda"
    if cuda:
        from bench_gemma import build, measure_card

        card = measure_card()["card"]
        model, proc = build(a.model, "grouped_mm")
        from docpipe.engines.gemma.kernels import fusion, moe

        moe.install(model)
        fusion.install(model)  # as the engine runs it (text_compile, moe_grouped)
        layers = model.config.get_text_config().num_hidden_layers
    else:
        import platform

        card = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        model, proc = build_cpu(a.model, a.layers)
        layers = a.layers
    inputs, n = batch(proc, a.rows, a.page_tokens, a.device)
    pad = proc.tokenizer.pad_token_id
    width = inputs["input_ids"].shape[1]
    attention = "flex" if cuda else "sdpa"
    dec = Decoder(model, graphs=False, prefill_rows=a.chunk, prefill_attention=attention, shared_prefix=True)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def once(prefix: int, fresh: bool = False):
        if fresh:
            dec.shared.ids = ()  # the prefix's own forward in this call
        sync()
        t = time.perf_counter()
        out = dec.generate(inputs, 1, None, pad, prefix=prefix)
        sync()
        return time.perf_counter() - t, out

    first = {}
    for prefix in (0, n):  # warm-up (compiling), and the first tokens to compare
        once(prefix)
        first[prefix] = once(prefix)[1]
    times = {prefix: [once(prefix)[0] for _ in range(a.reps)] for prefix in (n, 0)}
    with_prefix_forward = statistics.median(once(n, fresh=True)[0] for _ in range(max(1, a.reps // 2)))
    same = int((first[0] == first[n]).sum())
    off, on = (statistics.median(times[p]) * 1e3 / a.rows for p in (0, n))
    print(f"{card}; torch {torch.__version__}; {a.model}, {layers} layers; {a.rows} rows of up to {width} tokens "
          f"(shared prefix {n} tokens)")
    print("| model | layers | card | rows x tokens | shared prefix tokens | prefill ms a row, off | on | saved | "
          "on, with the prefix's own forward | first token the same |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {a.model} | {layers} | {card} | {a.rows} x {width} | {n} | {off:.1f} | {on:.1f} | "
          f"{100 * (1 - on / off):.0f}% | {with_prefix_forward * 1e3 / a.rows:.1f} | {same} of {a.rows} |")


if __name__ == "__main__":
    main()
