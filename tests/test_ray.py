"""The engine on a Ray cluster: a real local cluster (ray.init(num_cpus=4)), the offline engine in actors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import INVOICE_TEXT, make_pdf, make_scan

from docpipe.discover import discover
from docpipe.engines import EngineOptions
from docpipe.pipeline import IngestOptions, ingest
from docpipe.store import Store

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=4, include_dashboard=False, object_store_memory=256 << 20, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple]]:
    """A folder (invoices, a scan, a broken and an empty file) and the rows a plain ingest gives for it."""
    d = tmp_path_factory.mktemp("raydocs") / "docs"
    d.mkdir()
    for i in range(10):
        make_pdf(d / f"inv{i:02d}.pdf", [INVOICE_TEXT.replace("RE-2025-0042", f"RE-2025-R{i:02d}")])
    for i in range(3):  # slow ones (OCR), so that a driver killed after its first commit has work left
        make_scan(d / f"scan{i}.png", INVOICE_TEXT.replace("RE-2025-0042", f"RE-2025-SCAN{i}"), dpi=100)
    (d / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    (d / "empty.pdf").write_bytes(b"")
    db = d.parent / "plain.duckdb"
    ingest(IngestOptions(paths=[d], db=db, engine="offline", engine_options=EngineOptions(workers=1)))
    return d, _rows(db)


def test_discovery_on_the_cluster_gives_what_discover_gives(cluster: None, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    from docpipe.ray_discover import discover_on_ray

    d = tmp_path / "mixed"
    (d / "sub").mkdir(parents=True)
    for i in range(12):
        make_pdf(d / "sub" / f"inv{i:02d}.pdf", [f"invoice {i}"])
    make_scan(d / "scan.png", "a scan", dpi=50)
    (d / "copy.pdf").write_bytes((d / "sub" / "inv03.pdf").read_bytes())
    (d / "empty.pdf").write_bytes(b"")
    (d / "notes.txt").write_text("not a document, left out")
    (d / "dangling.pdf").symlink_to(d / "gone.pdf")
    (d / "locked.pdf").write_bytes(b"%PDF-1.7 locked")
    (d / "locked.pdf").chmod(0)
    (d / "eio.pdf").symlink_to("/proc/self/mem")  # a regular file whose first read fails, even for root
    paths = [d, tmp_path / "missing.pdf", d / "notes.txt"]
    expected = list(discover(paths))
    for files in (1, 5, 64):  # one file per task, uneven tasks, all in one
        assert list(discover_on_ray(paths, files=files, inflight=2)) == expected
    by_name = {Path(x.path).name: x for x in expected}
    assert "notes.txt" in by_name and by_name["notes.txt"].kind == "unsupported"  # named: kept; in the folder: not
    assert [Path(x.path).name for x in expected].count("notes.txt") == 1
    assert by_name["dangling.pdf"].status == "dangling_link" and by_name["missing.pdf"].status == "missing"
    assert by_name["eio.pdf"].status == "unreadable" and by_name["empty.pdf"].kind == "empty"
    assert by_name["copy.pdf"].sha256 == by_name["inv03.pdf"].sha256
    assert "discovery task failed" not in caplog.text  # read on the workers, not in the driver
    if not os.access(d / "locked.pdf", os.R_OK):  # root reads through file modes
        assert by_name["locked.pdf"].status == "unreadable"


def _rows(db: Path) -> list[tuple]:
    with Store.open(db, read_only=True) as s:
        return s.query("SELECT d.path, e.status, e.data, d.page_count FROM extractions e "
                       "JOIN documents d USING (doc_id) ORDER BY d.path")[1]


def _evidence(db: Path) -> list[tuple]:
    with Store.open(db, read_only=True) as s:
        return s.query("SELECT path, field, page, x0, y0, x1, y1, source, confidence FROM evidence "
                       "ORDER BY path, field")[1] + s.query(
            'SELECT path, "check", passed, detail FROM checks ORDER BY path, "check", detail')[1]


def _actor_pids() -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and b"ray::_EngineWorker" in (p / "cmdline").read_bytes():
                pids.append(int(p.name))
        except OSError:
            pass
    return pids


def test_same_rows_as_a_plain_ingest(cluster: None, docs: tuple[Path, list], tmp_path: Path) -> None:
    folder, expected = docs
    db = tmp_path / "ray.duckdb"
    report = ingest(IngestOptions(paths=[folder], db=db, engine="offline", ray="auto"))
    assert _rows(db) == expected
    assert _evidence(db) == _evidence(folder.parent / "plain.duckdb")  # grounded in the actors, as in one process
    assert report.counts["ok"] == 13 and report.counts["failed"] == 1 and report.counts["empty"] == 1


def test_documents_are_sent_while_discovery_streams_in(cluster: None, docs: tuple[Path, list], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import docpipe.pipeline as pipeline

    monkeypatch.setattr(pipeline, "FIRST_WAVE", 2)  # waves of 2, 4, 8, 1: the 15 files arrive in four
    folder, expected = docs
    events: list[tuple] = []

    class Record:
        def engine_chosen(self, *a: object) -> None: ...
        def planned(self, *a: object, **k: object) -> None:
            events.append(("planned", *a, k.get("copies")))
        def document_done(self, result: object) -> None:
            events.append(("done",))

    db = tmp_path / "waves.duckdb"
    report = ingest(IngestOptions(paths=[folder], db=db, engine="offline", ray="auto"), Record())
    assert _rows(db) == expected and _evidence(db) == _evidence(folder.parent / "plain.duckdb")
    assert report.counts["ok"] == 13 and report.counts["failed"] == 1 and report.counts["empty"] == 1
    assert events[0] == ("done",)  # the first document finished before discovery had
    assert [e for e in events if e[0] == "planned"] == [("planned", 15, 15, 0, 0)]
    again = ingest(IngestOptions(paths=[folder, folder / "inv03.pdf"], db=db, engine="offline", ray="auto"))
    assert again.counts["skipped"] == 15 and again.counts["failed"] == 1  # 14 done, inv03.pdf named twice


def test_a_killed_worker_has_its_documents_redone_elsewhere(cluster: None, docs: tuple[Path, list],
                                                            tmp_path: Path) -> None:
    folder, expected = docs
    killed: list[int] = []

    class KillOneWorker:
        def engine_chosen(self, *a: object) -> None: ...
        def planned(self, *a: object, **k: object) -> None: ...
        def document_done(self, *a: object) -> None:
            if not killed and (pids := _actor_pids()):
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

    db = tmp_path / "killed.duckdb"
    ingest(IngestOptions(paths=[folder], db=db, engine="offline", ray="auto"), KillOneWorker())
    assert killed
    assert _rows(db) == expected  # nothing lost, no 'worker died' failures


def test_driver_killed_then_resumed_does_nothing_twice(docs: tuple[Path, list], tmp_path: Path) -> None:
    folder, expected = docs
    db = tmp_path / "driver.duckdb"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "docpipe", "ingest", str(folder), "--db", str(db), "-e", "offline", "-q",
           "--ray", "local:2"]
    driver = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and _committed(db) == 0:
            time.sleep(0.1)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        _kill_group(driver.pid)  # the local cluster it started
    kept = _committed(db, "WHERE status NOT IN ('failed', 'encrypted')")
    assert 0 < kept < len(expected) - 2  # broken.pdf is always redone; at least one good document is left
    again = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=400,
                           start_new_session=True)
    assert again.returncode == 1, again.stderr  # broken.pdf
    assert _rows(db) == expected
    with Store.open(db, read_only=True) as s:
        (counts,), = s.query("SELECT counts FROM runs WHERE counts IS NOT NULL")[1]
    c = json.loads(counts)
    assert c.get("ok", 0) + c.get("failed", 0) + c.get("empty", 0) == len(expected) - kept


def _committed(db: Path, where: str = "") -> int:
    from docpipe.errors import StoreError

    if not db.exists():
        return 0
    try:
        with Store.open(db, read_only=True) as s:
            return s.query(f"SELECT count(*) FROM extractions {where}")[1][0][0]
    except StoreError:
        return 0


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
