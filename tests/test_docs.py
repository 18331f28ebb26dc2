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


# -- README's command blocks run as shown ---------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def _fences(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block."""
    import re

    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)


def _normalise(lines: list[str]) -> list[str]:
    """What may differ between two honest runs: timings, the progress bar's state, widths that follow them, and
    why --engine auto did not pick a model engine (which extras and weights a machine has)."""
    import re

    out = []
    for line in lines:
        line = re.sub(r"^(engine: \S+ \([^)]*\)) - .*", r"\1 - …", line.rstrip())
        line = re.sub(r"^documents .*", "documents …", line)
        line = re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?", "<time>", line)  # when it ran
        line = re.sub(r"\b\d+\.\d\b", "#", line)  # seconds, pages/s (money has two decimals)
        line = re.sub(r"[━─]+", "─", line)
        out.append(re.sub(r" +", " ", line))
    return out


def _examples() -> list[tuple[str, list[str]]]:
    """Each ``$ docpipe ...`` line of README's output blocks, with the lines shown after it."""
    found: list[tuple[str, list[str]]] = []
    for lang, body in _fences(README):
        if lang or "$ docpipe" not in body:
            continue
        for line in body.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            elif found:
                found[-1][1].append(line)
    return found


def test_readme_output_blocks_are_what_docpipe_prints(tmp_path: Path) -> None:
    """Every ``$ docpipe`` example runs, in README order, against a fresh database in a folder holding the
    samples, in an 80-column terminal; what it prints must be what README shows (ignoring timings)."""
    import os
    import shlex
    import subprocess
    import sys

    (tmp_path / "samples").symlink_to(ROOT / "samples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCPIPE_")}
    env.update(COLUMNS="80", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    examples = _examples()
    assert len(examples) >= 5
    for command, shown in examples:
        args = shlex.split(command)
        assert args[0] == "docpipe", command
        res = subprocess.run([sys.executable, "-m", "docpipe", *args[1:]], cwd=tmp_path, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        got = res.stdout.rstrip("\n").splitlines() if res.stdout.strip() else []
        assert _normalise(got) == _normalise(shown), f"$ {command}\n" + res.stdout


def test_readme_shell_commands_parse() -> None:
    """Every docpipe command in README's ```sh blocks names real commands and options."""
    import shlex

    group = typer.main.get_command(app)
    checked = 0
    for lang, body in _fences(README):
        if lang != "sh":
            continue
        for line in body.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if "docpipe" not in words:
                    continue
                args = words[words.index("docpipe") + 1:]
                ctx = group.make_context("docpipe", list(args), resilient_parsing=True)
                sub = group.get_command(ctx, args[0])
                assert sub is not None, line
                sub.make_context(args[0], list(args[1:]), parent=ctx)  # raises on an unknown option or value
                checked += 1
    assert checked >= 5


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    section = ci.split("--- README test command", 1)[1]
    title = section.split('"')[1]
    assert f"## {title}" in README, f".ci/run points to a README section {title!r} that does not exist"
    command = section.splitlines()[1].strip()
    assert command.split(" && ")[0].replace(" -q ", " ") in README  # -q: CI logs stay short
