"""The evidence's tables and views in DuckDB, and the rows one batch of results adds.

Tables: ``field_evidence`` and ``check_results`` (replaced with each extraction), ``corrections`` (append-only:
a person's fixes; the schema views show the latest one per field, ``extractions.data`` keeps the original).
Views: ``evidence``, ``checks``, ``needs_review`` (every document with a failed check or a field below
REVIEW_BELOW), ``corrections_latest``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: A field below this confidence puts its document on the review list.
REVIEW_BELOW = 0.5

DDL = [
    """CREATE TABLE IF NOT EXISTS field_evidence (
        doc_id VARCHAR, schema_name VARCHAR, engine VARCHAR, field VARCHAR, value VARCHAR, page INTEGER,
        x0 DOUBLE, y0 DOUBLE, x1 DOUBLE, y1 DOUBLE, nx0 DOUBLE, ny0 DOUBLE, nx1 DOUBLE, ny1 DOUBLE,
        source VARCHAR, confidence DOUBLE, text VARCHAR, note VARCHAR, created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS check_results (
        doc_id VARCHAR, schema_name VARCHAR, engine VARCHAR, check_name VARCHAR, passed BOOLEAN, detail VARCHAR,
        fields VARCHAR[], created_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS corrections (
        doc_id VARCHAR, field VARCHAR, old VARCHAR, new VARCHAR, who VARCHAR, "when" TIMESTAMP)""",
]

# The extraction the schema views show: the latest ok one per document and schema.
_LATEST = """SELECT doc_id, schema_name, engine FROM extractions WHERE status = 'ok'
    QUALIFY row_number() OVER (PARTITION BY doc_id, schema_name ORDER BY created_at DESC) = 1"""

VIEWS = [
    """CREATE OR REPLACE VIEW corrections_latest AS SELECT doc_id, field, old, new, who, "when" FROM corrections
       QUALIFY row_number() OVER (PARTITION BY doc_id, field ORDER BY "when" DESC, rowid DESC) = 1""",
    f"""CREATE OR REPLACE VIEW evidence AS
       SELECT f.doc_id, d.path, f.field, f.value, f.page, f.x0, f.y0, f.x1, f.y1, f.source, f.confidence, f.text,
              f.schema_name, f.engine, f.nx0, f.ny0, f.nx1, f.ny1, f.note, c.new AS corrected
       FROM field_evidence f JOIN ({_LATEST}) l USING (doc_id, schema_name, engine)
       JOIN documents d USING (doc_id) LEFT JOIN corrections_latest c USING (doc_id, field)""",
    f"""CREATE OR REPLACE VIEW checks AS
       SELECT k.doc_id, d.path, k.check_name AS "check", k.passed, k.detail, k.schema_name, k.engine, k.fields
       FROM check_results k JOIN ({_LATEST}) l USING (doc_id, schema_name, engine) JOIN documents d USING (doc_id)""",
    f"""CREATE OR REPLACE VIEW needs_review AS
       WITH why AS (
         SELECT doc_id, path, schema_name, 'check failed: ' || "check" || ' (' || detail || ')' AS reason, 0 AS o
         FROM checks WHERE NOT passed AND NOT (len(fields) > 0 AND coalesce(list_has_all(
             (SELECT list(c.field) FROM corrections_latest c WHERE c.doc_id = checks.doc_id), fields), false))
         UNION ALL
         SELECT doc_id, path, schema_name,
                'low confidence: ' || field || ' = ' || value || ' (' || round(confidence, 2) || ')', 1
         FROM evidence WHERE confidence < {REVIEW_BELOW} AND corrected IS NULL)
       SELECT doc_id, any_value(path) AS path, schema_name, count(*) AS problems,
              string_agg(reason, '; ' ORDER BY o, reason) AS why
       FROM why GROUP BY doc_id, schema_name""",
]


def migrate(con: Any) -> None:
    for ddl in DDL:
        con.execute(ddl)
    for view in VIEWS:
        con.execute(view)


def rows(results: list[Any], schema_name: str, now: dt.datetime) -> tuple[list[dict], list[dict]]:
    """(field_evidence rows, check_results rows) for a batch of DocResults."""
    ev_rows, ck_rows = [], []
    for r in results:
        doc, eng = r.source.sha256, r.output.engine
        for e in r.evidence:
            b, nb = e.box or (None,) * 4, e.nbox or (None,) * 4
            ev_rows.append({"doc_id": doc, "schema_name": schema_name, "engine": eng, "field": e.field,
                            "value": e.value, "page": e.page, "x0": b[0], "y0": b[1], "x1": b[2], "y1": b[3],
                            "nx0": nb[0], "ny0": nb[1], "nx1": nb[2], "ny1": nb[3], "source": e.source,
                            "confidence": e.confidence, "text": e.text, "note": e.note or None, "created_at": now})
        for c in r.checks:
            ck_rows.append({"doc_id": doc, "schema_name": schema_name, "engine": eng, "check_name": c.check,
                            "passed": c.passed, "detail": c.detail, "fields": list(c.fields), "created_at": now})
    return ev_rows, ck_rows


def write(store: Any, results: list[Any], schema_name: str, now: dt.datetime) -> None:
    """Replace the evidence of each (document, schema, engine) in the batch; call inside the batch's transaction."""
    keys = [{"doc_id": r.source.sha256, "schema_name": schema_name, "engine": r.output.engine} for r in results]
    if not keys:
        return
    for table in ("field_evidence", "check_results"):  # one joined DELETE a table: a DELETE a key ran 10x slower
        store._bulk(table, keys, replace_keys=("doc_id", "schema_name", "engine"), insert=False)
    ev_rows, ck_rows = rows(results, schema_name, now)
    store._bulk("field_evidence", ev_rows)
    store._bulk("check_results", ck_rows)


def add_correction(con: Any, doc_id: str, field: str, new: str | None, who: str) -> dict[str, Any]:
    """Append a correction; ``old`` is what the views showed before it. Returns the row."""
    prev = con.execute("SELECT new FROM corrections_latest WHERE doc_id = ? AND field = ?", [doc_id, field]).fetchone()
    if prev is None:
        prev = con.execute("SELECT value FROM evidence WHERE doc_id = ? AND field = ?", [doc_id, field]).fetchone()
    old = prev[0] if prev else None
    when = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute('INSERT INTO corrections VALUES (?, ?, ?, ?, ?, ?)', [doc_id, field, old, new, who, when])
    return {"doc_id": doc_id, "field": field, "old": old, "new": new, "who": who, "when": when.isoformat()}


def corrected_data_sql(data: str, doc_id: str) -> str:
    """SQL for an extraction's data with the latest top-level corrections applied (a JSON merge patch)."""
    patch = (f"(SELECT json_group_object(c.field, to_json(c.new)) FROM corrections_latest c "
             f"WHERE c.doc_id = {doc_id} AND c.field NOT LIKE '%[%')")
    return f"CASE WHEN {patch} IS NULL THEN {data} ELSE json_merge_patch({data}, {patch}) END"


def corrected_item_sql(item_expr: str, doc_id: str, list_field: str, line_no: str, col: str) -> str:
    """SQL for one line-item column as text, its latest correction first."""
    return (f"COALESCE((SELECT c.new FROM corrections_latest c WHERE c.doc_id = {doc_id} AND c.field = "
            f"'{list_field}[' || {line_no} || '].{col}'), json_extract_string({item_expr}, '$.{col}'))")
