"""The DuckDB store: tables, typed views per schema, one writer, bulk inserts, read-only queries.

Tables (one row per thing, keyed so that re-runs replace rather than duplicate):
    documents    doc_id (sha256 of the bytes), path, size, mime, page_count, status, reason, updated_at
    files        every place (path or URL) a doc_id was seen at, one row a place however a run spelled it
    pages        doc_id, page_no, geometry, render DPI, text and where it came from
    extractions  doc_id x schema_name x engine: status, data JSON, validation errors, model, timings
    summaries    doc_id x engine: summary text
    schemas      the schemas used: name, version, column types (so views never need the Python class)
    runs         one row per ``docpipe ingest``
Views: one per schema (``invoice``) with typed columns, one per nested list (``invoice_line_items``), and
``problems`` (every document that is not ok, with its reason).

A document's rows are written in one transaction, so a run killed half-way leaves whole documents or nothing,
and the next run redoes only what is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import StoreError
from .evidence import tables as evidence_tables
from .models import DocResult, SourceFile, Status
from .paths import path_bytes, path_text
from .schemas import Column, SchemaInfo

DEFAULT_DB = "docpipe.duckdb"
SCHEMA_VERSION = 1

_DDL = [
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS documents (
        doc_id VARCHAR PRIMARY KEY, path VARCHAR, size BIGINT, mime VARCHAR, page_count INTEGER,
        status VARCHAR, reason VARCHAR, first_seen TIMESTAMP, updated_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS files (
        path VARCHAR PRIMARY KEY, doc_id VARCHAR, size BIGINT, seen_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS pages (
        doc_id VARCHAR, page_no INTEGER, width_pt DOUBLE, height_pt DOUBLE, rotation INTEGER, ocr_rotation INTEGER,
        width_px INTEGER, height_px INTEGER, render_dpi DOUBLE, text_source VARCHAR, ocr_confidence DOUBLE,
        text VARCHAR, PRIMARY KEY (doc_id, page_no))""",
    """CREATE TABLE IF NOT EXISTS extractions (
        doc_id VARCHAR, schema_name VARCHAR, engine VARCHAR, schema_version VARCHAR, model VARCHAR,
        method VARCHAR, status VARCHAR, reason VARCHAR, data JSON, errors JSON, raw_text VARCHAR,
        thinking VARCHAR, timings JSON, run_id VARCHAR, created_at TIMESTAMP,
        PRIMARY KEY (doc_id, schema_name, engine))""",
    # every attempt, appended and never changed: what `extractions` held before a re-run replaced it
    """CREATE TABLE IF NOT EXISTS extraction_history (
        doc_id VARCHAR, schema_name VARCHAR, engine VARCHAR, schema_version VARCHAR, model VARCHAR,
        method VARCHAR, status VARCHAR, reason VARCHAR, data JSON, errors JSON, raw_text VARCHAR,
        thinking VARCHAR, timings JSON, run_id VARCHAR, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS summaries (
        doc_id VARCHAR, engine VARCHAR, model VARCHAR, summary VARCHAR, created_at TIMESTAMP,
        PRIMARY KEY (doc_id, engine))""",
    """CREATE TABLE IF NOT EXISTS schemas (
        name VARCHAR PRIMARY KEY, version VARCHAR, ref VARCHAR, columns JSON, nested JSON, updated_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS skipped_paths (
        path VARCHAR PRIMARY KEY, path_bytes BLOB, status VARCHAR, reason VARCHAR, seen_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, started_at TIMESTAMP, finished_at TIMESTAMP, engine VARCHAR,
        model VARCHAR, schema_name VARCHAR, args JSON, counts JSON)""",
    """CREATE TABLE IF NOT EXISTS claims (
        doc_id VARCHAR, schema_name VARCHAR, engine VARCHAR, owner VARCHAR, claimed_at TIMESTAMP,
        expires_at TIMESTAMP, PRIMARY KEY (doc_id, schema_name, engine))""",
]

_ADDED_COLUMNS = [
    "ALTER TABLE pages ADD COLUMN IF NOT EXISTS ocr_rotation INTEGER",
    "ALTER TABLE files ADD COLUMN IF NOT EXISTS first_seen TIMESTAMP",
    "UPDATE files SET first_seen = seen_at WHERE first_seen IS NULL",
    # the raw bytes of a path whose name is not UTF-8 (path holds it with those bytes written \xNN)
    "ALTER TABLE documents ADD COLUMN IF NOT EXISTS path_bytes BLOB",
    "ALTER TABLE files ADD COLUMN IF NOT EXISTS path_bytes BLOB",
    # where the file is however a run spelled it ("inbox/a.pdf", "./a.pdf", "/srv/inbox/a.pdf"): absolute or URL
    "ALTER TABLE files ADD COLUMN IF NOT EXISTS location VARCHAR",
]

# every path whose bytes are also at another path: one row per copy, the first one seen first
_DUPLICATES_VIEW = """
CREATE OR REPLACE VIEW duplicates AS
SELECT doc_id, path, size, first_seen, count(*) OVER (PARTITION BY doc_id) AS copies,
       first_value(path) OVER (PARTITION BY doc_id ORDER BY first_seen, path) AS first_path
FROM files QUALIFY copies > 1 ORDER BY doc_id, first_seen, path
"""

# a rank per status: a stored result is replaced only by one at least as good (ok > invalid > the rest)
_RANK = {Status.OK.value: 2, Status.INVALID.value: 1}

_PROBLEMS_VIEW = """
CREATE OR REPLACE VIEW problems AS
SELECT d.path, e.doc_id, e.schema_name, e.engine, e.status, e.reason, e.errors, e.created_at
FROM extractions e JOIN documents d USING (doc_id)
WHERE e.status <> 'ok'
UNION ALL
SELECT s.path, NULL, NULL, NULL, s.status, s.reason, NULL, s.seen_at FROM skipped_paths s
"""


def _location(path: Any) -> str:
    """A local path made absolute (not resolved: a link is a place of its own); a URL as it is."""
    return path_text(path if isinstance(path, str) else os.path.abspath(path))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise StoreError(f"{name!r} cannot be a column or view name: use letters, digits and _ "
                         "(rename the field, or give it an alias)")
    return name


def _q(name: str) -> str:
    """A safe name, double-quoted: a model called ``Order`` gets a view ``"order"``, not a syntax error."""
    return f'"{_ident(name)}"'


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


class Store:
    """One DuckDB file. Open it with ``Store.open(path)``; ``read_only=True`` for queries."""

    def __init__(self, con: Any, path: str, read_only: bool) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only

    @classmethod
    def open(cls, path: str | Path = DEFAULT_DB, read_only: bool = False, wait_s: float | None = None,
             migrate: bool = True) -> Store:
        """Open the file, waiting up to ``wait_s`` (default ``DOCPIPE_LOCK_WAIT`` or 30 s) while another process
        holds it: an ingest holds it only while it commits a batch."""
        p = str(path)
        if read_only and p != ":memory:" and not Path(p).exists():
            raise StoreError(f"no database at {p}: run `docpipe ingest` first, or pass --db")
        con = connect_waiting(p, read_only, lock_wait_s() if wait_s is None else wait_s)
        store = cls(con, p, read_only)
        if not read_only and migrate:
            with store.writing():
                store._migrate()
        return store

    @contextmanager
    def writing(self) -> Iterator[None]:
        """DuckDB errors while writing become one StoreError line naming the file and what to do."""
        import duckdb

        try:
            yield
        except duckdb.Error as e:
            raise store_error(e, self.path, "write") from None

    def _migrate(self) -> None:
        for ddl in _DDL:
            self.con.execute(ddl)
        for ddl in _ADDED_COLUMNS:  # columns added after a table first shipped: old files gain them in place
            self.con.execute(ddl)
        self.con.execute(_PROBLEMS_VIEW)
        evidence_tables.migrate(self.con)
        self.con.execute(_DUPLICATES_VIEW)
        if self.con.execute("SELECT count(*) FROM meta WHERE key = 'history'").fetchone()[0] == 0:
            # results stored before the history table existed are its first entries
            self.con.execute("INSERT INTO extraction_history SELECT doc_id, schema_name, engine, schema_version, "
                             "model, method, status, reason, data, errors, raw_text, thinking, timings, run_id, "
                             "created_at FROM extractions")
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('history', '1')")
        self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    def seal(self) -> Store:
        """No file access through this connection from now on: no COPY ... TO, read_csv of a path, ATTACH or
        INSTALL, and the setting cannot be turned back on (DuckDB's external access off, configuration locked)."""
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")
        return self

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.writing():
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield
            except BaseException:
                try:
                    self.con.execute("ROLLBACK")
                except Exception:  # noqa: BLE001, S110 - refused after a fatal error: the first error is the one to tell
                    pass
                raise
            else:
                self.con.execute("COMMIT")

    # -- runs and skipping ------------------------------------------------------------------------------------------
    def start_run(self, engine: str, model: str | None, schema_name: str, args: dict[str, Any]) -> str:
        run_id = uuid.uuid4().hex[:12]
        with self.writing():
            self.con.execute("INSERT INTO runs VALUES (?, ?, NULL, ?, ?, ?, ?, NULL)",
                             [run_id, _now(), engine, model, schema_name, json.dumps(args, default=str)])
        return run_id

    def finish_run(self, run_id: str, counts: dict[str, Any]) -> None:
        with self.writing():
            self.con.execute("UPDATE runs SET finished_at = ?, counts = ? WHERE run_id = ?",
                             [_now(), json.dumps(counts), run_id])

    def done_ids(self, schema_name: str, engine: str, retry_invalid: bool = False) -> set[str]:
        """doc_ids that need no work for (schema, engine): everything recorded except retryable failures
        (and invalid results, when asked)."""
        retry = [s.value for s in Status if s.retry] + ([Status.INVALID.value] if retry_invalid else [])
        rows = self.con.execute(
            f"SELECT doc_id FROM extractions WHERE schema_name = ? AND engine = ? "
            f"AND status NOT IN ({','.join('?' * len(retry))})", [schema_name, engine, *retry]).fetchall()
        return {r[0] for r in rows}

    def note_files(self, sources: Sequence[SourceFile]) -> None:
        """Remember every path seen (a renamed copy of done bytes is skipped but its path is still known)."""
        if not sources:
            return
        now = _now()
        rows = [{"path": path_text(s.path), "doc_id": s.sha256, "size": s.size, "seen_at": now, "first_seen": now,
                 "path_bytes": _raw_if_needed(s.path), "location": _location(s.path)} for s in sources]
        marks = ",".join("?" * len(rows))
        with self.transaction():
            known = {(loc, d): f for loc, d, f in self.con.execute(
                f"SELECT coalesce(location, path), doc_id, first_seen FROM files WHERE path IN ({marks}) "
                f"OR location IN ({marks})", [r["path"] for r in rows] + [r["location"] for r in rows]).fetchall()}
            for r in rows:  # the same bytes at the same place keep the time they were first seen
                r["first_seen"] = known.get((r["location"], r["doc_id"])) or known.get((r["path"], r["doc_id"])) or now
            # one row a place: an earlier run's other spelling of it gives way (it is no second copy)
            self.con.execute(f"DELETE FROM files WHERE location IN ({marks}) AND path NOT IN ({marks})",
                             [r["location"] for r in rows] + [r["path"] for r in rows])
            self._bulk("files", rows, replace_keys=("path",))
            self._bulk("skipped_paths", [{"path": r["path"]} for r in rows], replace_keys=("path",), insert=False)

    def note_skipped(self, skipped: Sequence[tuple[Any, str, str]]) -> None:
        """Record the paths discovery did not take (path, reason, status), replacing what an earlier run said."""
        if not skipped:
            return
        now = _now()
        rows = [{"path": path_text(p), "path_bytes": _raw_if_needed(p), "status": status, "reason": reason,
                 "seen_at": now} for p, reason, status in skipped]
        with self.transaction():
            self._bulk("skipped_paths", list({r["path"]: r for r in rows}.values()), replace_keys=("path",))

    # -- schemas and views ------------------------------------------------------------------------------------------
    def register_schema(self, schema: SchemaInfo) -> None:
        """Record the schema's columns and (re)create its typed views."""
        cols = [[c.name, c.sql_type, c.description] for c in schema.columns]
        nested = {n.field: [[c.name, c.sql_type, c.description] for c in n.columns] for n in schema.nested}
        with self.transaction():  # a view that cannot be made leaves no schema row behind
            self.con.execute("INSERT OR REPLACE INTO schemas VALUES (?, ?, ?, ?, ?, ?)",
                             [schema.name, schema.version, schema.ref, json.dumps(cols), json.dumps(nested), _now()])
            self._create_views(schema.name, [Column(*c) for c in cols],
                               {k: [Column(*c) for c in v] for k, v in nested.items()})

    def _create_views(self, name: str, columns: list[Column], nested: dict[str, list[Column]]) -> None:
        view = _q(name)
        data = evidence_tables.corrected_data_sql("e.data", "e.doc_id")  # a person's corrections win
        latest = (
            f"SELECT e.doc_id, d.path, e.engine, e.model, e.created_at, {data} AS data FROM extractions e "
            f"JOIN documents d USING (doc_id) WHERE e.schema_name = {_lit(name)} AND e.status = 'ok' "
            "QUALIFY row_number() OVER (PARTITION BY e.doc_id ORDER BY e.created_at DESC) = 1")
        names = {c.name for c in columns}
        meta = [m for m in ("path", "doc_id") if m not in names]
        sel = [f"x.{m}" for m in meta] + [_cast("x.data", c) for c in columns]
        sel += ["x.engine AS _engine", "x.created_at AS _extracted_at"]
        self.con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(sel)} FROM ({latest}) x")
        for field, cols in nested.items():
            nview = _q(f"{name}_{field}")
            inner = (f"SELECT x.doc_id, x.path, CAST(json_extract(x.data, '$.{_ident(field)}') AS JSON[]) AS arr "
                     f"FROM ({latest}) x")
            unn = "SELECT y.doc_id, y.path, generate_subscripts(y.arr, 1) AS line_no, unnest(y.arr) AS item " \
                  f"FROM ({inner}) y"
            csel = [_cast("z.item", c, evidence_tables.corrected_item_sql("z.item", "z.doc_id", field, "z.line_no",
                                                                          _ident(c.name)))
                    for c in cols if c.name not in ("path", "doc_id", "line_no")]
            self.con.execute(f"CREATE OR REPLACE VIEW {nview} AS SELECT z.path, z.doc_id, z.line_no, "
                             f"{', '.join(csel)} FROM ({unn}) z")

    def schema_names(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT name FROM schemas ORDER BY name").fetchall()]

    # -- writing results --------------------------------------------------------------------------------------------
    def write(self, results: Sequence[DocResult], schema: SchemaInfo, run_id: str) -> None:
        """Write a batch of documents, each with its pages, extraction and summary, in one transaction."""
        if not results:
            return
        now = _now()
        docs, pages, extr, summ = [], [], [], []
        for r in results:
            out, src = r.output, r.source
            docs.append({"doc_id": src.sha256, "path": path_text(src.path), "path_bytes": _raw_if_needed(src.path),
                         "size": src.size, "mime": src.mime,
                         "page_count": len(out.pages) or None, "status": r.status.value,
                         "reason": r.reason or None, "first_seen": now, "updated_at": now})
            for p in out.pages:
                pages.append({"doc_id": src.sha256, "page_no": p.page_no, "width_pt": p.width_pt,
                              "height_pt": p.height_pt, "rotation": p.rotation,
                              "ocr_rotation": p.ocr_rotation, "width_px": p.width_px,
                              "height_px": p.height_px, "render_dpi": p.render_dpi, "text_source": p.text_source,
                              "ocr_confidence": p.ocr_confidence, "text": p.text})
            extr.append({"doc_id": src.sha256, "schema_name": schema.name, "engine": out.engine,
                         "schema_version": schema.version, "model": out.model, "method": out.method,
                         "status": r.status.value, "reason": r.reason or None,
                         "data": json.dumps(r.data, ensure_ascii=False) if r.data is not None else None,
                         "errors": json.dumps(r.validation_errors or [e.__dict__ for e in out.errors]) or None,
                         "raw_text": out.raw_text, "thinking": out.thinking,
                         "timings": json.dumps(out.timings), "run_id": run_id, "created_at": now})
            if out.summary:
                summ.append({"doc_id": src.sha256, "engine": out.engine, "model": out.model,
                             "summary": out.summary, "created_at": now})
        with self.transaction():
            self._bulk("extraction_history", extr)
            kept = self._better_than_stored(extr)
            docs = [d for d in docs if d["doc_id"] in kept]
            pages = [p for p in pages if p["doc_id"] in kept]
            extr = [e for e in extr if e["doc_id"] in kept]
            summ = [x for x in summ if x["doc_id"] in kept]
            if not docs:
                return
            ids = [d["doc_id"] for d in docs]
            first = dict(self.con.execute(
                f"SELECT doc_id, first_seen FROM documents WHERE doc_id IN ({','.join('?' * len(ids))})",
                ids).fetchall())
            for d in docs:
                d["first_seen"] = first.get(d["doc_id"], now)
            self._bulk("documents", docs, replace_keys=("doc_id",))
            with_pages = [r.source.sha256 for r in results if r.output.pages and r.source.sha256 in kept]
            if with_pages:
                self.con.execute(f"DELETE FROM pages WHERE doc_id IN ({','.join('?' * len(with_pages))})",
                                 with_pages)
            self._bulk("pages", pages)
            self._bulk("extractions", extr, replace_keys=("doc_id", "schema_name", "engine"))
            self._bulk("summaries", summ, replace_keys=("doc_id", "engine"))
            evidence_tables.write(self, [r for r in results if r.status is Status.OK], schema.name, now)

    def _better_than_stored(self, extr: list[dict[str, Any]]) -> set[str]:
        """doc_ids whose new result may replace the stored one: a failed or invalid re-run (``--force``, a wrong
        password, a server down) never replaces an ok result, nor a failed one an invalid result."""
        stored = {(d, s, e): _RANK.get(st, 0) for d, s, e, st in self.con.execute(
            f"SELECT doc_id, schema_name, engine, status FROM extractions WHERE doc_id IN "
            f"({','.join('?' * len(extr))})", [x["doc_id"] for x in extr]).fetchall()}
        return {x["doc_id"] for x in extr
                if _RANK.get(x["status"], 0) >= stored.get((x["doc_id"], x["schema_name"], x["engine"]), -1)}

    def _bulk(self, table: str, rows: list[dict[str, Any]], replace_keys: tuple[str, ...] = (),
              insert: bool = True) -> None:
        """Insert rows through Arrow (one statement), replacing rows with the same keys (``insert=False``: only
        delete them)."""
        if not rows:
            return
        import pyarrow as pa

        tbl = pa.Table.from_pylist(rows)
        self.con.register("_docpipe_rows", tbl)
        try:
            if replace_keys:
                cond = " AND ".join(f"t.{k} = r.{k}" for k in replace_keys)
                self.con.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM _docpipe_rows r WHERE {cond})")
            cols = ", ".join(rows[0].keys())
            if insert:
                self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _docpipe_rows")
        finally:
            self.con.unregister("_docpipe_rows")

    # -- reading ----------------------------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run SQL; (column names, rows)."""
        import duckdb

        if not sql.strip():
            raise StoreError('no SQL given: e.g. docpipe query "SELECT * FROM documents LIMIT 5"')
        try:
            cur = self.con.execute(sql, params or [])
            cols = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cur.description else []
        except duckdb.Error as e:
            raise StoreError(str(e).strip().splitlines()[0]) from e
        return cols, rows

    def status_counts(self) -> list[tuple[str, str, str, int]]:
        return self.con.execute(
            "SELECT schema_name, engine, status, count(*) FROM extractions GROUP BY ALL ORDER BY ALL").fetchall()

    def records(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Run SQL; one dict per row, keyed by column name."""
        cols, rows = self.query(sql, params)
        return [dict(zip(cols, row)) for row in rows]

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """Run SQL; the result as a ``pyarrow.Table`` (hands over to pandas or polars without copying)."""
        import duckdb

        try:
            rel = self.con.sql(sql, params=list(params) if params else None)
            return rel.to_arrow_table() if rel is not None else None
        except duckdb.Error as e:
            raise StoreError(str(e).strip().splitlines()[0]) from e

    def problems(self) -> list[dict[str, Any]]:
        """Every document that is not ok: path, schema_name, engine, status, reason (the ``problems`` view)."""
        return self.records("SELECT path, schema_name, engine, status, reason FROM problems ORDER BY path")


def store_error(e: BaseException, path: str, doing: str) -> StoreError:
    """One line for a DuckDB failure: the file, what went wrong in words, what to do."""
    msg = " ".join(str(e).split())
    low = msg.lower()
    if "no space left" in low or "disk quota" in low or "file too large" in low:
        what = "the disk is full" if "file too large" not in low else "the file size limit was reached"
        return StoreError(f"{path}: {what} while writing; free space (or pass --db on another disk) and run the "
                          "same command again: documents already stored are kept")
    if "read-only" in low or "permission denied" in low or "readonly" in low:
        return StoreError(f"{path} cannot be written ({'read-only' if 'read' in low else 'permission denied'}): "
                          "make it and its folder writable, or pass --db with a writable path")
    if "invalidated" in low:
        return StoreError(f"{path}: the database stopped after an earlier write error; fix that (disk space?) and "
                          "run the same command again: documents already stored are kept")
    return StoreError(f"cannot {doing} {path}: {msg[:300]}")


def _raw_if_needed(path: Any) -> bytes | None:
    """The raw bytes of a path whose text form is not the name itself (undecodable bytes), else None."""
    raw = path_bytes(path)
    return raw if path_text(path).encode() != raw else None


def lock_wait_s() -> float:
    """How long to wait for a database another process holds (DOCPIPE_LOCK_WAIT seconds, default 30)."""
    try:
        return float(os.environ.get("DOCPIPE_LOCK_WAIT", "30"))
    except ValueError:
        return 30.0


def connect_waiting(path: str, read_only: bool, wait_s: float) -> Any:
    """duckdb.connect, retried with jittered backoff while another process holds the file's lock.

    DuckDB lets one read-write process or many read-only ones hold a file; writers here hold it only while
    they commit, so a short wait is enough for readers and writers alike to get their turn.
    """
    import duckdb

    deadline = time.monotonic() + max(0.0, wait_s)
    delay = 0.005
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as e:
            msg = str(e)
            if "lock" not in msg.lower():
                raise store_error(e, path, "open") from e
            if time.monotonic() >= deadline:
                holder = re.search(r"PID (\d+)", msg)
                raise StoreError(f"{path} is in use by another process{f' (PID {holder.group(1)})' if holder else ''}"
                                 f" for longer than {wait_s:g} s (DOCPIPE_LOCK_WAIT): a long query, or a program "
                                 "keeping it open? wait for that run to finish, or pass --db with another file") from e
        except duckdb.Error as e:
            raise store_error(e, path, "open") from e
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)


def _cast(src: str, c: Column, text: str | None = None) -> str:
    path = f"'$.{_ident(c.name)}'"
    name = _q(c.name)
    t = c.sql_type.upper()
    if t == "JSON":
        return f"json_extract({src}, {path}) AS {name}"
    if t.endswith("[]"):
        return f"TRY_CAST(json_extract({src}, {path}) AS {c.sql_type}) AS {name}"
    return f"TRY_CAST({text or f'json_extract_string({src}, {path})'} AS {c.sql_type}) AS {name}"
