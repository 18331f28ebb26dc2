"""Many processes on one database: queries while an ingest runs, two ingests sharing the work, a killed one
taken over. Real processes, real DuckDB files, the offline engine."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import INVOICE_TEXT, make_pdf, make_scan

from docpipe.engines import EngineOptions
from docpipe.errors import StoreError
from docpipe.pipeline import IngestOptions, ingest
from docpipe.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="250", **extra)
    return env


def _start_ingest(folder: Path, db: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "docpipe", "ingest", str(folder), "--db", str(db), "-e",
                             "offline", "-w", "1", "-q", *args], env=_env(**env), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _folder(root: Path, scans: int, pdfs: int) -> Path:
    """Scans (slow: OCR) and born-digital invoices (fast), each with its own number, plus one broken file."""
    root.mkdir()
    for i in range(scans):
        make_scan(root / f"scan{i:02d}.png", INVOICE_TEXT.replace("RE-2025-0042", f"RE-2025-S{i:02d}"), dpi=100)
    for i in range(pdfs):
        make_pdf(root / f"doc{i:02d}.pdf", [INVOICE_TEXT.replace("RE-2025-0042", f"RE-2025-P{i:02d}")])
    (root / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    return root


def _rows(db: Path) -> list[tuple]:
    with Store.open(db, read_only=True) as s:
        return s.query("SELECT d.path, e.status, e.data FROM extractions e JOIN documents d USING (doc_id) "
                       "ORDER BY d.path")[1]


def _processed_per_run(db: Path) -> list[int]:
    """Documents each finished run worked on itself (not skipped, not done by another ingest)."""
    with Store.open(db, read_only=True) as s:
        counts = [json.loads(c) for (c,) in s.query("SELECT counts FROM runs WHERE counts IS NOT NULL")[1]]
    return [sum(v for k, v in c.items() if k in ("ok", "invalid", "failed", "unsupported", "empty")) for c in counts]


def _count(db: Path, where: str = "") -> int:
    with Store.open(db, read_only=True) as s:
        return s.query(f"SELECT count(*) FROM extractions {where}")[1][0][0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple]]:
    """A folder and the rows one plain ingest gives for it."""
    root = tmp_path_factory.mktemp("shared")
    folder = _folder(root / "docs", scans=4, pdfs=12)
    db = root / "reference.duckdb"
    proc = _start_ingest(folder, db)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err  # broken.pdf fails; the rest is ok
    return folder, _rows(db)


def test_query_status_export_work_while_an_ingest_runs(reference: tuple[Path, list], tmp_path: Path) -> None:
    folder, expected = reference
    db = tmp_path / "live.duckdb"
    proc = _start_ingest(folder, db)
    seen: list[int] = []
    exported = False
    while proc.poll() is None:
        if db.exists():
            q = subprocess.run([sys.executable, "-m", "docpipe", "query", "SELECT count(*) AS n FROM extractions",
                                "--db", str(db), "-f", "json"], env=_env(), capture_output=True, text=True,
                               cwd=ROOT, timeout=120)
            running = proc.poll() is None
            if q.returncode == 0 and running:
                seen.append(json.loads(q.stdout)[0]["n"])
                if not exported:
                    ex = subprocess.run([sys.executable, "-m", "docpipe", "export", "documents", "--db", str(db),
                                         "--out", str(tmp_path / "out")], env=_env(), capture_output=True,
                                        text=True, cwd=ROOT, timeout=120)
                    assert ex.returncode == 0, ex.stderr
                    exported = (tmp_path / "out" / "documents.parquet").exists()
            elif running:
                assert "no table" in q.stderr.lower() or "does not exist" in q.stderr.lower(), q.stderr
        time.sleep(0.2)
    assert proc.returncode == 1, proc.stderr.read()
    assert seen and exported, "no query or export succeeded while the ingest ran"
    assert seen == sorted(seen), "a reader saw results disappear"
    assert any(0 < n < len(expected) for n in seen), f"never saw a committed batch before the end: {seen}"
    st = subprocess.run([sys.executable, "-m", "docpipe", "status", "--db", str(db)], env=_env(),
                        capture_output=True, text=True, cwd=ROOT)
    assert st.returncode == 0 and "broken.pdf" in st.stdout
    assert _rows(db) == expected


def test_two_ingests_share_the_work_without_doing_anything_twice(reference: tuple[Path, list],
                                                                  tmp_path: Path) -> None:
    folder, expected = reference
    db = tmp_path / "two.duckdb"
    a = _start_ingest(folder, db)
    b = _start_ingest(folder, db)
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 1 or p.returncode == 0, err
    assert _rows(db) == expected
    per_run = _processed_per_run(db)
    assert len(per_run) == 2 and sum(per_run) == len(expected), per_run  # each document by exactly one of them


def test_a_killed_ingest_is_taken_over_and_nothing_done_twice(reference: tuple[Path, list], tmp_path: Path) -> None:
    folder, expected = reference
    db = tmp_path / "killed.duckdb"
    a = _start_ingest(folder, db)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not db.exists() or _count_or_zero(db) == 0):
        time.sleep(0.2)
    a.send_signal(signal.SIGKILL)
    a.wait()
    before = _count(db)
    assert 0 < before < len(expected), f"killed after {before} of {len(expected)} results"
    kept = _count(db, "WHERE status NOT IN ('failed', 'encrypted')")  # failures are retried by design
    with Store.open(db, read_only=True) as s:
        assert s.query("SELECT count(*) FROM claims")[1][0][0] > 0  # the dead process left its claims behind
    b = _start_ingest(folder, db)
    _, err = b.communicate(timeout=300)
    assert b.returncode == 1, err
    assert _rows(db) == expected
    assert _processed_per_run(db) == [len(expected) - kept], (before, kept, err)
    with Store.open(db, read_only=True) as s:
        assert s.query("SELECT count(*) FROM claims")[1][0][0] == 0


def _count_or_zero(db: Path) -> int:
    try:
        return _count(db)
    except StoreError:
        return 0


def test_a_live_claim_elsewhere_is_waited_for_then_taken_over_when_it_expires(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    make_pdf(folder / "a.pdf", [INVOICE_TEXT])
    db = tmp_path / "claimed.duckdb"
    from docpipe.discover import describe

    sha = describe(folder / "a.pdf").sha256
    with Store.open(db) as s:  # another machine's ingest claimed it a moment ago, for two seconds
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        s.con.execute("INSERT INTO claims VALUES (?, 'invoice', 'offline', 'elsewhere:1:x', ?, ?)",
                      [sha, now, now + dt.timedelta(seconds=2)])
    waited: list[int] = []

    class Watch:
        def engine_chosen(self, *a: object) -> None: ...
        def planned(self, *a: object, **k: object) -> None: ...
        def document_done(self, *a: object) -> None: ...
        def waiting(self, held: int) -> None:
            waited.append(held)

    t0 = time.monotonic()
    report = ingest(IngestOptions(paths=[folder], db=db, engine="offline", engine_options=EngineOptions()), Watch())
    assert waited == [1] and time.monotonic() - t0 >= 1.5
    assert report.counts["ok"] == 1 and _rows(db)[0][1] == "ok"


def test_readers_wait_for_a_commit_and_say_why_when_it_takes_too_long(tmp_path: Path) -> None:
    db = tmp_path / "busy.duckdb"
    Store.open(db).close()
    hold = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "time.sleep(float(sys.argv[2])); c.close()")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(db), "1.5"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    q = subprocess.run([sys.executable, "-m", "docpipe", "query", "SELECT count(*) FROM documents", "--db", str(db)],
                       env=_env(), capture_output=True, text=True, cwd=ROOT)
    assert q.returncode == 0, q.stderr
    holder.wait()
    holder = subprocess.Popen([sys.executable, "-c", hold, str(db), "5"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    q = subprocess.run([sys.executable, "-m", "docpipe", "status", "--db", str(db)],
                       env=_env(DOCPIPE_LOCK_WAIT="0.3"), capture_output=True, text=True, cwd=ROOT)
    holder.kill()
    assert q.returncode == 1 and "in use by another process" in q.stderr and "DOCPIPE_LOCK_WAIT" in q.stderr
