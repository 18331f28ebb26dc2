"""Fail fast where the cause is global: a dead or erroring server stops the run after a few documents, `docpipe
engines --base-url` asks the server, and a server's context limit lowers the image budget instead of failing."""

from __future__ import annotations

import socket
from pathlib import Path

from test_openai_engine import FAST, by_path, fault_server, ingest, invoices, runner  # noqa: F401

from docpipe.cli import app


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_refusing_server_stops_the_run_after_three_documents(tmp_path: Path) -> None:
    docs = invoices(tmp_path / "in", 7)
    db = tmp_path / "db.duckdb"
    code, out = ingest(docs, _dead_url(), db, "--model", "m", "--concurrency", "1")
    assert code == 1
    assert "stopped: the first 3 documents all failed in the openai engine" in out and "ConnectError" in out
    assert len(by_path(db)) == 3  # the other four were never tried: they are still to do
    code, out = ingest(docs, _dead_url(), db, "--model", "m", "--concurrency", "1")
    assert code == 1 and "stopped: the first 3" in out


def test_an_erroring_server_costs_three_documents_of_retries(fault_server, tmp_path: Path) -> None:
    srv = fault_server("--fail-first", "1000", "--fail-status", "500")
    docs = invoices(tmp_path / "in", 7)
    code, out = ingest(docs, srv.url, tmp_path / "db.duckdb", "--model", "fault-model", "--concurrency", "1")
    assert code == 1 and "stopped: the first 3 documents" in out and "HTTP 500" in out
    chats = srv.requests()  # the log holds chat requests
    per_doc = 1 + int(FAST["DOCPIPE_RETRIES"])
    assert 3 * per_doc <= len(chats) <= 4 * per_doc  # the engine keeps one more document in flight; 7 without


def test_input_failures_do_not_stop_a_run(fault_server, tmp_path: Path) -> None:
    srv = fault_server()
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        (folder / f"bad{i}.pdf").write_text("not a pdf")
    docs = invoices(folder, 2)
    code, out = ingest([folder], srv.url, tmp_path / "db.duckdb", "--model", "fault-model", "--concurrency", "1")
    assert "stopped" not in out
    got = by_path(tmp_path / "db.duckdb")
    assert [got[d.name][0] for d in docs] == ["ok", "ok"]


def _engines(*args: str) -> str:
    res = runner.invoke(app, ["engines", *args], env=FAST | {"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    return next(line for line in res.output.splitlines() if "│ openai" in line)


def test_engines_asks_the_server_and_checks_the_model(fault_server) -> None:
    srv = fault_server()
    line = _engines("--base-url", srv.url)
    assert "│ yes" in line and "serves fault-model" in line
    line = _engines("--base-url", srv.url, "--model", "fault-model")
    assert "│ yes" in line
    line = _engines("--base-url", srv.url, "--model", "gemma-4-e4b")
    assert "│ no" in line and "does not serve model 'gemma-4-e4b' (it serves: fault-model)" in line
    dead = _dead_url()
    line = _engines("--base-url", dead)
    assert "│ no" in line and f"{dead} does not answer: ConnectError" in line


def test_a_context_too_small_lowers_the_image_budget_and_says_so(fault_server, tmp_path: Path) -> None:
    from docpipe.engines.vlm.prompting import render_spec_for_tokens

    limit = render_spec_for_tokens(280).max_pixels  # the server's context holds a page at 280 tokens, no more
    srv = fault_server("--max-image-pixels", str(limit))
    docs = invoices(tmp_path / "in", 3)
    db = tmp_path / "db.duckdb"
    code, out = ingest(docs, srv.url, db, "--model", "fault-model", "--concurrency", "1", "--image-tokens", "1120")
    assert code == 0, out
    got = by_path(db)
    assert [got[d.name][0] for d in docs] == ["ok", "ok", "ok"]
    assert "image budget lowered to 280 tokens a page" in got["inv0.pdf"][6]  # recorded with the first result
    assert "longer than the maximum model length" in got["inv0.pdf"][6]
    sent = [(r["status"], sum(w * h for _, w, h in r["images"])) for r in srv.requests()]
    # 1120 and 560 refused (for each of the two documents the engine keeps in flight); the rest start at 280
    assert [s for s, _ in sent].count(400) == 4 and [s for s, _ in sent].count(200) == 3
    assert all(px <= limit for s, px in sent if s == 200)
    assert "sending 280 from now on" in out
