"""Evidence for every value: where it was read (page, box, printed text), how sure docpipe is (0..1), and which of
the schema's cross-checks pass. Applied once, after an engine and validation, whatever the engine; the store
writes it (views ``evidence``, ``checks``, ``needs_review``).

A failed check never drops a value: it lowers the confidence of the fields it involves and is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..models import DocResult, Status

if TYPE_CHECKING:
    from ..schemas import SchemaInfo

__all__ = ["attach"]


def attach(result: DocResult, schema: SchemaInfo, password: str | None = None, max_pages: int = 2_000,
           ocr_missing: bool = True) -> None:
    """Fill ``result.evidence`` and ``result.checks`` (and, for the offline rules, correct one amount the
    checks and the page agree on). Never raises: a document whose evidence cannot be built keeps its data and
    gets a failed ``evidence`` check saying why."""
    if result.status is not Status.OK or result.data is None:
        return
    try:
        _attach(result, schema, password, max_pages, ocr_missing)
    except Exception as e:  # evidence is advice: it must never lose a document
        from .rules import CheckResult

        result.evidence = []
        result.checks = [CheckResult("evidence", False, f"could not ground values: {type(e).__name__}: {e}", ())]


def _attach(result: DocResult, schema: SchemaInfo, password: str | None, max_pages: int, ocr_missing: bool) -> None:
    from ..rasterize import open_document
    from . import confidence
    from .correct import correct_amounts
    from .ground import ground_document
    from .rules import run_checks
    from .words import page_lines

    out = result.output
    xml = out.method == "einvoice-xml"
    with open_document(result.source, password=password, max_pages=max_pages) as doc:
        infos = out.pages or [p.info for p in doc.pages()]
        lines = page_lines(doc, infos, ocr_missing=ocr_missing and not xml)
    sizes = {p.page_no: (p.width_pt, p.height_pt) for p in infos}
    data = result.data
    checks = run_checks(schema.model, data)
    notes: list[str] = []
    if out.engine == "offline" and out.method == "rules":
        data, notes = correct_amounts(data, schema.model, checks, lines)
        if notes:
            result.data = data
            checks = run_checks(schema.model, data)
    evidence = ground_document(data, schema, lines, sizes)
    if xml:
        for ev in evidence:
            ev.source = "xml"
    for note in notes:
        for ev in evidence:
            if note.startswith(ev.field + ":"):
                ev.note = "corrected by the checks: " + note
    confidence.apply(evidence, checks, xml)
    for ev in evidence:
        if not ev.found and not ev.note:
            ev.note = "not found in the page's words"
    result.evidence, result.checks = evidence, checks
