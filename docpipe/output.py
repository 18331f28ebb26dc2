"""Rows -> table, plain text, Markdown, CSV, JSON array or JSON lines on stdout (shared by query, eval, show)."""

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
        from .display import cell

        w = csv.writer(sys.stdout)
        w.writerow(cols)
        tty = sys.stdout.isatty()  # control characters in names reach a terminal escaped, a file as they are
        for r in rows:  # decimals as stored (2000.00, as `docpipe export` writes them), not as floats
            vals = [v if isinstance(v, (int, float, str)) else cell(v) for v in r]
            w.writerow([shown(v, keep_lines=True) if tty and isinstance(v, str) else v for v in vals])
    elif fmt == "plain":
        from .display import plain

        plain(cols, rows, sys.stdout)
    elif fmt == "markdown":
        from .display import markdown

        markdown(cols, rows, sys.stdout)
    else:
        from .display import table

        table(cols, rows, title=title)
