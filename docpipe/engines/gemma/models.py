"""Which Gemma 4 to load, from where, on what device, and why not: decided without downloading anything.

``--model`` takes a checkpoint id, a short name (31b, 26b-a4b, e4b, e2b) or a ``save_pretrained`` folder. Hub ids
are only ever read from the local Hugging Face cache (``try_to_load_from_cache``): the engine never downloads, so a
test or an ``--engine auto`` run cannot start a 50 GB transfer. The availability checks import torch only when
transformers is installed, and only inside functions.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: short name -> checkpoint id; the order is the preference of ``--engine auto`` (best quality per second first).
SHORT_NAMES: dict[str, str] = {
    "26b-a4b": "google/gemma-4-26B-A4B-it",
    "31b": "google/gemma-4-31B-it",
    "e4b": "google/gemma-4-E4B-it",
    "e2b": "google/gemma-4-E2B-it",
}
INSTALL_HINT = "pip install 'docpipe[gemma]' torch torchvision"
MIN_TRANSFORMERS = (5, 5)
#: GPU memory needed beyond the weights: the planner's 3 GiB reserve (kernels/memory.py) plus a row's prefill and
#: KV cache at 1120 image tokens (31B's, the largest: ~1.5 GiB); a 24 GB card then takes 31B in int4 (quantize.py)
GPU_HEADROOM_BYTES = 4 * 2**30
#: a CPU run holds the weights in RAM; keep it to models that leave half the RAM free.
CPU_RAM_FRACTION = 0.5


@dataclass(frozen=True)
class ModelChoice:
    """A resolved model: what the user asked for, the local folder that holds it, and its weight bytes."""

    name: str  # checkpoint id or the folder as given
    folder: Path
    weight_bytes: int


def canonical(name: str) -> str:
    """Short names and id variants ('E4B', 'gemma-4-e4b-it') -> the checkpoint id; folders and other ids as given."""
    key = name.strip().lower()
    if key in SHORT_NAMES:
        return SHORT_NAMES[key]
    for short, mid in SHORT_NAMES.items():
        if key in (mid.lower(), mid.lower().split("/", 1)[1], f"gemma-4-{short}", f"gemma-4-{short}-it"):
            return mid
    return name.strip()


def missing_packages() -> str | None:
    """None when torch, torchvision and transformers >= 5.5 are importable; else what to install."""
    missing = [m for m in ("torch", "torchvision", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{', '.join(missing)} not installed ({INSTALL_HINT})"
    from importlib.metadata import version

    v = version("transformers")
    parts = tuple(int(p) for p in v.split(".")[:2] if p.isdigit())
    if parts < MIN_TRANSFORMERS:
        return f"transformers {v} has no Gemma 4 (needs >= 5.5; {INSTALL_HINT})"
    return None


def _weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) or sum(
        p.stat().st_size for p in folder.glob("*.bin"))


def _folder_problem(folder: Path) -> str | None:
    if not (folder / "config.json").is_file():
        return f"{folder} has no config.json (save the model there with save_pretrained)"
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        return f"{folder} has no weight files (*.safetensors)"
    if not any((folder / f).is_file() for f in ("processor_config.json", "preprocessor_config.json")):
        return f"{folder} has no processor (save the processor there too: processor.save_pretrained)"
    return None


def _cached_folder(repo_id: str) -> Path | None:
    """The snapshot folder of a fully cached checkpoint (config, processor, every weight shard), else None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None

    def cached(fname: str) -> str | None:
        p = try_to_load_from_cache(repo_id, fname)
        return p if isinstance(p, str) else None

    cfg = cached("config.json")
    if cfg is None or not (cached("processor_config.json") or cached("preprocessor_config.json")):
        return None
    index = cached("model.safetensors.index.json")
    if index is not None:
        shards = set(json.loads(Path(index).read_text())["weight_map"].values())
        if not all(cached(s) for s in shards):
            return None
    elif cached("model.safetensors") is None:
        return None
    return Path(cfg).parent


def locate(name: str) -> ModelChoice | str:
    """The local folder for a model id, short name or folder; a one-line reason when it is not here."""
    mid = canonical(name)
    p = Path(mid).expanduser()
    if p.is_dir():
        problem = _folder_problem(p)
        return problem or ModelChoice(str(p), p.resolve(), _weight_bytes(p))
    if mid.count("/") != 1 or mid.startswith((".", "/", "~")):
        return f"{name!r} is neither a folder nor a model id (known: {', '.join(SHORT_NAMES)})"
    folder = _cached_folder(mid)
    if folder is None:
        hub = os.environ.get("HF_HOME") or "~/.cache/huggingface"
        return (f"weights for {mid} are not in the local Hugging Face cache ({hub}); docpipe never downloads "
                f"them itself: run `hf auth login` then `hf download {mid}` (the `hf` CLI of huggingface_hub)")
    return ModelChoice(mid, folder, _weight_bytes(folder))


def device_for(weight_bytes: int) -> tuple[str | None, str]:
    """('cuda' | 'cpu', why) where the weights fit, or (None, why not). The first look at CUDA in a run (``--engine
    auto`` asks before anything loads), so docpipe's allocator settings are set here, before CUDA starts."""
    from .kernels.memory import allocator_defaults

    allocator_defaults()
    import torch

    gib = weight_bytes / 2**30
    if torch.cuda.is_available():
        total = sum(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count()))
        if weight_bytes + GPU_HEADROOM_BYTES <= total:
            return "cuda", f"{gib:.1f} GiB of weights on {torch.cuda.device_count()} GPU(s)"
        cuda_short = f"{total / 2**30:.0f} GiB of GPU memory is too little for {gib:.1f} GiB of weights"
    else:
        cuda_short = "no CUDA GPU"
    ram = _ram_bytes()
    if ram and weight_bytes <= CPU_RAM_FRACTION * ram:
        return "cpu", f"{cuda_short}; {gib:.1f} GiB of weights fit in RAM (slow, fine for small models)"
    ram_gib = (ram or 0) / 2**30
    return None, f"{cuda_short}, and {gib:.1f} GiB of weights is too much for the CPU ({ram_gib:.0f} GiB RAM)"


def _ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


@lru_cache(maxsize=16)
def choose_model(name: str | None, quantize: str = "none") -> tuple[ModelChoice | None, str, str]:
    """(choice, device, why) for ``--model`` (None: the first known checkpoint that is cached and fits), its weights
    counted as ``quantize`` stores them (quantize.py; auto: the smallest mode, where a GPU is here)."""
    problem = missing_packages()
    if problem:
        return None, "", problem
    names = [name] if name else list(SHORT_NAMES.values())
    reasons = []
    for n in names:
        found = locate(n)
        if isinstance(found, str):
            reasons.append(found)
            continue
        from .quantize import gpu_problem, load_bytes

        device, why = device_for(load_bytes(found, quantize))
        if device is not None and gpu_problem(quantize, device):
            reasons.append(f"{found.name}: {gpu_problem(quantize, device)}")
            continue
        if device is None:
            reasons.append(f"{found.name}: {why}")
            continue
        return found, device, why
    if name is None:
        return None, "", ("no Gemma 4 checkpoint is in the local Hugging Face cache; pass --model DIR or run "
                          "`hf download google/gemma-4-E4B-it`")
    return None, "", reasons[0]
