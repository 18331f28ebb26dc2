"""Rule-based field extraction for the offline engine: page texts -> a schema's fields, no ML.

Works on the text as PyMuPDF (``sort=True``) or OCR lays it out: lines in reading order, columns separated
by runs of spaces. A line is split into *segments* at 2+ spaces so that labels can find their values to
the right (same segment or the next one) or below (a segment in the same column on the next lines).

Everything returned is JSON-able: dates as ISO strings, money as decimal strings ("1234.56"). A field is
left out when no rule finds it: a missing value is cheaper downstream than a wrong one.

Modules, in import order (each imports only from modules listed before it):

- ``text``, ``language``, ``dates``, ``numbers``: leaf helpers; ``labels``: the label vocabularies, as data;
  ``browser_print``: a saved web page's header and footer, taken out, its title and print date kept.
- ``layout``: ``Doc``, pages -> lines -> cells; ``lookup``: label -> value; ``amount_labels``: label -> field.
- ``names``, ``parties``, ``tax_id``, ``invoice_number``, ``totals``, ``line_items``: one field group each.
- ``invoice``, ``receipt``, ``document_type`` + ``document``, ``generic``: one extractor per kind of schema.
- ``conform`` fits a result to the schema's model; this module only dispatches (``extract_fields``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .conform import conform
from .dates import find_dates
from .document import extract_document
from .generic import extract_generic
from .invoice import extract_invoice
from .language import detect_language
from .layout import Doc
from .numbers import find_amounts, parse_amount
from .ocr_mend import mend_names
from .receipt import extract_receipt

if TYPE_CHECKING:  # pragma: no cover
    from ....schemas import SchemaInfo

__all__ = ["extract_fields", "fill_note", "Doc", "find_dates", "find_amounts", "parse_amount", "detect_language"]


_HANDLERS: dict[str, Callable[[Doc, list[str]], dict[str, Any]]] = {
    "invoice": lambda doc, _: extract_invoice(doc), "receipt": lambda doc, _: extract_receipt(doc),
    "document": extract_document}


def extract_fields(pages: list[str], schema: SchemaInfo) -> dict:
    """Page texts (reading order, one string per page) -> dict of the schema's fields (JSON-able: str dates ISO,
    money as decimal strings like "1234.56"). Omit what you cannot find; never guess wildly."""
    pages = [p or "" for p in pages]
    doc = Doc(pages)
    if not any(ln.segs for ln in doc.lines):
        return {}
    handler = _HANDLERS.get(schema.name)
    result = handler(doc, pages) if handler else extract_generic(doc, schema.model)
    return conform(mend_names(result, doc), schema.model)


LOW_FILL = 0.5  # below this share of a user schema's fields filled, the result says a model engine would do better


def fill_note(data: dict, schema: SchemaInfo) -> str | None:
    """A one-line note when the rules filled less than LOW_FILL of a user schema's fields (built-in schemas have
    their own extractors and are judged by eval, not by this)."""
    if schema.name in _HANDLERS:
        return None
    names = list(schema.model.model_fields)
    filled = sum(1 for n in names if data.get(n) not in (None, "", [], {}))
    if not names or filled >= LOW_FILL * len(names):
        return None
    return (f"the offline rules filled {filled} of {len(names)} fields of schema '{schema.name}'; "
            "a model engine reads custom schemas better: --engine gemma or --engine openai")
