"""Query results that read well in a terminal: a table fitted to the screen, plain text and Markdown.

The table never wraps a cell: numbers, dates and short values keep their full width, long text is cut with an
ellipsis, 64-character document ids are shortened (``docpipe show`` takes the short form), and columns that do not
fit at all are left out with a note naming them. ``plain`` and ``markdown`` print every value in full.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any, TextIO

from .paths import shown

ID_CHARS = 12  # shown of a 64-hex doc_id; unique in any realistic store, and `docpipe show` accepts it
MIN_TEXT = 6  # narrowest a text column gets before columns are dropped instead
_SHA = re.compile(r"[0-9a-f]{64}")


def cell(v: Any) -> str:
    """One value as text, in full: decimals as stored (2000.00), dates ISO, lists and objects as JSON."""
    if v is None:
        return ""
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat()
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False, default=str)
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return str(v)


def short(v: Any) -> str:
    """A value for the screen: one line, a doc_id shortened."""
    s = cell(v)
    if len(s) == 64 and _SHA.fullmatch(s):
        return s[:ID_CHARS] + "…"
    return shown(" ".join(s.split()) if ("\n" in s or "\t" in s) else s)


def _numeric(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in present)


def _fixed(values: list[Any], texts: list[str]) -> bool:
    """Columns that are never cut: numbers, dates, booleans, shortened ids and short codes."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float, Decimal, bool, dt.date, dt.datetime, dt.time)) for v in present):
        return True
    if present and all(isinstance(v, str) and _SHA.fullmatch(v) for v in present):
        return True
    return max((len(t) for t in texts), default=0) <= MIN_TEXT + 2


def fit_widths(headers: list[str], columns: list[list[str]], fixed: list[bool], width: int) -> list[int]:
    """Width of each column's content so the table (with rich's box: 3 per column + 1) fits ``width``.

    Fixed columns keep their natural width; text columns share what is left, the widest cut first. A column
    that gets 0 does not fit at all and is to be dropped (from the right).
    """
    natural = [max([len(h)] + [len(t) for t in col]) for h, col in zip(headers, columns)]
    n = len(headers)
    while n > 0:
        room = width - (3 * n + 1)
        fixed_w = sum(w for w, f in zip(natural[:n], fixed[:n]) if f)
        text = [i for i in range(n) if not fixed[i]]
        floor = sum(min(natural[i], max(MIN_TEXT, len(headers[i]) if len(headers[i]) <= 12 else MIN_TEXT))
                    for i in text)
        if fixed_w + floor <= room or n == 1:
            break
        n -= 1
    room = max(width - (3 * n + 1), 1)
    widths = natural[:n]
    text = [i for i in range(n) if not fixed[i]]
    left = room - sum(w for w, f in zip(natural[:n], fixed[:n]) if f)
    if text and sum(natural[i] for i in text) > left:
        # water-fill: the largest cap c with sum(min(natural, c)) <= left
        cap = max(left // len(text), 1)
        while sum(min(natural[i], cap + 1) for i in text) <= left:
            cap += 1
        for i in text:
            widths[i] = max(min(natural[i], cap), 1)
    elif n == 1 and widths[0] > room:
        widths[0] = room
    return widths + [0] * (len(headers) - n)


def table(cols: list[str], rows: list[tuple[Any, ...]], title: str | None = None, width: int | None = None) -> None:
    """A rich table fitted to the terminal (or ``width``); a note on stderr names any columns left out."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Console(width=width, highlight=False) if width else Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    values = [[r[i] for r in rows] for i in range(len(cols))]
    texts = [[short(v) for v in col] for col in values]
    fixed = [_fixed(v, t) for v, t in zip(values, texts)]
    widths = fit_widths(cols, texts, fixed, out.width)
    visible = [i for i, w in enumerate(widths) if w > 0]
    for i in visible:  # a cut path keeps its end (the file name), other text its start
        texts[i] = [("…" + t[-(widths[i] - 1):]) if len(t) > widths[i] > 1 and ("/" in t or "\\" in t) else t
                    for t in texts[i]]
    t = Table(title=title, title_justify="left")
    for i in visible:
        t.add_column(escape(cols[i]), width=widths[i], no_wrap=True, overflow="ellipsis",
                     justify="right" if _numeric(values[i]) else "left")
    for r in range(len(rows)):
        t.add_row(*[escape(texts[i][r]) for i in visible])
    out.print(t)
    if len(visible) < len(cols):
        hidden = [cols[i] for i in range(len(cols)) if i not in visible]
        err.print(f"({len(hidden)} more column(s) do not fit in {out.width} columns: {escape(', '.join(hidden))}; "
                  "select fewer columns, or use --format plain, markdown, csv or json)", soft_wrap=True)
    if not rows:
        err.print("(no rows)")


def plain(cols: list[str], rows: list[tuple[Any, ...]], out: TextIO) -> None:
    """Aligned columns without borders, every value in full on one line (for pipes, grep and wide terminals)."""
    values = [[r[i] for r in rows] for i in range(len(cols))]
    texts = [[shown(" ".join(cell(v).split())) if v is not None else "" for v in col] for col in values]
    widths = [max([len(c)] + [len(t) for t in col]) for c, col in zip(cols, texts)]
    right = [_numeric(v) for v in values]

    def line(items: list[str]) -> str:
        parts = [s.rjust(w) if r else s.ljust(w) for s, w, r in zip(items, widths, right)]
        return "  ".join(parts).rstrip()

    out.write(line(cols) + "\n")
    for r in range(len(rows)):
        out.write(line([texts[i][r] for i in range(len(cols))]) + "\n")


def markdown(cols: list[str], rows: list[tuple[Any, ...]], out: TextIO) -> None:
    """A GitHub-flavoured Markdown table (numbers right-aligned, ``|`` escaped)."""
    def esc(s: str) -> str:
        return shown(" ".join(s.split())).replace("|", "\\|")

    values = [[r[i] for r in rows] for i in range(len(cols))]
    out.write("| " + " | ".join(esc(c) for c in cols) + " |\n")
    out.write("|" + "|".join("---:" if _numeric(v) else "---" for v in values) + "|\n")
    for r in rows:
        out.write("| " + " | ".join(esc(cell(v)) for v in r) + " |\n")


def key_columns(columns: list[tuple[str, str]], limit: int = 4) -> list[str]:
    """A few columns that say what a row is, for the query suggested after an ingest: a name, a date, an
    amount and a currency when the schema has them, else its first plain columns. ``columns``: (name, SQL type)."""
    scalar = [(n, t.upper()) for n, t in columns if not t.endswith("[]") and t.upper() != "JSON"]
    picks: list[str] = []
    wants = [  # each: alternatives, best first
        [lambda n, t: n.endswith("name") or n == "title"],
        [lambda n, t: t == "DATE"],
        [lambda n, t: t.startswith("DECIMAL") and n in ("total", "amount", "grand_total", "total_amount"),
         lambda n, t: t.startswith("DECIMAL") and ("total" in n or "amount" in n)],
        [lambda n, t: n == "currency"],
    ]
    for alternatives in wants:
        for want in alternatives:
            hit = next((n for n, t in scalar if want(n, t) and n not in picks), None)
            if hit:
                picks.append(hit)
                break
    for n, _ in scalar:
        if len(picks) >= limit:
            break
        if n not in picks:
            picks.append(n)
    return picks[:limit]


def suggested_query(view: str, columns: list[tuple[str, str]]) -> str:
    """A first query that fits on a screen: the key columns, ordered by the first date among them."""
    picks = key_columns(columns)
    dates = [n for n, t in columns if t.upper() == "DATE" and n in picks]
    sel = ", ".join(quote(n) for n in picks) if picks else "*"
    return f"SELECT {sel} FROM {quote(view)}" + (f" ORDER BY {quote(dates[0])}" if dates else "")


_RESERVED: set[str] | None = None


def quote(name: str) -> str:
    """A SQL name as typed by a person: bare when DuckDB allows it, double-quoted when it is a keyword."""
    global _RESERVED
    if _RESERVED is None:
        try:
            import duckdb

            _RESERVED = {r[0] for r in duckdb.sql("SELECT keyword_name FROM duckdb_keywords() "
                                                   "WHERE keyword_category <> 'unreserved'").fetchall()}
        except Exception:  # an old DuckDB without duckdb_keywords(): quoting everything is still right
            _RESERVED = set()
            return '"' + name.replace('"', '""') + '"'
    if re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'
