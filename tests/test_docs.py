"""The README is the front door: every command and every ingest option must be documented there."""

from pathlib import Path

import typer.main

from docpipe.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_command_is_in_the_readme() -> None:
    group = typer.main.get_group(app)
    for name in group.commands:
        assert f"docpipe {name}" in README, f"`docpipe {name}` is not documented in README.md"


def test_every_ingest_option_is_in_the_readme() -> None:
    ingest = typer.main.get_group(app).commands["ingest"]
    for param in ingest.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert opt in README, f"ingest option {opt} is not documented in README.md"


def test_every_command_has_help_with_an_example_or_description() -> None:
    for name, cmd in typer.main.get_group(app).commands.items():
        assert cmd.help and len(cmd.help) > 20, name


def test_readme_sql_examples_run(tmp_path) -> None:
    """Every statement in the README's ```sql block runs against a real store."""
    import re

    from conftest import INVOICE_TEXT, make_pdf
    from typer.testing import CliRunner

    from docpipe.store import Store

    pdf = make_pdf(tmp_path / "inv.pdf", [INVOICE_TEXT])
    db = tmp_path / "r.duckdb"
    res = CliRunner().invoke(app, ["ingest", str(pdf), "--db", str(db), "-e", "offline", "-w", "1", "-q"])
    assert res.exit_code == 0, res.output
    statements = []
    for block in re.findall(r"```sql\n(.*?)```", README, re.S):
        for stmt in block.split(";"):
            sql = "\n".join(line for line in stmt.splitlines() if not line.strip().startswith("--")).strip()
            if sql:
                statements.append(sql)
    assert len(statements) >= 5
    with Store.open(db, read_only=True) as store:
        for sql in statements:
            store.query(sql)


def test_readme_python_examples_run(tmp_path, monkeypatch) -> None:
    """The README's ```python blocks run as written, in a folder with an invoices/ subfolder."""
    import re

    from conftest import INVOICE_TEXT, make_pdf

    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    (tmp_path / "invoices").mkdir()
    make_pdf(tmp_path / "invoices" / "inv.pdf", [INVOICE_TEXT])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCPIPE_CONFIG", str(tmp_path / "none.toml"))
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "books.duckdb").exists()


def test_readme_toml_examples_are_valid_settings(tmp_path, monkeypatch) -> None:
    """Every ```toml block of the README loads as docpipe.toml, each value landing where it says."""
    import re

    from docpipe.config import Settings

    blocks = re.findall(r"```toml\n(.*?)```", README, re.S)
    assert blocks
    for block in blocks:
        (tmp_path / "docpipe.toml").write_text(block)
        monkeypatch.setenv("DOCPIPE_CONFIG", str(tmp_path / "docpipe.toml"))
        settings = Settings.load()
        assert any(row.origin == "toml" for row in settings.explain())
