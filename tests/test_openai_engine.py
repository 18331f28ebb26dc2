"""`docpipe ingest --engine openai` end to end against real HTTP servers on 127.0.0.1.

Two kinds of server, both real processes: ``transformers serve`` over the tiny random Gemma 4 (the contract with
a real implementation that ignores ``response_format``: garbage is stored as invalid with its raw text and
errors), and tests/servers/fault_server.py, which misbehaves on purpose (refused response formats, 429s, slowness,
garbage, dying mid-batch). Assertions are on what a user sees: DuckDB rows, exit codes, and what reached the server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import make_pdf, make_scan
from typer.testing import CliRunner

from docpipe.cli import app
from docpipe.store import Store

SERVERS = Path(__file__).parent / "servers"
ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

#: Quick retries so failure paths take a second, not minutes; no stray config from the environment.
FAST = {"DOCPIPE_BACKOFF_S": "0.05", "DOCPIPE_RETRIES": "2", "DOCPIPE_TIMEOUT_S": "10",
        "DOCPIPE_CONFIG": "/nonexistent/docpipe.toml", "DOCPIPE_BASE_URL": None, "DOCPIPE_MODEL": None,
        "DOCPIPE_CONCURRENCY": None, "DOCPIPE_MAX_TOKENS": None}


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    log: Path

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@pytest.fixture
def fault_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*flags: str) -> Server:
        log = tmp_path / f"server{len(started)}.jsonl"
        proc = subprocess.Popen([sys.executable, str(SERVERS / "fault_server.py"), "--port", "0", "--log", str(log),
                                 "--decode-images", *flags], stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("PORT "), line
        srv = Server(proc, f"http://127.0.0.1:{int(line.split()[1])}/v1", log)
        started.append(srv)
        return srv

    yield start
    for s in started:
        s.proc.kill()
        s.proc.wait()


def invoices(folder: Path, n: int, pages: int = 1, prefix: str = "INV") -> list[Path]:
    """n born-digital PDFs whose text carries the number and total the fault server reads back."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        text = f"ACME Tools Ltd\nInvoice no: {prefix}-{i}\nDate: 2025-03-05\nTotal: {10 + i}.50\nThank you."
        out.append(make_pdf(folder / f"{prefix.lower()}{i}.pdf", [text] * pages))
    return out


def ingest(paths: list[Path], url: str, db: Path, *args: str, env: dict[str, str | None] | None = None
           ) -> tuple[int, str]:
    res = runner.invoke(app, ["ingest", *map(str, paths), "--engine", "openai", "--base-url", url,
                              "--db", str(db), "-q", *args], env=FAST | (env or {}))
    return res.exit_code, res.output


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with Store.open(db, read_only=True) as s:
        return s.query(sql)[1]


def by_path(db: Path) -> dict[str, tuple[Any, ...]]:
    """file name -> (status, reason, data, raw_text, method, thinking, errors)"""
    got = rows(db, "SELECT d.path, e.status, e.reason, e.data, e.raw_text, e.method, e.thinking, e.errors "
                   "FROM extractions e JOIN documents d USING (doc_id) ORDER BY d.path")
    return {Path(r[0]).name: r[1:] for r in got}


# -- the happy path -------------------------------------------------------------------------------------------------

def test_extracts_valid_rows_with_images_at_the_token_budget(fault_server, tmp_path: Path) -> None:
    srv = fault_server()
    docs = invoices(tmp_path / "in", 3) + invoices(tmp_path / "in", 1, pages=10, prefix="LONG")
    scan = make_scan(tmp_path / "in" / "scan.png", "Invoice no: SCAN-1\nTotal: 99.00")
    code, out = ingest([tmp_path / "in"], srv.url, tmp_path / "db.duckdb", "--model", "fault-model",
                       "--summarize", "--concurrency", "3")
    assert code == 0, out
    got = by_path(tmp_path / "db.duckdb")
    assert {k: v[0] for k, v in got.items()} == {p.name: "ok" for p in [*docs, scan]}
    invoice = rows(tmp_path / "db.duckdb", "SELECT path, invoice_number, total FROM invoice ORDER BY path")
    assert [(Path(p).name, n, t and float(t)) for p, n, t in invoice] == [
        ("inv0.pdf", "INV-0", 10.5), ("inv1.pdf", "INV-1", 11.5), ("inv2.pdf", "INV-2", 12.5),
        ("long0.pdf", "LONG-0", 10.5), ("scan.png", None, None)]  # a scan has no text layer to send
    assert got["inv0.pdf"][4] == "json_schema"
    summaries = dict(rows(tmp_path / "db.duckdb", "SELECT d.path, s.summary FROM summaries s JOIN documents d "
                                                  "USING (doc_id)"))
    assert summaries[str(docs[0])].startswith("A test invoice. Invoice no: INV-0")

    reqs = srv.requests()
    extraction = [r for r in reqs if not r["summary"]]
    # 10 pages -> two requests of at most 8 pages; the rest one request each
    assert sorted(len(r["images"]) for r in extraction) == [1, 1, 1, 1, 2, 8]
    for r in extraction:
        assert r["model"] == "fault-model" and r["response_format"] == "json_schema"
        assert r["chat_template_kwargs"] == {"enable_thinking": False}
        for fmt, w, h in r["images"]:
            assert fmt == "jpeg" and w * h <= 1120 * 9 * 256
    a4 = [(w, h) for r in extraction for _, w, h in r["images"] if len(r["images"]) == 1]
    assert all(abs(w / h - 595.28 / 841.89) < 0.01 for w, h in a4)  # aspect kept
    assert max(w * h for w, h in a4) > 0.95 * 1120 * 9 * 256  # the budget is used, not a fixed DPI
    # one summary per page group, and for the 10-page document (two groups) a summary of the two: 4 + 2 + 1
    assert len([r for r in reqs if r["summary"]]) == 7

    code, out = ingest([tmp_path / "in"], srv.url, tmp_path / "db.duckdb", "--model", "fault-model")
    assert code == 0 and len(srv.requests()) == len(reqs)  # re-run: nothing sent again


def test_thinking_is_requested_and_stripped(fault_server, tmp_path: Path) -> None:
    inline, field = fault_server("--thinking", "inline"), fault_server("--thinking", "field")
    for srv, name in ((inline, "a"), (field, "b")):
        db = tmp_path / f"{name}.duckdb"
        code, out = ingest(invoices(tmp_path / name, 1), srv.url, db, "--thinking")
        assert code == 0, out
        status, _, data, raw, _, thinking, _ = next(iter(by_path(db).values()))
        assert status == "ok" and json.loads(data)["invoice_number"] == "INV-0"
        assert thinking == "I looked at the page carefully." and raw is None
        assert srv.requests()[0]["chat_template_kwargs"] == {"enable_thinking": True}
        assert srv.requests()[0]["model"] == "fault-model"  # no --model: the server's only model


# -- structured output fallbacks and repair --------------------------------------------------------------------------

def test_json_schema_refused_falls_back_to_json_mode_once_per_server(fault_server, tmp_path: Path) -> None:
    srv = fault_server("--refuse-json-schema")
    code, out = ingest(invoices(tmp_path / "in", 3), srv.url, tmp_path / "db.duckdb", "--concurrency", "1")
    assert code == 0, out
    assert {v[0] for v in by_path(tmp_path / "db.duckdb").values()} == {"ok"}
    assert {v[4] for v in by_path(tmp_path / "db.duckdb").values()} == {"json_object"}
    assert [(r["response_format"], r["status"]) for r in srv.requests()] == [
        ("json_schema", 400), ("json_object", 200), ("json_object", 200), ("json_object", 200)]


def test_no_response_format_at_all_falls_back_to_the_prompt(fault_server, tmp_path: Path) -> None:
    srv = fault_server("--refuse-json-schema", "--refuse-json-object")
    code, out = ingest(invoices(tmp_path / "in", 2), srv.url, tmp_path / "db.duckdb", "--concurrency", "1")
    assert code == 0, out
    got = by_path(tmp_path / "db.duckdb")
    assert [(v[0], v[4], json.loads(v[2])["invoice_number"]) for v in got.values()] == [
        ("ok", "prompt", "INV-0"), ("ok", "prompt", "INV-1")]
    assert [r["response_format"] for r in srv.requests()] == ["json_schema", "json_object", None, None]


def test_an_answer_that_breaks_the_schema_is_repaired_once(fault_server, tmp_path: Path) -> None:
    srv = fault_server("--invalid-first")
    code, out = ingest(invoices(tmp_path / "in", 1), srv.url, tmp_path / "db.duckdb")
    assert code == 0, out
    status, _, data, raw, method, _, _ = by_path(tmp_path / "db.duckdb")["inv0.pdf"]
    assert status == "ok" and method == "json_schema+repair" and json.loads(data)["invoice_number"] == "INV-0"
    assert [r["repair"] for r in srv.requests()] == [False, True]


def test_garbage_is_stored_invalid_with_raw_text_and_errors(fault_server, tmp_path: Path) -> None:
    srv = fault_server("--garbage")
    docs = invoices(tmp_path / "in", 2)
    code, out = ingest(docs, srv.url, tmp_path / "db.duckdb")
    assert code == 0, out  # invalid is a result, not a failure
    for status, reason, data, raw, _, _, errors in by_path(tmp_path / "db.duckdb").values():
        assert status == "invalid" and data is None
        assert raw == "<<garbage>> not json {{{ at all"
        assert "not valid JSON" in reason and "repair" in reason and json.loads(errors)[0]["stage"] == "validate"
    assert sorted(r["repair"] for r in srv.requests()) == [False, False, True, True]
    code, _ = ingest(docs, srv.url, tmp_path / "db.duckdb")
    assert len(srv.requests()) == 4  # invalid is final: not retried without --force


# -- transient trouble -----------------------------------------------------------------------------------------------

def test_429_and_503_are_retried(fault_server, tmp_path: Path) -> None:
    busy, down = fault_server("--fail-first", "2", "--fail-status", "429"), fault_server("--fail-first", "1",
                                                                                            "--fail-status", "503")
    for srv, name in ((busy, "a"), (down, "b")):
        code, out = ingest(invoices(tmp_path / name, 1), srv.url, tmp_path / f"{name}.duckdb")
        assert code == 0, out
        assert [v[0] for v in by_path(tmp_path / f"{name}.duckdb").values()] == ["ok"]
    assert [r["status"] for r in busy.requests()] == [429, 429, 200]
    assert [r["status"] for r in down.requests()] == [503, 200]


def test_slow_server_times_out_fails_the_document_and_a_later_run_picks_it_up(fault_server, tmp_path: Path) -> None:
    slow = fault_server("--delay", "3")
    docs = invoices(tmp_path / "in", 2)
    db = tmp_path / "db.duckdb"
    t = time.perf_counter()
    code, out = ingest(docs, slow.url, db, env={"DOCPIPE_TIMEOUT_S": "0.4", "DOCPIPE_RETRIES": "1"})
    assert code == 1 and time.perf_counter() - t < 6
    got = by_path(db)
    assert [v[0] for v in got.values()] == ["failed", "failed"]
    assert all("timeout" in v[1] and slow.url in v[1] and "2 attempts" in v[1] for v in got.values())
    healthy = fault_server()
    code, out = ingest(docs, healthy.url, db)
    assert code == 0, out
    assert [v[0] for v in by_path(db).values()] == ["ok", "ok"]
    assert rows(db, "SELECT count(*) FROM extractions") == [(2,)]


def test_server_dying_mid_batch_keeps_done_documents_and_the_rerun_completes(fault_server, tmp_path: Path) -> None:
    dying = fault_server("--die-after", "3")
    docs = invoices(tmp_path / "in", 6)
    db = tmp_path / "db.duckdb"
    code, out = ingest(docs, dying.url, db, "--concurrency", "1")
    assert code == 1
    assert dying.proc.wait(timeout=5) == 3  # it really died
    statuses = [v[0] for v in by_path(db).values()]
    assert sorted(statuses) == ["failed"] * 3 + ["ok"] * 3
    failed = [v[1] for v in by_path(db).values() if v[0] == "failed"]
    assert all(dying.url in r and ("Connect" in r or "Protocol" in r or "Read" in r) for r in failed), failed
    healthy = fault_server()
    code, out = ingest(docs, healthy.url, db, "--concurrency", "1")
    assert code == 0, out
    assert len(healthy.requests()) == 3  # only the failed ones were sent again
    assert rows(db, "SELECT status, count(*) FROM extractions GROUP BY ALL") == [("ok", 6)]
    assert rows(db, "SELECT count(*) FROM documents") == [(6,)]


def test_two_base_urls_share_the_load(fault_server, tmp_path: Path) -> None:
    a, b = fault_server("--delay", "0.1"), fault_server("--delay", "0.1")
    code, out = ingest(invoices(tmp_path / "in", 8), f"{a.url},{b.url}", tmp_path / "db.duckdb",
                       "--concurrency", "4", "--model", "m")
    assert code == 0, out
    assert [v[0] for v in by_path(tmp_path / "db.duckdb").values()] == ["ok"] * 8
    assert len(a.requests()) >= 2 and len(b.requests()) >= 2 and len(a.requests()) + len(b.requests()) == 8


def test_refused_request_fails_with_the_servers_reason(fault_server, tmp_path: Path) -> None:
    srv = fault_server("--api-key", "s3cret")
    db = tmp_path / "db.duckdb"
    code, _ = ingest(invoices(tmp_path / "in", 1), srv.url, db, "--model", "m", env={"OPENAI_API_KEY": "wrong"})
    assert code == 1
    status, reason = next(iter(by_path(db).values()))[:2]
    assert status == "failed" and "HTTP 401: invalid API key" in reason
    assert len(srv.requests()) == 1  # a 401 is not retried
    code, out = ingest(invoices(tmp_path / "in", 1), srv.url, db, "--model", "m", env={"OPENAI_API_KEY": "s3cret"})
    assert code == 0, out


def test_no_base_url_says_how_to_configure_one(tmp_path: Path) -> None:
    res = runner.invoke(app, ["ingest", str(tmp_path), "--engine", "openai", "--db", str(tmp_path / "x.duckdb")],
                        env=FAST)
    assert res.exit_code == 1
    assert "--base-url" in res.output and "DOCPIPE_BASE_URL" in res.output


def test_config_file_supplies_the_server(fault_server, tmp_path: Path) -> None:
    srv = fault_server()
    cfg = tmp_path / "docpipe.toml"
    cfg.write_text(f'[openai]\nbase_url = "{srv.url}"\nmodel = "from-file"\nimage_format = "png"\n')
    res = runner.invoke(app, ["ingest", str(invoices(tmp_path / "in", 1)[0]), "--engine", "openai",
                              "--db", str(tmp_path / "db.duckdb"), "-q"], env=FAST | {"DOCPIPE_CONFIG": str(cfg)})
    assert res.exit_code == 0, res.output
    (req,) = srv.requests()
    assert req["model"] == "from-file" and req["images"][0][0] == "png"


def test_ctrl_c_keeps_finished_documents_and_the_rerun_does_the_rest(fault_server, tmp_path: Path) -> None:
    srv = fault_server("--delay", "0.4")
    docs = invoices(tmp_path / "in", 8)
    db = tmp_path / "db.duckdb"
    env = {k: v for k, v in (os.environ | FAST).items() if v is not None}
    proc = subprocess.Popen([sys.executable, "-m", "docpipe", "ingest", str(tmp_path / "in"), "--engine", "openai",
                             "--base-url", srv.url, "--db", str(db), "-q", "--concurrency", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while len([r for r in srv.requests() if r["status"] == 200]) < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # the third request is now in flight
    t = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130, out
    assert time.perf_counter() - t < 3  # did not wait for the rest of the batch
    done = [v[0] for v in by_path(db).values()]
    assert 2 <= len(done) < 8 and set(done) == {"ok"}
    time.sleep(0.5)  # the cancelled request's server thread finishes and logs it
    before = len(srv.requests())
    code, out = ingest(docs, srv.url, db, "--concurrency", "4")
    assert code == 0, out
    assert rows(db, "SELECT status, count(*) FROM extractions GROUP BY ALL") == [("ok", 8)]
    assert len(srv.requests()) - before == 8 - len(done)


# -- a real server implementation: transformers serve over a tiny random Gemma 4 --------------------------------------

HAVE_SERVE = all(importlib.util.find_spec(m) for m in ("transformers", "torch", "torchvision", "fastapi", "uvicorn"))


@pytest.fixture(scope="module")
def tiny_gemma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not HAVE_SERVE:
        pytest.skip("needs pip install 'transformers[serving]' accelerate torch torchvision")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path_factory.mktemp("tiny-gemma") / "model"
    log = open(folder.parent / "serve.log", "w")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, str(SERVERS / "tiny_gemma_serve.py"), str(folder), str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("transformers serve did not start:\n" + (folder.parent / "serve.log").read_text()[-3000:])
        time.sleep(0.3)
    yield f"{url}/v1"
    proc.kill()
    proc.wait()
    log.close()


def test_transformers_serve_tiny_gemma_end_to_end(tiny_gemma_server: str, tmp_path: Path) -> None:
    """Random weights answer garbage and this server ignores response_format: the document must be stored as
    invalid, with the raw answer and the reason, after a repair request; nothing is lost or crashes."""
    db = tmp_path / "db.duckdb"
    code, out = ingest(invoices(tmp_path / "in", 1), tiny_gemma_server, db, "--image-tokens", "280",
                       env={"DOCPIPE_MAX_TOKENS": "24", "DOCPIPE_TIMEOUT_S": "60"})
    assert code == 0, out
    (status, reason, data, raw, method, _, errors), = by_path(db).values()
    assert status == "invalid" and raw and data is None
    assert "repair" in reason and json.loads(errors)
    assert method == "json_schema+repair"
    assert rows(db, "SELECT model, json_extract(timings, '$.requests')::INT FROM extractions")[0][1] == 2
    (page,) = rows(db, "SELECT width_px, height_px FROM pages")
    assert page[0] * page[1] <= 280 * 9 * 256


def test_a_multi_group_document_is_merged_by_the_one_rule(fault_server, tmp_path: Path) -> None:
    """One request per page: the invoice number comes from the first group that has it, the total from the last
    (a page-1 subtotal line must not become the document's total), as with every VLM backend."""
    srv = fault_server()
    pdf = make_pdf(tmp_path / "three.pdf", [
        "ACME Tools Ltd\nInvoice no: MG-1\nDate: 2025-03-05\nTotal: 10.00 carried over to the next page",
        "ACME Tools Ltd\nMore items on this page, continued from the first page of the invoice.",
        "ACME Tools Ltd\nInvoice no: MG-1-P3\nTotal: 99.00\nThank you for your business."])
    db = tmp_path / "db.duckdb"
    code, out = ingest([pdf], srv.url, db, "--model", "m", env={"DOCPIPE_PAGES_PER_REQUEST": "1"})
    assert code == 0, out
    assert len([r for r in srv.requests() if not r["summary"]]) == 3
    assert rows(db, "SELECT invoice_number, total::DOUBLE FROM invoice") == [("MG-1", 99.0)]
    assert rows(db, "SELECT CAST(timings->>'page_groups' AS DOUBLE) FROM extractions") == [(3.0,)]
