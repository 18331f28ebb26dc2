"""`docpipe query` reads well in an 80-column terminal; plain, Markdown and CSV print values in full."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from docpipe.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ["invoice_de_minimal_hoffmann.pdf", "invoice_en_classic_acme.pdf", "invoice_fr_moderne_atelier.pdf"]
HINT = "SELECT vendor_name, invoice_date, total, currency FROM invoice ORDER BY invoice_date"


def run(*args: str, columns: int = 80):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("q") / "q.duckdb"
    res = run("ingest", *[str(ROOT / "samples" / s) for s in SAMPLES], "--db", str(db), "-e", "offline", "-w", "1")
    assert res.exit_code == 0, res.output
    return db, res.output


def test_hint_after_ingest_is_a_query_that_fits_a_screen(store: tuple[Path, str]) -> None:
    db, out = store
    assert f'try: docpipe query --db {db} "{HINT}"' in out
    res = run("query", "--db", str(db), HINT)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert len(lines) == 3 + 1 + len(SAMPLES)  # box top, header, rule, rows, bottom
    assert all(len(line) <= 80 for line in lines)
    con = duckdb.connect(str(db), read_only=True)
    for vendor, total in con.execute("SELECT vendor_name, total FROM invoice").fetchall():
        assert re.search(rf"│ {re.escape(vendor)} +│ .* {total} │", res.stdout), (vendor, total)


def test_select_star_fits_80_columns_numbers_whole_ids_short(store: tuple[Path, str]) -> None:
    db, _ = store
    res = run("query", "--db", str(db), "SELECT * FROM invoice ORDER BY invoice_date")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), res.stdout
    assert len(lines) == 4 + len(SAMPLES)  # one line per row: nothing wraps
    con = duckdb.connect(str(db), read_only=True)
    ids = [r[0] for r in con.execute("SELECT doc_id FROM invoice ORDER BY invoice_date").fetchall()]
    for doc_id, line in zip(ids, lines[3:]):
        assert doc_id not in line and f"{doc_id[:12]}…" in line
    assert "…" in res.stdout  # long text (paths, names) is cut with an ellipsis, not wrapped
    assert "do not fit in 80 columns" in res.stderr and "total" in res.stderr


def test_wide_terminal_shows_more(store: tuple[Path, str]) -> None:
    db, _ = store
    res = run("query", "--db", str(db), "SELECT path, vendor_name, total FROM invoice", columns=200)
    for s in SAMPLES:
        assert s in res.stdout
    assert "…" not in res.stdout


def test_plain_and_markdown_print_values_in_full(store: tuple[Path, str]) -> None:
    db, _ = store
    sql = "SELECT doc_id, vendor_name, subtotal FROM invoice WHERE vendor_name = 'Lena Hoffmann'"
    doc_id = duckdb.connect(str(db), read_only=True).execute(sql).fetchone()[0]
    res = run("query", "--db", str(db), "--format", "plain", sql)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "doc_id" + " " * 60 + "vendor_name    subtotal",
        f"{doc_id}  Lena Hoffmann   2972.50",
    ]
    res = run("query", "--db", str(db), "--format", "markdown", sql)
    assert res.stdout.splitlines() == [
        "| doc_id | vendor_name | subtotal |",
        "|---|---|---:|",
        f"| {doc_id} | Lena Hoffmann | 2972.50 |",
    ]


def test_csv_writes_decimals_as_stored(store: tuple[Path, str]) -> None:
    db, _ = store
    res = run("query", "--db", str(db), "--format", "csv",
              "SELECT subtotal, total FROM invoice WHERE vendor_name = 'Lena Hoffmann'")
    assert list(csv.reader(io.StringIO(res.stdout))) == [["subtotal", "total"], ["2972.50", "3537.28"]]
