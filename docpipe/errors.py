"""docpipe's exceptions, one tree, so callers can catch what they can act on.

    DocpipeError
     + InputError          the file itself is the problem (unsupported, corrupt, empty)
     |   + EncryptedError  needs a password (--password)
     |   + TooLargeError   beyond the pixel/page caps
     + EngineError         an engine could not run or gave no usable output
     |   + EngineUnavailable  missing package, weights or device
     + SchemaError         a schema could not be found or loaded
     + ConfigError         a setting is wrong: a flag, a DOCPIPE_* variable, docpipe.toml
     + StoreError          the DuckDB file could not be opened or written

Foreign exceptions (pymupdf, PIL, duckdb, httpx) are translated where they enter and chained with ``from``.
Messages are one line and say what to do where there is something to do.
"""

from __future__ import annotations


class DocpipeError(Exception):
    """Base of every error docpipe raises on purpose."""


class InputError(DocpipeError):
    """A source file cannot be read as a document."""

    status = "failed"


class EncryptedError(InputError):
    status = "encrypted"


class EmptyDocumentError(InputError):
    status = "empty"


class TooLargeError(InputError):
    status = "too_large"


class EngineError(DocpipeError):
    """An engine failed on a document (the document is recorded as failed and retried next run)."""


class EngineUnavailable(EngineError):
    """An engine cannot run here: a missing extra, missing weights, no device."""


class SchemaError(DocpipeError):
    """A schema name or file could not be resolved into a pydantic model."""


class ConfigError(DocpipeError):
    """A setting has a bad value or name; the message names the setting and where it came from."""


class StoreError(DocpipeError):
    """The DuckDB store could not be opened or written."""
