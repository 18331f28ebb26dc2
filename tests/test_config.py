"""Settings: flag > DOCPIPE_* variable > docpipe.toml > default, with typed engine settings, and `docpipe config`
telling where each value came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docpipe.cli import app
from docpipe.config import Settings
from docpipe.errors import ConfigError

runner = CliRunner()


@pytest.fixture
def toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A docpipe.toml in an empty working directory, and no DOCPIPE_* variables from outside."""
    import os

    for name in [n for n in os.environ if n.upper().startswith("DOCPIPE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "docpipe.toml"
    path.write_text('workers = 3\nmodel = "from-toml"\nengine = "offline"\n\n'
                    '[openai]\nconcurrency = 5\ntimeout_s = 30\n\n[gemma]\nbatch_size = 8\nvision_chunk = 4\n')
    return path


def test_flag_beats_env_beats_toml_beats_default(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCPIPE_MODEL", "from-env")
    monkeypatch.setenv("DOCPIPE_WORKERS", "4")
    monkeypatch.setenv("DOCPIPE_GEMMA", '{"batch_size": 16}')
    monkeypatch.setenv("DOCPIPE_CONCURRENCY", "6")  # the openai engine's flat name, as docs/serving.md has it
    s = Settings.load({"workers": 1, "vision_chunk": 2})

    assert (s.workers, s.origin("workers")) == (1, "flag")
    assert (s.model, s.origin("model")) == ("from-env", "env")
    assert (s.engine, s.origin("engine")) == ("offline", "toml")
    assert (s.schema, s.origin("schema")) == ("invoice", "default")
    assert (s.gemma.vision_chunk, s.origin("gemma.vision_chunk")) == (2, "flag")
    assert (s.gemma.batch_size, s.origin("gemma.batch_size")) == (16, "env")
    assert (s.gemma.max_new_tokens, s.origin("gemma.max_new_tokens")) == (2048, "default")
    assert (s.openai.concurrency, s.origin("openai.concurrency")) == (6, "env")
    assert (s.openai.timeout_s, s.origin("openai.timeout_s")) == (30.0, "toml")


def test_engines_receive_the_typed_settings(toml: Path) -> None:
    from docpipe.engines.gemma.settings import engine_settings
    from docpipe.engines.openai.config import load_config

    opts = Settings.load({"base_url": "http://gpu:8000", "max_tokens": 100}).engine_options()
    assert engine_settings(opts)["batch_size"] == 8 and engine_settings(opts)["vision_chunk"] == 4
    cfg = load_config(opts)
    assert (cfg.base_urls, cfg.model, cfg.concurrency, cfg.max_tokens) == (("http://gpu:8000/v1",), "from-toml", 5, 100)


def test_bad_values_are_one_line_errors_naming_setting_and_source(toml: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCPIPE_GEMMA", '{"decode": "fast"}')
    with pytest.raises(ConfigError, match=r"setting gemma \(from env\): decode must be 'loop' or 'generate', "
                                          r"not 'fast'"):
        Settings.load()
    monkeypatch.delenv("DOCPIPE_GEMMA")
    toml.write_text("wokers = 3\n")
    with pytest.raises(ConfigError, match=r"setting wokers \(from toml\): no such setting"):
        Settings.load()
    toml.write_text("workers = [\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        Settings.load()
    with pytest.raises(KeyError):
        Settings.load({"no_such_setting": 1})


def test_docpipe_config_prints_values_and_origins(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCPIPE_DB", "env.duckdb")
    res = runner.invoke(app, ["config", "--json", "--set", "batch_size=32", "--set", "engine=openai"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["engine"] == {"value": "openai", "from": "flag"}
    assert got["gemma.batch_size"] == {"value": 32, "from": "flag"}
    assert got["db"] == {"value": "env.duckdb", "from": "env"}
    assert got["workers"] == {"value": 3, "from": "toml"}
    assert got["openai.retries"] == {"value": 4, "from": "default"}

    table = runner.invoke(app, ["config"])
    assert table.exit_code == 0 and "gemma.vision_chunk" in table.output and "toml" in table.output


def test_cli_refuses_unknown_engine_and_unknown_setting(toml: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["ingest", str(tmp_path), "--engine", "nope", "-q"])
    assert res.exit_code == 1
    assert "unknown engine 'nope'; known: gemma, offline, openai" in res.output and ", auto" in res.output
    res = runner.invoke(app, ["config", "--set", "bacth_size=3"])
    assert res.exit_code == 2 and "no setting named 'bacth_size'" in res.output


def test_ingest_flags_and_toml_reach_the_run(toml: Path, tmp_path: Path) -> None:
    """docpipe.toml's engine and a --set land in the run the store records."""
    from conftest import INVOICE_TEXT, make_pdf

    from docpipe.store import Store

    pdf = make_pdf(tmp_path / "inv.pdf", [INVOICE_TEXT])
    res = runner.invoke(app, ["ingest", str(pdf), "-q", "--set", "max_pages=1", "--db", "x.duckdb"])
    assert res.exit_code == 0, res.output
    with Store.open(tmp_path / "x.duckdb", read_only=True) as store:
        assert store.query("SELECT engine, args->>'workers' FROM runs")[1] == [("offline", "3")]


def test_every_command_reads_the_database_docpipe_toml_names(toml: Path, tmp_path: Path) -> None:
    """`db` in docpipe.toml is where ingest writes and where query and status read, without --db."""
    from conftest import INVOICE_TEXT, make_pdf

    toml.write_text('db = "books.duckdb"\nengine = "offline"\nworkers = 1\n')
    pdf = make_pdf(tmp_path / "inv.pdf", [INVOICE_TEXT])
    assert runner.invoke(app, ["ingest", str(pdf), "-q"]).exit_code == 0
    assert (tmp_path / "books.duckdb").exists() and not (tmp_path / "docpipe.duckdb").exists()
    res = runner.invoke(app, ["query", "--format", "csv", "SELECT count(*) AS n FROM invoice"])
    assert res.exit_code == 0 and res.output.splitlines()[-1] == "1", res.output
    assert runner.invoke(app, ["status"]).exit_code == 0
    res = runner.invoke(app, ["query", "--db", "other.duckdb", "SELECT 1"])
    assert res.exit_code == 1 and "other.duckdb" in res.output


def test_an_engine_without_a_typed_model_gets_its_settings_by_kind(toml: Path) -> None:
    """vllm (like a plugin) reads [engines.vllm] and --set NAME=VALUE given with --engine vllm."""
    from docpipe.engines.vllm.engine import VllmBackend

    toml.write_text('[engines.vllm]\nvllm_batch = 32\n')
    s = Settings.load({"engine": "vllm", "pages_per_request": 4})
    assert s.engines["vllm"] == {"vllm_batch": 32, "pages_per_request": 4}
    assert (s.origin("engines.vllm.vllm_batch"), s.origin("engines.vllm.pages_per_request")) == ("toml", "flag")
    backend = VllmBackend(s.engine_options())
    assert backend.pages == 4 and backend.settings["vllm_batch"] == 32
