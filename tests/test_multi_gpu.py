"""``--gpus``: one engine process per card, documents pulled from one queue, results in the one store.

On a CPU the same processes run with ``--gpus cpu:N`` (the documented testing hook). What is checked is what a user
relies on: N processes store exactly the rows one process stores; a process killed with SIGKILL mid-run loses
nothing and repeats nothing; when every process is gone the run stops with one line and resumes; a wrong ``--gpus``
is one line before anything is written.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docpipe.cli import app
from docpipe.discover import discover
from docpipe.engines import DocJob, EngineOptions
from docpipe.engines.multi import MultiEngine, parse_gpus, select_gpus
from docpipe.errors import EngineError, EngineUnavailable
from docpipe.models import DocResult, SourceFile
from docpipe.pipeline import IngestOptions, ingest
from docpipe.schemas import resolve
from docpipe.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from conftest import INVOICE_TEXT, make_pdf  # noqa: E402

SAMPLES = Path(__file__).parent.parent / "samples"
DOCS = sorted(p for p in SAMPLES.iterdir() if p.suffix == ".pdf")  # born-digital: fast on a CPU


def rows(db: Path) -> list[tuple]:
    """What a user queries: each document's status, fields and method, and its pages' text."""
    with Store.open(db, read_only=True) as s:
        ext = s.query("SELECT doc_id, status, data, method, engine, model FROM extractions ORDER BY doc_id")[1]
        pages = s.query("SELECT doc_id, page_no, text, text_source FROM pages ORDER BY doc_id, page_no")[1]
    return ext + pages


def query(db: Path, sql: str) -> list[tuple]:
    with Store.open(db, read_only=True) as s:
        return s.query(sql)[1]


def cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


class KillAfter:
    """A pipeline Progress that SIGKILLs engine processes once ``after`` documents are done."""

    def __init__(self, after: int, how_many: int) -> None:
        self.after, self.how_many, self.done, self.killed = after, how_many, 0, []

    def engine_chosen(self, kind: str, why: str, model: str | None) -> None:
        pass

    def planned(self, total_files: int, todo: int, skipped: int, copies: int = 0) -> None:
        pass

    def document_done(self, result: DocResult) -> None:
        self.done += 1
        if self.done == self.after:
            for p in [c for c in mp.active_children() if c.name.startswith("docpipe-engine-")][:self.how_many]:
                os.kill(p.pid, signal.SIGKILL)
                self.killed.append(p.name)


# -- wrong values ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["all", "2", "0,2", "1,", "abc", "cpu:0", "cpu:x", "1,1", "0", "0,a"])
def test_wrong_gpus_values_are_one_line_errors_before_anything_is_written(tmp_path, value):
    db = tmp_path / "x.duckdb"
    code, out = cli("ingest", str(DOCS[0]), "-e", "offline", "--gpus", value, "--db", str(db), "-q")
    assert code == 1
    lines = [line for line in out.splitlines() if line.strip() and not line.startswith("W")]  # torch's import log
    assert len(lines) == 1 and lines[0].startswith(f"error: --gpus {value}: "), out
    assert not db.exists()


def test_gpus_are_chosen_among_the_visible_cards():
    visible = ["3", "5"]  # CUDA_VISIBLE_DEVICES=3,5 outside: docpipe's GPU 1 is the machine's card 5
    assert [(s.gpu, s.cuda_visible) for s in select_gpus("all", visible)] == [(0, "3"), (1, "5")]
    assert [(s.gpu, s.cuda_visible) for s in select_gpus("1", visible)] == [(0, "3")]
    assert [(s.gpu, s.cuda_visible) for s in select_gpus("1,", visible)] == [(1, "5")]
    assert [(s.gpu, s.cuda_visible) for s in select_gpus("1,0", visible)] == [(1, "5"), (0, "3")]
    with pytest.raises(EngineUnavailable, match=r"asks for 3 GPUs; 2 visible \(0, 1\)"):
        select_gpus("3", visible)
    with pytest.raises(EngineUnavailable, match="there is no GPU 2; visible: 0, 1"):
        select_gpus("0,2", visible)
    assert [(s.gpu, s.cuda_visible, s.label) for s in parse_gpus("cpu:2")] == [(None, "", "cpu:0"),
                                                                               (None, "", "cpu:1")]


def test_gpus_is_a_setting_of_the_api_the_environment_and_set(tmp_path, monkeypatch):
    import docpipe

    report = docpipe.ingest(DOCS[:2], engine="offline", db=tmp_path / "a.duckdb", gpus="cpu:2", workers=1)
    assert report.counts["ok"] == 2
    assert query(tmp_path / "a.duckdb", "SELECT args->>'gpus' FROM runs") == [("cpu:2",)]
    monkeypatch.setenv("DOCPIPE_GPUS", "cpu:2")
    assert cli("ingest", str(DOCS[0]), "-e", "offline", "--db", str(tmp_path / "b.duckdb"), "-q")[0] == 0
    assert query(tmp_path / "b.duckdb", "SELECT args->>'gpus' FROM runs") == [("cpu:2",)]
    code, out = cli("ingest", str(DOCS[0]), "-e", "offline", "--set", "gpus=3", "--db", str(tmp_path / "c.duckdb"))
    assert code == 1 and out.strip().startswith("error: --gpus 3: ") and "\n" not in out.strip(), out


# -- the same rows as one process ----------------------------------------------------------------------------
def test_two_engine_processes_store_the_same_rows_as_one(tmp_path):
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    base = ("ingest", *map(str, DOCS), "-e", "offline", "-w", "1", "-q")
    assert cli(*base, "--db", str(one))[0] == 0
    code, out = cli(*base, "--db", str(two), "--gpus", "cpu:2", "-w", "2")  # each engine with its own workers
    assert code == 0, out
    assert rows(two) == rows(one) and len(query(two, "SELECT * FROM extractions")) == len(DOCS)
    slots = query(two, "SELECT CAST(timings->>'slot' AS INT), count(*) FROM extractions GROUP BY 1 ORDER BY 1")
    assert [s for s, _ in slots] == [0, 1], slots  # both processes took documents from the queue
    assert query(two, "SELECT args->>'gpus' FROM runs") == [("cpu:2",)]
    assert cli(*base, "--db", str(two), "--gpus", "cpu:2")[0] == 0  # resume: nothing redone
    assert query(two, "SELECT count(*) FROM extraction_history") == [(len(DOCS),)]


def test_a_process_killed_mid_run_hands_its_documents_to_the_other(tmp_path, caplog):
    """Killed while it holds a document: that document is answered by the other process, once."""
    schema = resolve("invoice")
    sources = [s for s in discover(DOCS) if isinstance(s, SourceFile)]
    jobs = [DocJob(source=s, schema_ref=schema.ref) for s in sources]
    engine = MultiEngine("offline", EngineOptions(workers=1), parse_gpus("cpu:2"))
    killed = None
    seen: list[str] = []
    with engine, caplog.at_level(logging.WARNING, logger="docpipe.engines.multi"):
        assert engine.model_name == "rules+rapidocr-3.10"
        for out in engine.run(iter(jobs), schema):
            seen.append(out.source.sha256)
            assert out.status.value == "ok", out.errors
            holding = engine.holding()
            if killed is None and any(holding.values()):
                killed = next(label for label, n in holding.items() if n)
                os.kill(engine.pids()[killed], signal.SIGKILL)
    assert killed is not None
    assert sorted(seen) == sorted(s.sha256 for s in sources)  # every document once: nothing lost or repeated
    assert any(f"on {killed} stopped (killed by SIGKILL); 1 document(s) it held go to the others" in r.message
               for r in caplog.records), caplog.text


def test_a_killed_process_leaves_the_same_rows_in_duckdb(tmp_path):
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    opts = dict(paths=DOCS, engine="offline", engine_options=EngineOptions(workers=1))
    ingest(IngestOptions(db=one, **opts))
    progress = KillAfter(after=2, how_many=1)
    report = ingest(IngestOptions(db=two, gpus="cpu:2", **opts), progress)
    assert len(progress.killed) == 1 and report.counts["ok"] == len(DOCS)
    assert rows(two) == rows(one)
    assert query(two, "SELECT count(*) FROM extraction_history") == [(len(DOCS),)]  # nothing done twice


def test_when_every_process_dies_the_run_stops_with_one_line_and_resumes(tmp_path):
    db = tmp_path / "d.duckdb"
    opts = dict(paths=DOCS, engine="offline", engine_options=EngineOptions(workers=1), db=db)
    progress = KillAfter(after=1, how_many=2)
    with pytest.raises(EngineError) as err:
        ingest(IngestOptions(gpus="cpu:2", **opts), progress)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("every engine process has stopped (cpu:0: killed by SIGKILL; "
                                              "cpu:1: killed by SIGKILL)")
    assert "run the same command again to continue" in msg
    stored = query(db, "SELECT count(*) FROM extractions WHERE status = 'ok'")[0][0]
    assert 1 <= stored < len(DOCS)  # what finished is kept; the rest is not marked done
    assert query(db, "SELECT count(*) FROM extractions WHERE status <> 'ok'") == [(0,)]
    report = ingest(IngestOptions(**opts))  # the next run does only the rest
    assert report.counts["ok"] == len(DOCS) - stored and report.counts["skipped"] == stored
    assert query(db, "SELECT count(*) FROM extraction_history") == [(len(DOCS),)]


def test_an_engine_that_cannot_start_in_its_process_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCPIPE_GEMMA", json.dumps({"decode": "nonsense"}))  # refused inside each child
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytest.importorskip("transformers")
    engine = MultiEngine("gemma", EngineOptions(model=str(tmp_path)), parse_gpus("cpu:2"))
    with engine, pytest.raises(EngineUnavailable) as err:
        engine.model_name  # noqa: B018
    assert str(err.value).startswith("engine 'gemma' could not start on cpu:0, cpu:1: cpu:0: EngineUnavailable: "
                                     "decode must be 'loop' or 'generate', not 'nonsense'")
    assert "\n" not in str(err.value)


# -- the tiny Gemma in two processes --------------------------------------------------------------------------
def test_tiny_gemma_in_two_processes_stores_what_one_process_stores(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    pytest.importorskip("torchvision")
    pytest.importorskip("xgrammar")
    import torch
    from gemma_tiny import save_tiny

    torch.set_num_threads(1)  # as each of the two children (2 cores / 2 processes): the same arithmetic
    model = save_tiny(tmp_path / "gemma-tiny")
    docs = [make_pdf(tmp_path / "rechnung.pdf", [INVOICE_TEXT]), SAMPLES / "invoice_en_2page_globex.pdf",
            SAMPLES / "receipt_en_harbor_bean.png", SAMPLES / "invoice_en_minimal_ellis.pdf"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # a small page bound: the first process's feed does not take every document before the other is loaded
    monkeypatch.setenv("DOCPIPE_GEMMA", json.dumps({"max_new_tokens": 48, "batch_size": 1, "max_pages_in_memory": 2}))
    base = ("ingest", *map(str, docs), "-e", "gemma", "--model", str(model), "--image-tokens", "70", "-q")
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    assert cli(*base, "--db", str(one))[0] == 0
    code, out = cli(*base, "--db", str(two), "--gpus", "cpu:2")
    assert code == 0, out
    assert rows(two) == rows(one)
    assert query(two, "SELECT DISTINCT engine, status FROM extractions") == [("gemma", "ok")]
    # which process read what depends on which loaded first (both usually do; the offline test asserts the spread)
    assert {s for (s,) in query(two, "SELECT DISTINCT CAST(timings->>'slot' AS INT) FROM extractions")} <= {0, 1}


# -- the engine processes end with docpipe ----------------------------------------------------------------------
@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 143)])
def test_engine_processes_end_when_docpipe_ends(tmp_path, sig, code):
    """kill -9 of docpipe: its engine processes (and their workers) die with it (lifeline); SIGTERM: it stops them
    and exits 143."""
    from test_hostile import _slow_ingest, _wait_gone

    with _slow_ingest(tmp_path, extra=("--gpus", "cpu:2")) as (proc, _, family, lines):
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=60) == code, "".join(lines)
        assert _wait_gone(family) == set()
