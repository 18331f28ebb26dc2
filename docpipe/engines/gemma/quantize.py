"""Gemma 4 weights in fp8, int8 or int4, quantized at load time: what each mode needs, which fits a card, and the
quantizing itself.

Why: bf16 weights of 26B-A4B (48 GiB) and 31B (58 GiB) fit no 24 GB card, and on a big card every decode step reads
all of them. What goes where:
- the text decoder's ``nn.Linear`` layers: torchao for fp8 (per-row fp8 activations x per-row fp8 weights through
  ``torch._scaled_mm``) and int8 (weight-only, per-row scales); int4 (weight-only, a bf16 scale per group of 128
  inputs, 64 or 32 where a width needs it) as ``kernels/quantized.Int4Linear``: torchao's int4 layouts either need
  kernel packages PyPI's torch lacks or (tinygemm) cannot be turned back into bf16 for a prefill;
- the MoE experts of 26B-A4B (3D tensors, not ``nn.Linear``, so torchao leaves them alone; they are 88% of its
  bytes): ``kernels/quantized.py``, with the same scales; fp8 through ``torch._scaled_grouped_mm``, int8 stored
  as it is and int4 packed, both turned back into bf16 a layer at a time for a prefill's grouped GEMM; a decode
  step multiplies int4 experts straight from the packed bytes (``kernels/int4_mm.py``, Triton);
- prefills (many rows) of fp8, int8 and int4 layers: the weight turned back into bf16 a layer at a time
  (``kernels/quantized.bf16_for_many_rows``, ``Int4Linear``), the quantized kernels for decode steps;
- the per-layer embeddings of the E models (2.3-2.8 B parameters of lookups): int8 rows (``kernels/quantized.py``);
- bf16 in every mode: the vision and audio towers, the router, norms, and the embedding that is also the lm_head.
Checkpoints that are already quantized (a ``quantization_config`` in config.json: compressed-tensors, FP8, torchao)
are loaded by transformers' own quantizers and left as they are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ...errors import EngineUnavailable
from .models import GPU_HEADROOM_BYTES

log = logging.getLogger(__name__)

MODES = ("none", "fp8", "int8", "int4")
#: ``quantize`` setting values; auto: the fastest mode measured for the card's size (``auto_mode``)
CHOICES = (*MODES, "auto")
#: bytes a quantized weight takes with its scales (int4: a bf16 scale per group of 128)
WEIGHT_BYTES = {"none": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5 + 2 / 128}
#: int4 group sizes tried in order: the first that divides a layer's input width (26B-A4B's 2,112 and 704 take 64)
INT4_GROUPS = (128, 64, 32)
INSTALL_HINT = "pip install 'docpipe[quantize]' (torchao)"


@dataclass(frozen=True)
class Params:
    """A model's parameters by how each mode stores them."""

    linear: int  # text-decoder nn.Linear weights (quantized by torchao)
    experts: int  # MoE expert weights (quantized here)
    ple: int  # per-layer embeddings of the E models (int8 rows when quantized)
    rest: int  # bf16 in every mode

    def bytes(self, mode: str) -> float:
        """GPU bytes of the weights in ``mode`` (none, fp8, int8, int4)."""
        if mode == "none":
            return 2.0 * (self.linear + self.experts + self.ple + self.rest)
        return WEIGHT_BYTES[mode] * (self.linear + self.experts) + 1.0 * self.ple + 2.0 * self.rest


#: the four checkpoints' parameters (counted from their configs on the meta device, ``params_of``; a test checks)
KNOWN: dict[str, Params] = {
    "google/gemma-4-26B-A4B-it": Params(1_645_445_120, 22_837_985_280, 0, 1_322_503_472),
    "google/gemma-4-31B-it": Params(29_286_727_680, 0, 0, 1_986_358_832),
    "google/gemma-4-E4B-it": Params(3_972_792_320, 0, 2_818_572_288, 1_149_736_224),
    "google/gemma-4-E2B-it": Params(1_876_819_968, 0, 2_348_810_240, 878_667_296),
}


def quantizable(name: str, module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) and "router" not in name and \
        module.in_features % 32 == 0 and module.out_features % 16 == 0


def _language_model(model: Any) -> Any:
    inner = getattr(model, "model", model)
    return getattr(inner, "language_model", inner)


def params_of(model: Any) -> Params:
    """Count a built model's parameters (the meta device will do) by how the modes store them."""
    lm = _language_model(model)
    linear = sum(m.weight.numel() for n, m in lm.named_modules() if quantizable(n, m))
    experts = sum(p.numel() for n, p in lm.named_parameters() if ".experts." in n)
    ple = sum(p.numel() for n, p in lm.named_parameters() if "embed_tokens_per_layer" in n)
    total = sum(p.numel() for p in model.parameters())
    return Params(linear, experts, ple, total - linear - experts - ple)


@lru_cache(maxsize=8)
def params_of_folder(folder: str) -> Params | None:
    """Params of a checkpoint folder from its config.json (a model on the meta device; nothing is read but the
    config); None when transformers cannot build it."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText

        cfg = AutoConfig.from_pretrained(folder, local_files_only=True)
        with torch.device("meta"):
            return params_of(AutoModelForImageTextToText.from_config(cfg))
    except Exception as e:  # an unknown architecture: the caller falls back to the bytes on disk
        log.debug("could not count the parameters of %s: %s", folder, e)
        return None


def prequantized(folder: Any) -> str | None:
    """The quantization method named by a checkpoint's config.json (compressed-tensors, fp8, torchao...), or None."""
    import json
    from pathlib import Path

    try:
        cfg = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    q = cfg.get("quantization_config") or cfg.get("text_config", {}).get("quantization_config")
    return str(q.get("quant_method", "unknown")) if isinstance(q, dict) else None


def gpu_problem(mode: str, device: str, capability: tuple[int, int] | None = None) -> str | None:
    """Why ``mode`` cannot run on ``device`` (None when it can): fp8 needs a CUDA GPU of compute capability 8.9+
    (Ada, Hopper, Blackwell); none, int8 and int4 run on a CPU too (int4 there through bf16 weights a layer at a
    time: a memory saving, not a speed-up)."""
    if mode != "fp8":  # none, int8, int4 and auto (which picks what runs here) run anywhere
        return None
    if device != "cuda":
        return (f"--quantize fp8 needs a CUDA GPU (fp8 matmuls: compute capability 8.9 or newer); this run is on "
                f"the {device or 'CPU'}: use --quantize int8, int4 or none")
    if capability is None:
        import torch

        capability = torch.cuda.get_device_capability()
    if tuple(capability) < (8, 9):
        return (f"--quantize fp8 needs a GPU of compute capability 8.9 or newer (this one is "
                f"{capability[0]}.{capability[1]}): use --quantize int8 or int4")
    return None


def check(mode: str, device: str) -> None:
    """Refuse a mode that cannot run here, before any weights load: one line saying why."""
    if mode not in CHOICES:
        raise EngineUnavailable(f"quantize must be one of {', '.join(CHOICES)}, not {mode!r}")
    problem = gpu_problem(mode, device)
    if problem:
        raise EngineUnavailable(problem)
    if mode in ("fp8", "int8"):  # int4 is docpipe's own storage (Int4Linear)
        import importlib.util

        if importlib.util.find_spec("torchao") is None:
            raise EngineUnavailable(f"--quantize {mode} needs torchao, which is not installed ({INSTALL_HINT})")


#: GPU memory a model needs beside its weights (a prefill's activations and a row of KV cache)
HEADROOM = GPU_HEADROOM_BYTES


#: auto: bf16 weights over this share of the card leave too few rows for the KV cache; fp8 then runs faster
#: (halved weights, about 3x the rows: 26B-A4B and 31B on an 80 GB H100; on an H200 both stay under it)
BF16_CARD_SHARE = 0.5


def auto_mode(params: Params, gpu_bytes: float | None, capability: tuple[int, int] | None = None,
              headroom: float = HEADROOM) -> str:
    """The mode ``--quantize auto`` runs on a card of ``gpu_bytes`` (None: no GPU, so "none"): bf16 where its
    weights take at most ``BF16_CARD_SHARE`` of the card, else fp8 where the card multiplies fp8 and it fits, else
    the most precise mode whose weights leave ``headroom`` free; int4 when nothing fits (the caller then says so)."""
    if gpu_bytes is None:
        return "none"
    fp8_ok = capability is None or tuple(capability) >= (8, 9)
    if fp8_ok and params.bytes("none") > BF16_CARD_SHARE * gpu_bytes and params.bytes("fp8") + headroom <= gpu_bytes:
        return "fp8"
    for mode in ("none", "fp8", "int8", "int4"):
        if mode == "fp8" and not fp8_ok:
            continue
        if params.bytes(mode) + headroom <= gpu_bytes:
            return mode
    return "int4"


def card() -> tuple[float | None, tuple[int, int] | None]:
    """(bytes, compute capability) of this machine's first CUDA GPU; (None, None) without one or without torch."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None, None
    from .kernels.memory import allocator_defaults

    allocator_defaults()
    import torch

    if not torch.cuda.is_available():
        return None, None
    return float(torch.cuda.get_device_properties(0).total_memory), tuple(torch.cuda.get_device_capability(0))


def fits_table(gpu_bytes: float | None, capability: tuple[int, int] | None) -> list[tuple[str, str, str]]:
    """(model, mode, "GiB: fits" or why not) for the four checkpoints, for ``docpipe engines``; the mode
    ``--quantize auto`` takes here is marked "auto"."""
    rows = []
    for mid, p in KNOWN.items():
        chosen = auto_mode(p, gpu_bytes, capability)
        for mode in MODES:
            gib = p.bytes(mode) / 2**30
            need = p.bytes(mode) + HEADROOM
            if gpu_bytes is None:
                verdict = "needs a GPU" if gpu_problem(mode, "cpu") else "on the CPU (no GPU here)"
            elif gpu_problem(mode, "cuda", capability):
                verdict = "not on this GPU"
            else:
                verdict = "fits" if need <= gpu_bytes else f"needs {need / 2**30:.0f} GiB"
            if mode == chosen and not verdict.startswith("needs"):
                verdict += " (auto)"
            rows.append((mid.split("/", 1)[1], mode, f"{gib:.1f} GiB: {verdict}"))
    return rows


def params_for(choice: Any) -> Params | None:
    """Params of a located checkpoint (``models.ModelChoice``): the known table, else counted from its config."""
    return KNOWN.get(choice.name) or params_of_folder(str(choice.folder))


def load_bytes(choice: Any, mode: str) -> int:
    """Bytes a checkpoint's weights take on the device in ``mode``: as on disk for none and for checkpoints that are
    quantized already; auto counts the smallest mode where a CUDA GPU is here (``load_plan`` then picks)."""
    if mode == "auto":
        from .kernels.memory import allocator_defaults

        allocator_defaults()  # before torch first looks at CUDA
        import torch

        mode = "int4" if torch.cuda.is_available() else "none"
    p = None if mode == "none" or prequantized(choice.folder) else params_for(choice)
    if p is None:
        return choice.weight_bytes
    # the files' bytes in the mode's proportion (the files may hold float32 or bf16)
    return int(choice.weight_bytes * p.bytes(mode) / p.bytes("none"))


def load_plan(choice: Any, setting: str, device: str) -> tuple[str, str | None]:
    """(mode, device_map for from_pretrained) for a checkpoint: auto resolved for this card, the mode checked
    (torchao installed, GPU-only modes on a GPU); a checkpoint that is quantized already loads as it is ("none").
    A quantized load goes to the GPU whole only when its bf16 weights fit there; else into RAM, then a layer at a
    time through ``quantize_model``."""
    method = prequantized(choice.folder)
    if method:
        if setting not in ("none", "auto"):
            log.warning("%s is quantized already (%s): --quantize %s is ignored", choice.name, method, setting)
        return "none", "auto" if device == "cuda" else None
    mode = setting
    if mode == "auto":
        mode = "none"
        p = params_for(choice)
        if device == "cuda" and p is not None:
            import torch

            total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
            mode = auto_mode(p, total, torch.cuda.get_device_capability())
    check(mode, device)
    if device != "cuda":
        return mode, None
    if mode == "none":
        return mode, "auto"
    import torch

    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    return mode, "cuda" if choice.weight_bytes + HEADROOM <= total else None


# -- quantizing a loaded model ----------------------------------------------------------------------------------
def quantize_model(model: Any, mode: str, device: str | None = None) -> Params:
    """Quantize ``model``'s text decoder in place to ``mode`` (fp8, int8, int4), each module moved to ``device``
    first when given (a model loaded into RAM goes to the GPU a layer at a time, never whole in bf16). Returns the
    counts of what was quantized (``Params`` of the model before)."""
    check(mode, device or next(model.parameters()).device.type)
    before = params_of(model)
    if mode == "none":
        return before
    import torch

    from .kernels.quantized import Int4Linear, Int8Embedding, bf16_for_many_rows, convert_experts

    lm = _language_model(model)
    for cfg, keep in _torchao_configs(mode):
        from torchao.quantization import quantize_

        quantize_(lm, cfg, filter_fn=lambda m, fqn, keep=keep: quantizable(fqn, m) and keep(m) and
                  not _done(m), device=device)
    for name, module in list(lm.named_modules()):
        if mode == "int4" and quantizable(name, module) and not _done(module):
            _replace(lm, name, Int4Linear.of(module, device))
        elif type(module).__name__ == "Gemma4TextExperts" and hasattr(module, "gate_up_proj"):
            if device is not None:
                module.to(device)
            convert_experts(module, mode)
        elif name.endswith("embed_tokens_per_layer") and isinstance(module, torch.nn.Embedding):
            _replace(lm, name, Int8Embedding.of(module, device))
    if device is not None:
        model.to(device)
    bf16_for_many_rows(lm, mode)
    model._docpipe_quantize = mode
    return before


def _replace(root: Any, name: str, module: Any) -> None:
    """Put ``module`` where ``root``'s submodule ``name`` (dotted) is."""
    parent = root.get_submodule(name.rsplit(".", 1)[0]) if "." in name else root
    setattr(parent, name.rsplit(".", 1)[-1], module)


def _done(m: Any) -> bool:
    """Already quantized (a torchao weight; Int4Linear has none)."""
    import torch

    return type(m.weight) is not torch.nn.Parameter and type(m.weight) is not torch.Tensor


def _torchao_configs(mode: str) -> list[tuple[Any, Any]]:
    """(torchao config, which Linear layers it takes) in order."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, Int8WeightOnlyConfig, PerRow

    if mode == "fp8":
        # activation_value_lb: a row of zeros (a padding token's embedding) would get scale 0, then 0/0 = NaN,
        # and NaN keys or values reach every row through attention (seen on an H200: all logits NaN)
        return [(Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), activation_value_lb=1e-12,
                                                           set_inductor_config=False), lambda m: True)]
    if mode == "int8":
        return [(Int8WeightOnlyConfig(set_inductor_config=False), lambda m: True)]
    return []  # int4: Int4Linear (see the module's docstring)


def active_mode(model: Any) -> str:
    """The mode a model was quantized to here ("none" otherwise)."""
    return str(getattr(model, "_docpipe_quantize", "none"))
