"""Where docpipe's Triton kernels run: on the GPU that holds their tensors.

Why: Triton launches a kernel on the current CUDA device, not on its arguments' device. A model split over GPUs
(``device_map``) runs layers on cuda:1 while cuda:0 stays current, and a kernel launched there would read another
card's addresses.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any


def on_device_of(t: Any) -> Any:
    """A context in which ``t``'s CUDA device is the current one (nothing to do for CPU tensors: the interpreter)."""
    if getattr(t, "is_cuda", False):
        import torch

        return torch.cuda.device(t.device)
    return contextlib.nullcontext()


@functools.cache
def multiprocessors(device: Any) -> int:
    """Multiprocessors of ``device``, which a kernel's grid is sized by; 1 for a CPU (Triton's interpreter)."""
    import torch

    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1
