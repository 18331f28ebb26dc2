"""docpipe: documents in, validated typed fields in DuckDB, SQL out.

Usage::

    >>> import docpipe
    >>> report = docpipe.ingest("invoices/", schema="invoice", engine="offline", db="books.duckdb")
    >>> report.counts, report.failures
    (Counter({'ok': 41, 'invalid': 1}), [Failure(path='invoices/x.pdf', status='invalid', reason='total: ...')])
    >>> with docpipe.connect("books.duckdb") as store:
    ...     store.records("SELECT vendor_name, sum(total) AS spent FROM invoice GROUP BY ALL")
    ...     store.arrow("SELECT * FROM invoice_line_items")      # a pyarrow.Table
    ...     store.problems()                                      # what is not ok, and why
    >>> docpipe.schemas.resolve("invoice").columns                # the schema registry

Data flows one way: discover -> rasterize -> engines -> validate -> store, driven by ``pipeline.ingest``.
Names are imported on first use, so ``import docpipe`` stays fast (no DuckDB, PyMuPDF or torch until needed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigError,
    DocpipeError,
    EncryptedError,
    EngineError,
    EngineUnavailable,
    InputError,
    SchemaError,
    StoreError,
)
from .models import DocResult, EngineOutput, PageInfo, SourceFile, Status

if TYPE_CHECKING:
    from . import schemas
    from .api import connect, ingest
    from .config import Settings
    from .pipeline import Failure, IngestOptions, IngestReport
    from .store import Store

__version__ = "0.1.0"

#: public name -> module that defines it, imported on first use
_LAZY = {"connect": "api", "ingest": "api", "Settings": "config", "Failure": "pipeline", "IngestOptions": "pipeline",
         "IngestReport": "pipeline", "Store": "store", "schemas": None}

__all__ = [
    "ConfigError",
    "DocResult",
    "DocpipeError",
    "EncryptedError",
    "EngineError",
    "EngineOutput",
    "EngineUnavailable",
    "Failure",
    "IngestOptions",
    "IngestReport",
    "InputError",
    "PageInfo",
    "SchemaError",
    "Settings",
    "SourceFile",
    "Status",
    "Store",
    "StoreError",
    "__version__",
    "connect",
    "ingest",
    "schemas",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'docpipe' has no attribute {name!r}")
    module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
