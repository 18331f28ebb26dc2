"""The Python API: ``ingest`` documents into a DuckDB file, ``connect`` to read the results back.

The ``docpipe`` command is a thin layer over these two functions, so a script gets exactly what the CLI does:
the same skipping of finished documents, the same statuses, the same tables and views.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Settings
    from .pipeline import IngestOptions, IngestReport, Progress
    from .store import Store

PathLike = str | os.PathLike[str]

#: ``ingest`` keywords that shape the run rather than the engine
_RUN_OPTIONS = ("force", "retry_invalid", "password", "summarize", "ray", "ray_actors")


def ingest(paths: PathLike | Iterable[PathLike], *, schema: str | None = None, engine: str | None = None,
           db: PathLike | None = None, settings: Settings | None = None, progress: Progress | None = None,
           **options: Any) -> IngestReport:
    """Read documents, validate each against a schema and store the results in DuckDB.

    Usage::

        >>> import docpipe
        >>> report = docpipe.ingest("invoices/", schema="invoice", engine="offline", db="books.duckdb")
        >>> report.counts
        Counter({'ok': 41, 'invalid': 1})
        >>> with docpipe.connect("books.duckdb") as store:
        ...     store.records("SELECT vendor_name, total FROM invoice")

    ``paths`` are files or folders (walked recursively). ``schema``, ``engine`` and ``db`` default to the
    effective settings (``DOCPIPE_*`` variables, ``docpipe.toml``, then built-in defaults: ``invoice``, ``auto``,
    ``docpipe.duckdb``); ``settings`` replaces that lookup with a ``Settings`` you built. Other keywords:

    - for the run: ``force``, ``retry_invalid``, ``password``, ``summarize``;
    - any setting of ``Settings``: ``workers``, ``model``, ``image_tokens``, ``thinking``, ``max_pages``;
    - the chosen engine's own settings, e.g. ``base_url="http://gpu:8000/v1", concurrency=16`` (openai) or
      ``batch_size=32`` (gemma); ``docpipe config`` lists them.

    A document that cannot be read or extracted is a status in the report (``report.failures``), never an
    exception. Raises ``DocpipeError`` only for what stops the whole run: an unknown schema or engine, an engine
    that cannot run here, a database in use by another process. Re-running skips documents already done.
    """
    from .pipeline import ingest as run

    return run(ingest_options(paths, schema=schema, engine=engine, db=db, settings=settings, **options), progress)


def ingest_options(paths: PathLike | Iterable[PathLike], *, schema: str | None = None, engine: str | None = None,
                   db: PathLike | None = None, settings: Settings | None = None, **options: Any) -> IngestOptions:
    """The ``IngestOptions`` that ``ingest`` runs with (keywords as for ``ingest``); raises ``TypeError`` for a
    keyword no engine setting or run option has."""
    from .config import Settings
    from .pipeline import IngestOptions

    flags = {k: v for k, v in options.items() if k not in _RUN_OPTIONS}
    flags.update({k: v for k, v in (("schema", schema), ("engine", engine), ("db", db)) if v is not None})
    try:
        cfg = Settings.load(flags) if settings is None else settings.merged(flags) if flags else settings
    except KeyError as e:
        raise TypeError(f"ingest() got an unexpected keyword argument {e.args[0]!r}") from None
    run = {name: options[name] for name in _RUN_OPTIONS if name in options}
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return IngestOptions(paths=[Path(p) for p in items], schema=cfg.schema_name, db=Path(cfg.db), engine=cfg.engine,
                         engine_options=cfg.engine_options(), max_pages=cfg.max_pages, gpus=cfg.gpus,
                         **run)


def connect(db: PathLike | None = None, *, read_only: bool = True) -> Store:
    """Open a docpipe database to read results: ``query``, ``records``, ``arrow``, ``status_counts``, ``problems``.

    Usage::

        >>> import docpipe
        >>> with docpipe.connect("books.duckdb") as store:
        ...     table = store.arrow("SELECT * FROM invoice WHERE total > 1000")   # pyarrow.Table
        ...     late = store.records("SELECT path, due_date FROM invoice WHERE due_date < current_date")
        ...     for problem in store.problems():
        ...         print(problem["path"], problem["reason"])

    ``db`` defaults to the effective settings' database (``DOCPIPE_DB``, ``docpipe.toml``, ``docpipe.duckdb``).
    Read-only by default (``read_only=False`` to write). Raises ``StoreError`` if there is no database there, or
    if another process is writing it (an ingest still running).
    """
    from .config import Settings
    from .store import Store

    return Store.open(Path(db) if db is not None else Settings.load().db, read_only=read_only)
