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
