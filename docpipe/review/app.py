"""``docpipe review``: a local page to check extracted values against the page they were read from.

Server-side HTML (Starlette), a little plain JS, no build step. The page is no way in: no SQL from the browser,
sealed DuckDB connections, images only of documents in the database (and only while their bytes still hash to
the document's id), and every change carries the page's token and must come from the page's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import pages
from .data import Filters, ReviewData

#: Longer side of a page image in pixels: sharp enough to read, small enough to send fast.
IMAGE_MAX_SIDE = 1400


class ReviewApp:
    def __init__(self, db: Path, read_only: bool = False, who: str = "reviewer", host: str = "127.0.0.1") -> None:
        self.data = ReviewData(db)
        self.hosts = {"127.0.0.1", "localhost", "::1", host}
        self.read_only = read_only
        self.who = who
        self._secret = secrets.token_bytes(32)
        self.app = Starlette(routes=[
            Route("/", self.index), Route("/doc/{doc_id:str}", self.doc),
            Route("/page/{doc_id:str}/{page_no:int}.png", self.page_image),
            Route("/correct", self.correct, methods=["POST"]),
        ])

    def token(self, doc_id: str) -> str:
        """The per-page token a change to ``doc_id`` must carry (known only to pages this server rendered)."""
        return hmac.new(self._secret, doc_id.encode(), hashlib.sha256).hexdigest()

    # -- pages ------------------------------------------------------------------------------------------------
    def _filters(self, request: Request) -> Filters:
        q = request.query_params
        return Filters(review=q.get("review") == "1", schema=q.get("schema", ""), engine=q.get("engine", ""),
                       q=q.get("q", "")[:200])

    async def index(self, request: Request) -> HTMLResponse:
        f = self._filters(request)
        docs = self.data.documents(f)
        schemas, engines = self.data.choices()
        return HTMLResponse(pages.index_html(docs, f, schemas, engines, self.read_only, _query(f)))

    async def doc(self, request: Request) -> Response:
        doc_id = request.path_params["doc_id"]
        f = self._filters(request)
        docs = self.data.documents(f)
        schema = request.query_params.get("as", "")
        rows = [d for d in docs if d["doc_id"] == doc_id and (not schema or d["schema_name"] == schema)]
        doc = self.data.document(doc_id)
        if doc is None:
            return HTMLResponse(pages.message_html("No such document in the database."), status_code=404)
        schema = rows[0]["schema_name"] if rows else schema
        keys = [(d["doc_id"], d["schema_name"]) for d in docs]
        i = keys.index((doc_id, schema)) if (doc_id, schema) in keys else -1
        prev_key = keys[i - 1] if i > 0 else None
        next_key = keys[i + 1] if 0 <= i < len(keys) - 1 else None
        return HTMLResponse(pages.doc_html(
            doc, schema, self.data.pages(doc_id), self.data.evidence(doc_id, schema),
            self.data.checks(doc_id, schema), self.token(doc_id), self.read_only, _query(f), prev_key, next_key,
            i + 1, len(keys)))

    async def page_image(self, request: Request) -> Response:
        doc_id, page_no = request.path_params["doc_id"], request.path_params["page_no"]
        doc = self.data.document(doc_id)
        if doc is None:
            return Response("not a document in this database", status_code=404)
        png = _render(doc["path"], doc["mime"] or "", doc_id, page_no)
        if png is None:
            return Response("the file is gone or has changed since it was read", status_code=404)
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})

    # -- changes ----------------------------------------------------------------------------------------------
    async def correct(self, request: Request) -> JSONResponse:
        if self.read_only:
            return JSONResponse({"error": "this review server was started with --read-only: corrections are "
                                          "not saved"}, status_code=403)
        if not same_origin(request, self.hosts):
            return JSONResponse({"error": "refused: the request does not come from this page's origin"},
                                status_code=403)
        try:
            body = await request.json()
            doc_id, field, value = str(body["doc_id"]), str(body["field"]), body.get("value")
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected JSON {doc_id, field, value}"}, status_code=400)
        if not hmac.compare_digest(request.headers.get("x-docpipe-token", ""), self.token(doc_id)):
            return JSONResponse({"error": "refused: missing or wrong page token (reload the page)"},
                                status_code=403)
        new = None if value is None or str(value).strip() == "" else str(value).strip()
        try:
            row = self.data.correct(doc_id, field, new, self.who)
        except KeyError as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        return JSONResponse(row)


def same_origin(request: Request, hosts: set[str]) -> bool:
    """The change comes from a page this server sent: its Origin (or Referer) is this server's own address, and
    that address names this machine or the bound address (a DNS-rebound name is refused)."""
    host = request.headers.get("host", "")
    if urlsplit(f"http://{host}").hostname not in hosts:
        return False
    origin = request.headers.get("origin") or ""
    if not origin:
        ref = request.headers.get("referer") or ""
        parts = urlsplit(ref)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    return bool(origin) and origin == f"{request.url.scheme}://{host}"


def _query(f: Filters) -> str:
    q = {k: v for k, v in (("review", "1" if f.review else ""), ("schema", f.schema), ("engine", f.engine),
                           ("q", f.q)) if v}
    return urlencode(q)


@lru_cache(maxsize=64)
def _render(path: str, mime: str, doc_id: str, page_no: int) -> bytes | None:
    """PNG of one page, only if the file still holds the bytes the document was read from."""
    from ..discover import hash_file
    from ..errors import DocpipeError
    from ..models import SourceFile
    from ..rasterize import RenderSpec, open_document

    p = Path(path)
    if not p.is_file():
        return None
    sha, size, _ = hash_file(p)
    if sha != doc_id:
        return None
    kind = "pdf" if "pdf" in mime else "image"
    try:
        with open_document(SourceFile(p, sha, size, kind, mime)) as doc:
            if not 1 <= page_no <= doc.page_count:
                return None
            page = next(doc.pages(page_no - 1, page_no))
            img = page.render(RenderSpec(max_pixels=IMAGE_MAX_SIDE * IMAGE_MAX_SIDE * 3 // 4, max_dpi=150))
    except DocpipeError:
        return None
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def serve(db: Path, host: str = "127.0.0.1", port: int = 8765, read_only: bool = False) -> None:
    import uvicorn

    uvicorn.run(ReviewApp(db, read_only=read_only, host=host).app, host=host, port=port, log_level="warning")


def build(db: Path, read_only: bool = False) -> Any:
    """The ASGI app (for tests and other servers)."""
    return ReviewApp(db, read_only=read_only).app
