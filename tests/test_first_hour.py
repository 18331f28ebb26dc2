"""A newcomer's first hour: typos, empty input and odd schemas get one clear line; output says things once."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from conftest import INVOICE_TEXT, make_pdf
from typer.testing import CliRunner

from docpipe.cli import app


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "100"})


def ingest(*args: str):
    return run("ingest", *args, "-e", "offline", "-w", "1")


def test_empty_query_is_a_one_line_error(invoice_pdf: Path, db: Path) -> None:
    assert ingest(str(invoice_pdf), "--db", str(db)).exit_code == 0
    res = run("query", "--db", str(db), "  ")
    assert res.exit_code == 1 and res.output.startswith("error: no SQL given") and res.output.count("\n") == 1


def test_json_schema_whose_root_is_a_list(invoice_pdf: Path, db: Path, tmp_path: Path) -> None:
    arr = tmp_path / "arr.json"
    arr.write_text("[1, 2]")
    res = ingest(str(invoice_pdf), "--db", str(db), "--schema", str(arr))
    assert res.exit_code == 1 and "root must be an object" in res.output and "Traceback" not in res.output


def test_a_model_named_like_a_sql_keyword_gets_a_quoted_view(invoice_pdf: Path, db: Path, tmp_path: Path) -> None:
    (tmp_path / "orders.py").write_text("from decimal import Decimal\nfrom pydantic import BaseModel\n"
                                        "class Order(BaseModel):\n    total: Decimal | None = None\n")
    res = ingest(str(invoice_pdf), "--db", str(db), "--schema", f"{tmp_path / 'orders.py'}:Order")
    assert res.exit_code == 0, res.output
    assert """try: docpipe query --db""" in res.output and """'SELECT total FROM "order"'""" in res.output
    res = run("query", "--db", str(db), "--format", "csv", 'SELECT count(*) AS n FROM "order"')
    assert res.stdout.splitlines() == ["n", "1"], res.output


def test_a_failed_schema_registration_leaves_nothing_registered(invoice_pdf: Path, db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"title": "note", "type": "object", "properties": {"unit price": {"type": "number"}}}')
    res = ingest(str(invoice_pdf), "--db", str(db), "--schema", str(bad))
    assert res.exit_code == 1 and "'unit price' cannot be a column" in res.output and "Traceback" not in res.output
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM schemas").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'note'").fetchone() == (0,)


def test_a_schema_file_with_several_models_lists_them(invoice_pdf: Path, db: Path, tmp_path: Path) -> None:
    (tmp_path / "po.py").write_text(
        "from pydantic import BaseModel\nclass Line(BaseModel):\n    text: str | None = None\n"
        "class PurchaseOrder(BaseModel):\n    number: str | None = None\n    lines: list[Line] = []\n")
    res = ingest(str(invoice_pdf), "--db", str(db), "--schema", str(tmp_path / "po.py"))
    assert res.exit_code == 1
    assert "defines 2 models (Line, PurchaseOrder)" in res.output and "po.py:PurchaseOrder" in res.output


def test_a_missing_path_is_a_typo_not_a_failed_file(tmp_path: Path, db: Path) -> None:
    res = ingest(str(tmp_path / "nope"), "--db", str(db))
    assert res.exit_code == 2 and res.output == f"error: no such file or folder: {tmp_path / 'nope'}\n"
    assert not db.exists()


def test_an_empty_folder_says_there_is_nothing_to_ingest(tmp_path: Path, db: Path) -> None:
    (tmp_path / "empty").mkdir()
    res = ingest(str(tmp_path / "empty"), "--db", str(db))
    assert res.exit_code == 1 and "no files under" in res.output and "try:" not in res.output
    assert not db.exists()


def _bad_folder(tmp_path: Path) -> Path:
    import pymupdf

    folder = tmp_path / "inbox"
    folder.mkdir()
    good = make_pdf(folder / "good.pdf", [INVOICE_TEXT])
    (folder / "zero.pdf").write_bytes(b"")
    (folder / "notes.pdf").write_text("just text, named like a PDF\n")
    pymupdf.open(good).save(folder / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw",
                            owner_pw="o")
    return folder


def test_each_bad_file_is_reported_once_without_doubled_words(tmp_path: Path, db: Path) -> None:
    folder = _bad_folder(tmp_path)
    res = ingest(str(folder), "--db", str(db))
    assert res.exit_code == 1
    out = res.output
    for name in ("zero.pdf", "notes.pdf", "locked.pdf"):
        assert out.count(name) == 1, (name, out)
    assert not re.search(r"\b(\w+) \1\b", out), out  # "empty empty file", "encrypted encrypted PDF"
    header = next(line for line in out.splitlines() if "┃ ok" in line)
    assert [c.strip() for c in header.strip("┃").split("┃")][:7] == [
        "ok", "invalid", "failed", "empty", "encrypted", "unsupported", "skipped"]
    row = next(line for line in out.splitlines() if line.startswith("│"))
    assert [c.strip() for c in row.strip("│").split("│")][:7] == ["1", "0", "0", "1", "1", "1", "0"]


def test_quiet_prints_only_what_is_not_ok(tmp_path: Path, db: Path) -> None:
    folder = _bad_folder(tmp_path)
    res = ingest(str(folder), "--db", str(db), "-q")
    lines = res.output.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [str(folder / n) for n in
                                                            ("locked.pdf", "notes.pdf", "zero.pdf")]
    assert ingest(str(folder / "good.pdf"), "--db", str(db), "-q").output == ""


def test_text_of_a_page_turned_by_rotate_reads_in_order(tmp_path: Path, db: Path) -> None:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.set_rotation(90)  # a landscape page: stored portrait, turned for display, text upright to the reader
    text = "ACME Tools Ltd\nInvoice no: 7\nLeft col    Right col\nTotal: 30.35 EUR\nThank you"
    page.insert_textbox(pymupdf.Rect(50, 50, 800, 500) * page.derotation_matrix, text, fontsize=12, rotate=90)
    doc.save(tmp_path / "landscape.pdf")
    assert ingest(str(tmp_path / "landscape.pdf"), "--db", str(db), "-q").exit_code == 0
    stored = duckdb.connect(str(db), read_only=True).execute("SELECT rotation, text FROM pages").fetchone()
    assert stored == (90, text + "\n")


def test_version_short_help_and_every_option_explained() -> None:
    import typer.main

    res = run("--version")
    assert res.exit_code == 0 and re.fullmatch(r"docpipe \S+\n", res.stdout)
    res = run("ingest", "-h")
    assert res.exit_code == 0 and "--schema" in res.stdout
    for name, cmd in typer.main.get_group(app).commands.items():
        assert "Example:" in (cmd.help or ""), f"`docpipe {name} --help` has no example"
        for p in cmd.params:
            if p.param_type_name == "option":
                assert getattr(p, "help", None), f"docpipe {name} {p.opts[0]} has no help"
