"""Rows -> table, CSV, JSON array or JSON lines on stdout (shared by query, eval)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from decimal import Decimal
from typing import Any

from .paths import json_safe, shown


def _json_default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return float(v) if v == v.normalize() or abs(v) < 10**15 else str(v)
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return str(v)


def _jsonable(v: Any) -> Any:
    """DuckDB JSON columns come back as strings: parse them so JSON output nests instead of double-encoding."""
    if isinstance(v, str) and v[:1] in ("{", "[") :
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def render_rows(cols: list[str], rows: list[tuple[Any, ...]], fmt: str, title: str | None = None) -> None:
    if fmt == "json":
        objs = [{c: _jsonable(v) for c, v in zip(cols, r)} for r in rows]
        sys.stdout.write(json_safe(json.dumps(objs, default=_json_default, ensure_ascii=False, indent=2)) + "\n")
    elif fmt == "jsonl":
        for r in rows:
            sys.stdout.write(json_safe(json.dumps({c: _jsonable(v) for c, v in zip(cols, r)}, default=_json_default,
                                                  ensure_ascii=False)) + "\n")
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        safe = (lambda v: shown(v, keep_lines=True) if isinstance(v, str) else v) if sys.stdout.isatty() else None
        for r in rows:
            vals = ["" if v is None else _json_default(v) if not isinstance(v, (str, int, float)) else v for v in r]
            w.writerow([safe(v) for v in vals] if safe else vals)
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, title_justify="left")
        for c in cols:
            t.add_column(c, overflow="fold")
        from rich.markup import escape

        for r in rows:
            t.add_row(*["" if v is None else escape(shown(v, keep_lines=True)) for v in r])
        Console().print(t)
        if not rows:
            Console(stderr=True).print("(no rows)")
