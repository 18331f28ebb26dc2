"""What ``import docpipe`` offers: a sorted ``__all__`` whose every name resolves, documented, imported lazily."""

from __future__ import annotations

import subprocess
import sys

import docpipe


def test_all_is_sorted_and_every_name_exists() -> None:
    assert docpipe.__all__ == sorted(docpipe.__all__)
    for name in docpipe.__all__:
        assert getattr(docpipe, name) is not None, name


def test_the_api_names() -> None:
    assert {"ingest", "connect", "Store", "Settings", "IngestReport", "schemas", "Status", "DocpipeError"} \
        <= set(docpipe.__all__)
    assert docpipe.Store.__module__ == "docpipe.store" and docpipe.schemas.__name__ == "docpipe.schemas"


def test_public_callables_have_a_docstring_with_usage() -> None:
    for name in ("ingest", "connect", "Settings"):
        assert "Usage::" in (getattr(docpipe, name).__doc__ or ""), name
    assert "Usage::" in (docpipe.__doc__ or "")


def test_import_is_light_and_pydoc_shows_the_api() -> None:
    """``import docpipe`` loads no DuckDB, PyMuPDF, pyarrow or torch; ``pydoc docpipe`` lists ingest and connect."""
    code = "import sys, docpipe; print(sorted(m for m in ('duckdb', 'pymupdf', 'pyarrow', 'torch', 'transformers', " \
           "'pydantic_settings') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    doc = subprocess.run([sys.executable, "-m", "pydoc", "docpipe"], capture_output=True, text=True, check=True,
                         env={"PAGER": "cat", "PATH": "/usr/bin:/bin", **_pythonpath()}).stdout
    for name in ("ingest(paths", "connect(db", "class Settings", "class Store", "class IngestReport"):
        assert name in doc, name


def _pythonpath() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "VIRTUAL_ENV", "HOME")}
