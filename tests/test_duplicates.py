"""Duplicates are data: every path of the same bytes is recorded and queryable; documents are read once."""

from __future__ import annotations

from pathlib import Path

import duckdb
from conftest import INVOICE_TEXT, make_pdf
from typer.testing import CliRunner

from docpipe.cli import app


def cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_identical_copies_are_listed_and_read_once(tmp_path: Path, db: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "archive").mkdir()
    a = make_pdf(tmp_path / "inbox" / "a.pdf", [INVOICE_TEXT])
    b = tmp_path / "archive" / "copy of a.pdf"
    b.write_bytes(a.read_bytes())
    code, out = cli("ingest", str(tmp_path / "inbox"), str(tmp_path / "archive"), "--db", str(db), "-e", "offline",
                    "-w", "1")
    assert code == 0, out
    assert "2 file(s): 1 to process, 1 identical copy of another file" in out and "already done" not in out
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM invoice").fetchone() == (1,)
    files = con.execute("SELECT path, doc_id, size, first_seen FROM files ORDER BY path").fetchall()
    assert [f[0] for f in files] == [str(b), str(a)]
    assert files[0][1] == files[1][1] and files[0][2] == a.stat().st_size and files[0][3] is not None
    dups = con.execute("SELECT path, copies FROM duplicates ORDER BY path").fetchall()
    assert dups == [(str(b), 2), (str(a), 2)]
    first = {p: f for p, _, _, f in files}
    con.close()

    c = tmp_path / "third.pdf"
    c.write_bytes(a.read_bytes())
    code, out = cli("ingest", str(tmp_path), "--db", str(db), "-e", "offline", "-w", "1")
    assert code == 0 and "0 to process, 1 already done" in out and "2 identical copies" in out, out
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*), any_value(copies) FROM duplicates").fetchone() == (3, 3)
    again = dict(con.execute("SELECT path, first_seen FROM files").fetchall())
    assert all(again[p] == f for p, f in first.items())  # seeing a path again keeps when it was first seen


def test_one_file_named_two_ways_is_one_place_not_a_copy(tmp_path: Path, db: Path, monkeypatch) -> None:
    # a scheduled job names the inbox by its absolute path; a person runs the same ingest from inside it
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a = make_pdf(inbox / "a.pdf", [INVOICE_TEXT])
    code, out = cli("ingest", str(inbox), "--db", str(db), "-e", "offline", "-w", "1")
    assert code == 0, out
    con = duckdb.connect(str(db), read_only=True)
    first_seen = con.execute("SELECT first_seen FROM files").fetchall()
    con.close()
    monkeypatch.chdir(inbox)
    code, out = cli("ingest", ".", "--db", str(db), "-e", "offline", "-w", "1")
    assert code == 0 and "1 already done" in out, out
    con = duckdb.connect(str(db), read_only=True)
    files = con.execute("SELECT path, location, first_seen FROM files").fetchall()
    assert [(f[1], f[2]) for f in files] == [(str(a), first_seen[0][0])]  # still the time it was first seen
    assert con.execute("SELECT count(*) FROM duplicates").fetchone() == (0,)
