"""docpipe: documents in, validated typed fields in DuckDB, SQL out.

Data flows one way: discover -> rasterize -> engines -> validate -> store, driven by pipeline.ingest.
"""

from .errors import (DocpipeError, EncryptedError, EngineError, EngineUnavailable, InputError, SchemaError,
                     StoreError)
from .models import DocResult, EngineOutput, PageInfo, SourceFile, Status

__version__ = "0.1.0"

__all__ = sorted([
    "DocResult", "DocpipeError", "EncryptedError", "EngineError", "EngineOutput", "EngineUnavailable",
    "InputError", "PageInfo", "SchemaError", "SourceFile", "Status", "StoreError", "__version__",
])
