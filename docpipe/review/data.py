"""What the review page reads and writes, through fixed, parameterised SQL only (the browser never sends SQL).

Every connection is sealed (no file access through DuckDB) and opened per request: read-only for reading, so an
ingest can run between requests, and read-write only for the moment a correction is appended.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store import Store

_LOCK = threading.Lock()  # one DuckDB open at a time in this process: read-only and read-write opens must not mix


@dataclass(frozen=True)
class Filters:
    review: bool = False
    schema: str = ""
    engine: str = ""
    q: str = ""


class ReviewData:
    def __init__(self, db: Path) -> None:
        self.db = db

    @contextmanager
    def _con(self, write: bool = False) -> Iterator[Any]:
        with _LOCK, Store.open(self.db, read_only=not write) as store:
            store.seal()
            yield store.con

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        with self._con() as con:
            cur = con.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def documents(self, f: Filters) -> list[dict[str, Any]]:
        """The latest ok extraction per document and schema, with its review state."""
        where, params = ["e.status = 'ok'"], []
        if f.schema:
            where.append("e.schema_name = ?")
            params.append(f.schema)
        if f.engine:
            where.append("e.engine = ?")
            params.append(f.engine)
        if f.q:
            where.append("(d.path ILIKE ? OR EXISTS (SELECT 1 FROM field_evidence v WHERE v.doc_id = e.doc_id "
                         "AND v.value ILIKE ?))")
            params += [f"%{f.q}%", f"%{f.q}%"]
        having = "WHERE r.doc_id IS NOT NULL" if f.review else ""
        sql = f"""
            SELECT x.*, r.why, r.problems FROM (
              SELECT e.doc_id, d.path, e.schema_name, e.engine, d.page_count,
                     (SELECT min(confidence) FROM field_evidence v WHERE v.doc_id = e.doc_id
                        AND v.schema_name = e.schema_name AND v.engine = e.engine) AS min_conf
              FROM extractions e JOIN documents d USING (doc_id) WHERE {' AND '.join(where)}
              QUALIFY row_number() OVER (PARTITION BY e.doc_id, e.schema_name ORDER BY e.created_at DESC) = 1
            ) x LEFT JOIN needs_review r ON r.doc_id = x.doc_id AND r.schema_name = x.schema_name
            {having} ORDER BY x.path, x.schema_name"""
        return self._rows(sql, params)

    def choices(self) -> tuple[list[str], list[str]]:
        with self._con() as con:
            schemas = [r[0] for r in con.execute("SELECT DISTINCT schema_name FROM extractions ORDER BY 1").fetchall()]
            engines = [r[0] for r in con.execute("SELECT DISTINCT engine FROM extractions ORDER BY 1").fetchall()]
        return schemas, engines

    def document(self, doc_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT doc_id, path, mime, page_count FROM documents WHERE doc_id = ?", [doc_id])
        return rows[0] if rows else None

    def pages(self, doc_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT page_no, width_pt, height_pt FROM pages WHERE doc_id = ? ORDER BY page_no",
                          [doc_id])

    def evidence(self, doc_id: str, schema: str) -> list[dict[str, Any]]:
        return self._rows("SELECT field, value, corrected, page, nx0, ny0, nx1, ny1, source, confidence, text, note "
                          "FROM evidence WHERE doc_id = ? AND schema_name = ? ORDER BY field LIKE '%[%', "
                          "TRY_CAST(regexp_extract(field, '\\[(\\d+)\\]', 1) AS INTEGER), page, ny0, field",
                          [doc_id, schema])

    def checks(self, doc_id: str, schema: str) -> list[dict[str, Any]]:
        return self._rows('SELECT "check", passed, detail FROM checks WHERE doc_id = ? AND schema_name = ? '
                          "ORDER BY passed, 1", [doc_id, schema])

    def correct(self, doc_id: str, field: str, new: str | None, who: str) -> dict[str, Any]:
        from ..evidence.tables import add_correction

        with self._con(write=True) as con:
            known = con.execute("SELECT 1 FROM evidence WHERE doc_id = ? AND field = ?", [doc_id, field]).fetchone()
            if not known:
                raise KeyError(f"no field {field!r} for document {doc_id[:12]}")
            return add_correction(con, doc_id, field, new, who)
