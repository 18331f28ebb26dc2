"""How long the compiled decode step (``decode_compile``) takes to compile, per batch shape, and how many graphs.

Compile time depends on the number and kind of operations in the step, not on their sizes, so the model here has
the real layer layout of a checkpoint (layer count, sliding/full pattern, KV sharing, MoE, k=v attention) with tiny
widths and random weights. It runs on any machine (inductor makes C++ kernels on a CPU, Triton ones on a GPU), so
the compile cost can be measured without borrowing a GPU. Each row is one ``Decoder.generate`` of a new batch shape
(rows x prompt length), 4 new tokens, in one process, as the engine's batches come.

Usage:  python scripts/bench_compile.py [--model e4b] [--shapes 4x90 8x150 8x150 3x200] [--no-fuse] [--dynamic]
                                      [--scope model|layers]
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))


def tiny_like(key: str):
    """(model, tokenizer, device): the tests' tiny Gemma 4 with the layer layout of checkpoint ``key``."""
    import torch
    from bench_gemma import ARCH
    from gemma_tiny import build_model, build_tokenizer

    tok = build_tokenizer()
    real = ARCH[key][0]
    variant = "moe" if real.get("enable_moe_block") else "e" if real["hidden_size_per_layer_input"] else "dense"
    model = build_model(tok, variant, num_hidden_layers=real["num_hidden_layers"], layer_types=real["layer_types"],
                        num_kv_shared_layers=real["num_kv_shared_layers"],
                        use_double_wide_mlp=real.get("use_double_wide_mlp", False))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device), tok, device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="e4b", help="layer layout of: e2b, e4b, 26b-a4b, 31b")
    ap.add_argument("--shapes", nargs="+", default=["4x90", "8x150", "8x150", "3x200"],
                    help="batch shapes in order, ROWSxPROMPT")
    ap.add_argument("--no-fuse", action="store_true", help="without text_compile's fused modules")
    ap.add_argument("--backend", default="inductor")
    ap.add_argument("--warm-cache", action="store_true",
                    help="keep inductor's on-disk cache (default: a fresh one, so every compile is a cold one)")
    ap.add_argument("--dynamic", action="store_true",
                    help="compile with dynamic shapes from the start (the decoder specializes on its first shape)")
    ap.add_argument("--scope", choices=["model", "layers"], default="model",
                    help="model: the whole step as one graph; layers: each decoder layer's forward (compile_layers)")
    a = ap.parse_args()
    if not a.warm_cache:  # before torch is imported: inductor reads it once
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache = tempfile.mkdtemp(prefix="docpipe-inductor-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
    import torch
    import torch._dynamo.utils as dynamo_utils

    from docpipe.engines import gemma_fusion, gemma_moe
    from docpipe.engines.gemma.kernels.generate import Decoder

    model, tok, device = tiny_like(a.model)
    if device == "cuda" and model.config.get_text_config().enable_moe_block:
        gemma_moe.install(model)
    if not a.no_fuse:
        gemma_fusion.install(model, backend=a.backend)
    if a.dynamic:  # the decoder reuses a model's compiled step
        model._docpipe_step_forward = torch.compile(model.forward, fullgraph=False, backend=a.backend, dynamic=True)
    where = torch.cuda.get_device_name() if device == "cuda" else f"{platform.machine()}, {os.cpu_count()} CPUs"
    print(f"machine: {where}; torch {torch.__version__}; layout of {a.model}, "
          f"{model.config.get_text_config().num_hidden_layers} layers; fused modules {'off' if a.no_fuse else 'on'}; "
          f"scope {a.scope}; shapes {'dynamic from the start' if a.dynamic else 'static first'}; "
          f"inductor cache {'as it is' if a.warm_cache else 'fresh (cold compiles)'}")
    print("| batch shape (rows x prompt) | seconds | graphs compiled so far |")
    print("|---|---|---|")
    for shape in a.shapes:
        rows, prompt = (int(v) for v in shape.split("x"))
        x = torch.randint(10, 1000, (rows, prompt), device=device)
        mask = torch.ones_like(x)
        mask[0, : prompt // 4] = 0  # one left-padded row, as in a real batch
        t = time.perf_counter()
        with torch.no_grad():
            Decoder(model, graphs=False, compile=a.backend, compile_scope=a.scope).generate(
                {"input_ids": x, "attention_mask": mask}, 4, None, tok.pad_token_id)
        if device == "cuda":
            torch.cuda.synchronize()
        graphs = dynamo_utils.counters["stats"].get("unique_graphs", 0)
        print(f"| {rows} x {prompt} | {time.perf_counter() - t:.1f} | {graphs} |", flush=True)


if __name__ == "__main__":
    main()
