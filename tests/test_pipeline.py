"""The ingest loop through its public seams: a plugin engine (tests/fake_engine.py, registered as an entry point)
and a real DuckDB file. Statuses, a failing document amid good ones, resume after Ctrl-C without duplicates, and
results read back through docpipe.connect."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_pdf
from fake_engine import FakeEngine

import docpipe
from docpipe.pipeline import IngestOptions, ingest


@pytest.fixture(autouse=True)
def fake_plugin(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the fake engine the way a package would: a distribution with a docpipe.engines entry point."""
    site = tmp_path_factory.mktemp("site")
    dist = site / "docpipe_fake-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: docpipe-fake\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[docpipe.engines]\nfake = fake_engine:FakeEngine\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("DOCPIPE_CONFIG", str(site / "no.toml"))
    FakeEngine.seen.clear()


def invoice(folder: Path, name: str, number: str, total: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return make_pdf(folder / name, [f"ACME Ltd\nInvoice no: {number}\nTotal: {total}\n"])


def rows(db: Path, sql: str) -> list[tuple]:
    with docpipe.connect(db) as store:
        return store.query(sql)[1]


def test_statuses_of_a_mixed_batch_and_one_failure_does_not_stop_it(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    invoice(inbox, "a.pdf", "INV-1", "10.50")
    invoice(inbox, "b_crash.pdf", "CRASH", "1")
    invoice(inbox, "c_bad_total.pdf", "INV-3", "lots")
    invoice(inbox, "d.pdf", "INV-4", "40.00")
    (inbox / "e_empty.pdf").write_bytes(b"")
    (inbox / "f_notes.png").write_text("text saved with an image name")
    (inbox / "g_truncated.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<<")
    db = tmp_path / "t.duckdb"

    report = ingest(IngestOptions(paths=[inbox], engine="fake", db=db))

    assert report.engine == "fake" and report.model == "fake-1"
    assert dict(+report.counts) == {"ok": 2, "failed": 2, "invalid": 1, "empty": 1, "unsupported": 1}
    got = dict(rows(db, "SELECT d.path, e.status FROM extractions e JOIN documents d USING (doc_id)"))
    assert {Path(p).name: s for p, s in got.items()} == {
        "a.pdf": "ok", "b_crash.pdf": "failed", "c_bad_total.pdf": "invalid", "d.pdf": "ok",
        "e_empty.pdf": "empty", "f_notes.png": "unsupported", "g_truncated.pdf": "failed"}
    reasons = {Path(f.path).name: f.reason for f in report.failures}
    assert reasons["b_crash.pdf"] == "the fake engine crashed"
    assert reasons["c_bad_total.pdf"].startswith("total:")
    assert "d.pdf" in FakeEngine.seen  # the documents after the crash were still read


def test_rerun_skips_done_documents_and_retries_failed_ones(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    invoice(inbox, "a.pdf", "INV-1", "10.50")
    invoice(inbox, "b_crash.pdf", "CRASH", "1")
    db = tmp_path / "t.duckdb"
    ingest(IngestOptions(paths=[inbox], engine="fake", db=db))
    FakeEngine.seen.clear()

    again = ingest(IngestOptions(paths=[inbox], engine="fake", db=db))

    assert FakeEngine.seen == ["b_crash.pdf"]  # failed is retried, ok is not
    assert dict(+again.counts) == {"skipped": 1, "failed": 1}
    assert rows(db, "SELECT count(*), count(DISTINCT doc_id) FROM extractions") == [(2, 2)]


def test_interrupted_run_keeps_finished_documents_and_resumes_without_duplicates(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    for i in range(5):
        invoice(inbox, f"inv{i}.pdf", f"INV-{i}", f"{i}.00")
    db = tmp_path / "t.duckdb"

    first = docpipe.ingest(inbox, engine="fake", db=db, interrupt_after=2)

    assert first.interrupted and first.counts["ok"] == 2
    assert rows(db, "SELECT count(*) FROM invoice") == [(2,)]
    second = docpipe.ingest(inbox, engine="fake", db=db)
    assert not second.interrupted
    assert dict(+second.counts) == {"skipped": 2, "ok": 3}
    assert sorted(FakeEngine.seen) == [f"inv{i}.pdf" for i in range(5)]  # each read once over both runs
    assert rows(db, "SELECT count(*), count(DISTINCT doc_id) FROM extractions") == [(5, 5)]
    assert rows(db, "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL") == [(2,)]


def test_results_are_queryable_as_rows_records_and_arrow(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    invoice(inbox, "a.pdf", "INV-1", "10.50")
    invoice(inbox, "b_crash.pdf", "CRASH", "1")
    db = tmp_path / "t.duckdb"
    docpipe.ingest([inbox], engine="fake", db=str(db))

    with docpipe.connect(db) as store:
        assert store.records("SELECT invoice_number, total FROM invoice") == [
            {"invoice_number": "INV-1", "total": pytest.approx(10.5)}]
        table = store.arrow("SELECT invoice_number, total FROM invoice")
        assert table.num_rows == 1 and table.column_names == ["invoice_number", "total"]
        assert [(Path(p["path"]).name, p["status"]) for p in store.problems()] == [("b_crash.pdf", "failed")]
        assert ("invoice", "fake", "ok", 1) in store.status_counts()


def test_a_plugin_engine_is_chosen_by_name_and_an_unknown_one_lists_the_known(tmp_path: Path) -> None:
    from docpipe.engines import registry

    assert registry()["fake"] == "fake_engine:FakeEngine"
    with pytest.raises(docpipe.ConfigError, match="unknown engine 'nope'; known: fake, gemma, offline, openai"):
        docpipe.ingest(tmp_path, engine="nope", db=tmp_path / "t.duckdb")


def test_an_unknown_keyword_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'bacth_size'"):
        docpipe.ingest(tmp_path, engine="offline", db=tmp_path / "t.duckdb", bacth_size=4)


def test_the_cli_chooses_a_plugin_engine(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from docpipe.cli import app

    invoice(tmp_path / "inbox", "a.pdf", "INV-1", "10.50")
    db = tmp_path / "t.duckdb"
    res = CliRunner().invoke(app, ["ingest", str(tmp_path / "inbox"), "--engine", "fake", "--db", str(db), "-q"])
    assert res.exit_code == 0, res.output
    assert rows(db, "SELECT engine, invoice_number FROM invoice JOIN extractions USING (doc_id)") == [("fake", "INV-1")]
