"""Export views and tables to Parquet, CSV or JSONL with DuckDB's COPY (streamed, typed)."""

from __future__ import annotations

from pathlib import Path

from .errors import StoreError
from .store import Store

_FORMATS = {"parquet": "(FORMAT parquet)", "csv": "(FORMAT csv, HEADER true)", "jsonl": "(FORMAT json)"}


def export_tables(db: Path, names: list[str], fmt: str, out: Path) -> list[tuple[str, Path, int]]:
    """Write each name to OUT/NAME.EXT; default names are every schema view, its list views, documents and
    summaries. Returns (name, path, rows)."""
    if fmt not in _FORMATS:
        raise StoreError(f"unknown export format {fmt!r}: use parquet, csv or jsonl")
    with Store.open(db, read_only=True) as store:
        known = {r[0] for r in store.con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        if not names:
            names = []
            for s in store.schema_names():
                names += sorted(n for n in known if n == s or n.startswith(s + "_"))
            names += ["documents", "summaries"]
        missing = [n for n in names if n not in known]
        if missing:
            raise StoreError(f"no view or table named {', '.join(missing)}; known: {', '.join(sorted(known))}")
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for n in names:
            path = out / f"{n}.{fmt}"
            store.con.execute(f"COPY (SELECT * FROM \"{n}\") TO '{str(path).replace(chr(39), chr(39) * 2)}' "
                              f"{_FORMATS[fmt]}")
            rows = store.con.execute(f"SELECT count(*) FROM \"{n}\"").fetchone()[0]
            written.append((n, path, rows))
    return written
