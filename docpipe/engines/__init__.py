"""Engines read a document's pages and fill a schema.

Layout: ``base`` (the Engine interface, options, registry, auto choice), ``offline/`` (text layer, OCR,
e-invoice XML and rules on a CPU), ``vlm/`` (what the vision-language engines share), ``gemma/`` (Gemma 4
in-process, with its GPU ``kernels/``), ``openai/`` (any OpenAI-compatible server).
"""

from .base import (
                   BUILTIN_ENGINES,
                   DocJob,
                   Engine,
                   EngineOptions,
                   choose,
                   create,
                   engine_class,
                   mark_unreadable,
                   registry,
                   unreadable,
)

__all__ = ["BUILTIN_ENGINES", "DocJob", "Engine", "EngineOptions", "choose", "create", "engine_class",
           "mark_unreadable", "registry", "unreadable"]
