"""``docpipe show FILE|DOC_ID``: one document as a person reads it: where it is, its status, the fields of each
extraction with their line items, its summary and its earlier results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import DocpipeError
from .store import Store


def find_doc_id(store: Store, target: str) -> str:
    """A file on disk (by its bytes), a path or file name seen by an ingest, or a doc_id or its first characters."""
    p = Path(target).expanduser()
    if p.is_file():
        from .discover import hash_file

        sha = hash_file(p)[0]
        if store.query("SELECT 1 FROM documents WHERE doc_id = ?", [sha])[1]:
            return sha
        raise DocpipeError(f"{target}: these bytes are not in {store.path}; run `docpipe ingest {target}` first")
    hexpart = target.rstrip("…").lower()
    if len(hexpart) >= 4 and all(c in "0123456789abcdef" for c in hexpart):
        hits = [r[0] for r in store.query("SELECT doc_id FROM documents WHERE starts_with(doc_id, ?)", [hexpart])[1]]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise DocpipeError(f"{target} is the start of {len(hits)} doc_ids: give more characters")
    for sql in ("SELECT DISTINCT doc_id FROM files WHERE path = ?",
                "SELECT DISTINCT doc_id FROM files WHERE ends_with(path, '/' || ?) OR ends_with(path, ?)"):
        hits = [r[0] for r in store.query(sql, [target] if "= ?" in sql else [target, target])[1]]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            paths = [r[0] for r in store.query("SELECT path FROM files WHERE doc_id IN (SELECT unnest(?)) "
                                               "ORDER BY path LIMIT 5", [hits])[1]]
            raise DocpipeError(f"{target} matches {len(hits)} documents ({', '.join(paths)}): give the full path")
    raise DocpipeError(f"no document {target!r} in {store.path}: give a file, a path as ingested, or a doc_id")


def load(store: Store, doc_id: str) -> dict[str, Any]:
    """Everything stored about one document, as plain JSON-able values."""
    def rows(sql: str) -> list[dict[str, Any]]:
        cols, data = store.query(sql, [doc_id])
        return [dict(zip(cols, r)) for r in data]

    doc = rows("SELECT doc_id, path, size, mime, page_count, status, reason, first_seen, updated_at "
               "FROM documents WHERE doc_id = ?")[0]
    have = {(t, c) for t, c in store.query("SELECT table_name, column_name FROM information_schema.columns")[1]}
    order = "first_seen, path" if ("files", "first_seen") in have else "path"  # a store from an older docpipe
    doc["paths"] = [r["path"] for r in rows(f"SELECT path FROM files WHERE doc_id = ? ORDER BY {order}")]
    doc["extractions"] = rows("SELECT schema_name, engine, model, method, status, reason, data, errors, run_id, "
                              "created_at FROM extractions WHERE doc_id = ? ORDER BY schema_name, engine")
    for e in doc["extractions"]:
        e["data"] = json.loads(e["data"]) if e["data"] else None
        e["errors"] = json.loads(e["errors"]) if e["errors"] else []
    doc["summaries"] = rows("SELECT engine, model, summary FROM summaries WHERE doc_id = ? ORDER BY engine")
    current = {(e["schema_name"], e["engine"], e["run_id"]) for e in doc["extractions"]}
    history = rows("SELECT schema_name, engine, status, reason, run_id, created_at FROM extraction_history "
                   "WHERE doc_id = ? ORDER BY created_at DESC") if ("extraction_history", "doc_id") in have else []
    doc["history"] = [h for h in history if (h["schema_name"], h["engine"], h["run_id"]) not in current]
    return doc


def render(doc: dict[str, Any]) -> None:
    """Print a document for a person: header lines, then per extraction its fields and lists, summary, history."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .display import cell, table

    c = Console(highlight=False)
    c.print(f"[bold]{escape(doc['path'])}[/]", soft_wrap=True)
    facts = [("doc_id", doc["doc_id"]),
             ("also at" if len(doc["paths"]) > 1 else "", ", ".join(p for p in doc["paths"] if p != doc["path"])),
             ("file", f"{doc['size']:,} bytes, {doc['mime']}, {doc['page_count'] or 0} page(s)"),
             ("status", doc["status"] + (f": {doc['reason']}" if doc["reason"] else "")),
             ("first seen", cell(doc["first_seen"]))]
    for k, v in facts:
        if k:
            c.print(f"  {k:<11} {escape(v)}", soft_wrap=True)
    for e in doc["extractions"]:
        c.print()
        head = f"{e['schema_name']} by {e['engine']}" + (f" ({e['model']})" if e["model"] else "")
        c.print(f"[bold]{escape(head)}[/]: {e['status']}" + (f" - {escape(e['reason'])}" if e["reason"] else "")
                + f"  [dim]{cell(e['created_at'])}[/]", soft_wrap=True)
        data = e["data"] or {}
        fields = Table(show_header=False, box=None, padding=(0, 1))
        fields.add_column(style="bold")
        fields.add_column(overflow="fold")
        lists = []
        for k, v in data.items():
            if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                lists.append((k, v))
            else:
                fields.add_row(escape(k), escape(", ".join(map(cell, v)) if isinstance(v, list) else cell(v)))
        if data:
            c.print(fields)
        for err in e["errors"][:10]:
            loc = ".".join(str(x) for x in err.get("loc", ())) if isinstance(err, dict) else ""
            msg = err.get("msg") or err.get("message") if isinstance(err, dict) else str(err)
            c.print(f"  [yellow]{escape(loc + ': ' if loc else '')}{escape(str(msg))}[/]", soft_wrap=True)
        for name, items in lists:
            cols = list(dict.fromkeys(k for it in items for k in it))
            table(["#"] + cols, [(i, *[it.get(k) for k in cols]) for i, it in enumerate(items, 1)],
                  title=f"{name} ({len(items)})")
    for s in doc["summaries"]:
        c.print()
        c.print(f"[bold]summary[/] by {escape(s['engine'])}:")
        c.print(escape(s["summary"] or ""))
    if doc["history"]:
        c.print()
        t = Table(title=f"earlier results ({len(doc['history'])}; table extraction_history)", title_justify="left")
        for col in ("when", "schema", "engine", "status", "reason"):
            t.add_column(col, overflow="ellipsis", no_wrap=col != "reason")
        for h in doc["history"]:
            t.add_row(cell(h["created_at"])[:19], h["schema_name"], h["engine"], h["status"], escape(h["reason"] or ""))
        c.print(t)
