"""The review page as a person (and an attacker) meets it: a real uvicorn server, real HTTP, a real Chromium."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import httpx
import pymupdf
import pytest
from conftest import INVOICE_TEXT, make_pdf
from typer.testing import CliRunner

from docpipe.cli import app as cli_app
from docpipe.pipeline import IngestOptions, ingest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from docpipe.review.app import build  # noqa: E402
from docpipe.review.data import ReviewData  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db: Path, read_only: bool = False) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(build(db, read_only=read_only), host="127.0.0.1",
                                                    port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def ingested(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "r.duckdb"
    pdfs = [make_pdf(tmp_path / "a.pdf", [INVOICE_TEXT]),
            make_pdf(tmp_path / "b.pdf", [INVOICE_TEXT.replace("RE-2025-0042", "RE-2025-0043")])]
    rep = ingest(IngestOptions(paths=pdfs, db=db, engine="offline"))
    assert rep.counts["ok"] == 2
    return db, pdfs[0]


def _doc(db: Path, pdf: Path) -> str:
    code = CliRunner().invoke(cli_app, ["query", "--db", str(db), "--format", "json",
                                        f"SELECT doc_id FROM documents WHERE path = '{pdf}'"])
    return json.loads(code.output)[0]["doc_id"]


def _token(page_html: str) -> str:
    return json.loads(page_html.split("const CFG=", 1)[1].split(";</script>", 1)[0])["token"]


def _query(db: Path, sql: str) -> list[dict]:
    res = CliRunner().invoke(cli_app, ["query", "--db", str(db), "--format", "json", sql])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_changes_need_the_page_token_and_its_origin(ingested: tuple[Path, Path]) -> None:
    db, pdf = ingested
    doc = _doc(db, pdf)
    with Server(db) as s, httpx.Client(base_url=s.url) as c:
        page = c.get(f"/doc/{doc}?as=invoice")
        assert page.status_code == 200 and "RE-2025-0042" in page.text
        tok = _token(page.text)
        body = {"doc_id": doc, "field": "total", "value": "99.99"}
        same = {"Origin": s.url, "X-Docpipe-Token": tok}
        assert c.post("/correct", json=body, headers={"Origin": s.url}).status_code == 403  # no token
        assert c.post("/correct", json=body, headers={**same, "X-Docpipe-Token": "0" * 64}).status_code == 403
        assert c.post("/correct", json=body, headers={**same, "Origin": "http://evil.example"}).status_code == 403
        assert c.post("/correct", json=body, headers={"X-Docpipe-Token": tok}).status_code == 403  # no origin
        rebound = c.post("/correct", json=body, headers={**same, "Host": "evil.example", "Origin": "http://evil.example"})
        assert rebound.status_code == 403
        other = {"doc_id": _doc(db, pdf.with_name("b.pdf")), "field": "total", "value": "1"}
        assert c.post("/correct", json=other, headers=same).status_code == 403  # a token is for its own page
        assert _query(db, "SELECT count(*) AS n FROM corrections") == [{"n": 0}]
        ok = c.post("/correct", json=body, headers=same)
        assert ok.status_code == 200 and ok.json()["old"] == "30.35"
    assert _query(db, f"SELECT total FROM invoice WHERE doc_id = '{doc}'") == [{"total": 99.99}]


def test_read_only_server_refuses_writes_with_a_clear_message(ingested: tuple[Path, Path]) -> None:
    db, pdf = ingested
    doc = _doc(db, pdf)
    with Server(db, read_only=True) as s, httpx.Client(base_url=s.url) as c:
        page = c.get(f"/doc/{doc}?as=invoice")
        assert "read-only" in page.text
        r = c.post("/correct", json={"doc_id": doc, "field": "total", "value": "1"},
                   headers={"Origin": s.url, "X-Docpipe-Token": _token(page.text)})
        assert r.status_code == 403 and "--read-only" in r.json()["error"]


def test_images_only_for_documents_in_the_database(ingested: tuple[Path, Path], tmp_path: Path) -> None:
    db, pdf = ingested
    doc = _doc(db, pdf)
    with Server(db) as s, httpx.Client(base_url=s.url) as c:
        img = c.get(f"/page/{doc}/1.png")
        assert img.status_code == 200 and img.content[:4] == b"\x89PNG"
        assert c.get(f"/page/{'f' * 64}/1.png").status_code == 404
        assert c.get(f"/page/{doc}/9.png").status_code == 404
        assert c.get("/page/..%2F..%2Fetc%2Fpasswd/1.png").status_code == 404
        pdf.write_bytes(pdf.read_bytes() + b"\n% changed")  # other bytes at that path: not this document
        from docpipe.review import app as review_app

        review_app._render.cache_clear()
        assert c.get(f"/page/{doc}/1.png").status_code == 404


def test_review_connections_cannot_touch_files(ingested: tuple[Path, Path], tmp_path: Path) -> None:
    db, _ = ingested
    data = ReviewData(db)
    for sql in (f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'", "SELECT * FROM read_csv('/etc/hostname')",
                f"ATTACH '{tmp_path / 'o.duckdb'}'"):
        with pytest.raises(Exception, match="disabled"), data._con() as con:
            con.execute(sql)
        with pytest.raises(Exception, match="disabled"), data._con(write=True) as con:
            con.execute(sql)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs the OS's chromium (apt-get install chromium)")
def test_in_a_real_browser_boxes_sit_on_their_values_and_a_correction_lands(ingested: tuple[Path, Path]) -> None:
    from playwright.sync_api import sync_playwright

    db, pdf = ingested
    doc = _doc(db, pdf)
    with Server(db) as s, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{s.url}/?review=1")
        page.goto(f"{s.url}/")
        assert page.locator("tr.doc").count() == 2
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_url("**/doc/**")
        page.goto(f"{s.url}/doc/{doc}?as=invoice")
        img = page.locator(".page img").first
        img.wait_for()
        page.wait_for_function("document.querySelector('.page img').naturalWidth > 0")
        ib = img.bounding_box()
        with pymupdf.open(pdf) as d:
            pw, ph = d[0].rect.width, d[0].rect.height
            for field, printed in (("total", "30,35"), ("invoice_number", "RE-2025-0042"),
                                   ("invoice_date", "05.03.2025")):
                bb = page.locator(f".box[data-field='{field}']").bounding_box()
                rect = pymupdf.Rect((bb["x"] - ib["x"]) / ib["width"] * pw, (bb["y"] - ib["y"]) / ib["height"] * ph,
                                    (bb["x"] + bb["width"] - ib["x"]) / ib["width"] * pw,
                                    (bb["y"] + bb["height"] - ib["y"]) / ib["height"] * ph)
                assert printed in d[0].get_textbox(rect + (-2, -2, 2, 2)), field
        inp = page.locator("input.val[data-field='total']")
        inp.focus()
        assert "hl" in page.locator(".box[data-field='total']").get_attribute("class")
        inp.fill("30.45")
        inp.press("Enter")
        page.locator("tr[data-field='total'] .msg").filter(has_text="saved").wait_for()
        page.keyboard.press("Escape")
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("j")
        page.wait_for_url(lambda u: doc not in u)
        browser.close()
    assert _query(db, f"SELECT total FROM invoice WHERE doc_id = '{doc}'") == [{"total": 30.45}]
    assert _query(db, "SELECT field, old, new FROM corrections") == [{"field": "total", "old": "30.35", "new": "30.45"}]
