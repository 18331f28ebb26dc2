"""Documents in object storage: a real S3-compatible server (moto's server mode) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import INVOICE_TEXT, make_pdf, make_scan

from docpipe.store import Store

pytest.importorskip("s3fs")
pytest.importorskip("moto")

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory):
    """A moto S3 server; yields the environment a docpipe process needs to reach it."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"moto server did not start: {log.read_text()}")
    yield env
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def local_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("s3docs") / "docs"
    (d / "sub").mkdir(parents=True)
    make_pdf(d / "invoice.pdf", [INVOICE_TEXT])
    make_pdf(d / "sub" / "two.pdf", [INVOICE_TEXT.replace("RE-2025-0042", "RE-2025-0043"), "page two"])
    make_scan(d / "sub" / "scan.png", INVOICE_TEXT.replace("RE-2025-0042", "RE-2025-0044"), dpi=100)
    (d / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    (d / "empty.pdf").write_bytes(b"")
    (d / "notes.txt").write_text("not a document, not reported")
    (d / ".hidden.pdf").write_bytes(b"%PDF-1.7 hidden")
    return d


def _upload(env: dict[str, str], local: Path, url: str) -> None:
    import fsspec

    os.environ.update(env)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    bucket = url.removeprefix("s3://").split("/")[0]
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    for p in sorted(local.rglob("*")):
        if p.is_file():
            fs.pipe(url.removeprefix("s3://") + "/" + p.relative_to(local).as_posix(), p.read_bytes())


def _ingest(target: str, db: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docpipe", "ingest", target, "--db", str(db), "-e", "offline",
                           "-w", "1", "-q"], env=dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="250", **env),
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def _rows(db: Path) -> list[tuple]:
    with Store.open(db, read_only=True) as s:
        return s.query("SELECT e.doc_id, e.status, e.data, d.page_count FROM extractions e "
                       "JOIN documents d USING (doc_id) ORDER BY doc_id")[1]


def test_ingest_from_s3_matches_local_and_resumes(s3: dict[str, str], local_docs: Path, tmp_path: Path) -> None:
    _upload(s3, local_docs, "s3://inbox/2025")
    local_db, remote_db = tmp_path / "local.duckdb", tmp_path / "remote.duckdb"
    assert _ingest(str(local_docs), local_db, {}).returncode == 1  # broken.pdf and empty.pdf are not ok
    r = _ingest("s3://inbox/2025", remote_db, s3)
    assert r.returncode == 1, r.stderr
    assert "s3://inbox/2025/broken.pdf" in r.stderr and "empty.pdf" in r.stderr
    assert _rows(remote_db) == _rows(local_db)  # same identity, statuses, fields and pages as local files
    with Store.open(remote_db, read_only=True) as s:
        paths = [p for (p,) in s.query("SELECT path FROM documents ORDER BY path")[1]]
    assert paths == ["s3://inbox/2025/broken.pdf", "s3://inbox/2025/empty.pdf", "s3://inbox/2025/invoice.pdf",
                     "s3://inbox/2025/sub/scan.png", "s3://inbox/2025/sub/two.pdf"]

    _upload(s3, local_docs / "sub", "s3://inbox/copies")  # the same bytes under other keys: already done
    again = _ingest("s3://inbox/2025", remote_db, s3)
    copies = _ingest("s3://inbox/copies/two.pdf", remote_db, s3)
    assert again.returncode == 1 and copies.returncode == 0, copies.stderr
    with Store.open(remote_db, read_only=True) as s:
        runs = [json.loads(c) for (c,) in s.query("SELECT counts FROM runs ORDER BY started_at")[1]]
    assert runs[1]["skipped"] == 4 and runs[1]["failed"] == 1 and "ok" not in runs[1]  # broken.pdf is retried
    assert runs[2]["skipped"] == 1 and "ok" not in runs[2]


def test_unreachable_bucket_or_key_is_one_line_naming_it(s3: dict[str, str], tmp_path: Path) -> None:
    r = _ingest("s3://no-such-bucket/x", tmp_path / "db.duckdb", s3)
    assert r.returncode == 1
    assert "s3://no-such-bucket/x" in r.stderr and "Traceback" not in r.stderr


def test_discovery_on_a_ray_cluster_matches_discover(s3: dict[str, str], local_docs: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    ray = pytest.importorskip("ray")
    from docpipe.discover import discover
    from docpipe.ray_discover import discover_on_ray

    _upload(s3, local_docs, "s3://inbox/ray")
    paths = ["s3://inbox/ray", "s3://inbox/ray/notes.txt", "s3://inbox/no-such-prefix", "s3://no-such-bucket/x"]
    expected = list(discover(paths))
    assert [str(x.path).removeprefix("s3://inbox/") for x in expected] == [
        "ray/broken.pdf", "ray/empty.pdf", "ray/invoice.pdf", "ray/sub/scan.png", "ray/sub/two.pdf",
        "ray/notes.txt", "no-such-prefix", "s3://no-such-bucket/x"]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": s3})
    try:
        for files in (1, 3):
            assert list(discover_on_ray(paths, files=files, inflight=2)) == expected
        assert "discovery task failed" not in caplog.text  # read on the workers, not in the driver
    finally:
        ray.shutdown()
