"""The vendor's VAT ID (EU formats) or tax number."""

from __future__ import annotations

import re

from .layout import Doc
from .text import fold

_VAT_ID_RE = re.compile(r"(?<![A-Z0-9])(?:ATU\d{8}|BE[01]?\d{9}|DE ?\d{3} ?\d{3} ?\d{3}|FR ?[0-9A-Z]{2} ?\d{9}|"
                        r"GB ?\d{3} ?\d{4} ?\d{2}(?:\d{3})?|IE\d[0-9A-Z+*]\d{5}[A-Z]{1,2}|NL\d{9}B\d{2}|IT\d{11}|"
                        r"ES[0-9A-Z]\d{7}[0-9A-Z]|CHE-?\d{3}\.?\d{3}\.?\d{3}(?: ?(?:MWST|TVA|IVA))?|"
                        r"(?:LU|DK|FI|HU|SI|MT)\d{8}|(?:PL|SK|HR|LT|PT|SE|CZ|EL|BG|RO|EE|LV|CY)[0-9A-Z]{8,12}|EU\d{9})"
                        r"(?![A-Z0-9])")
_TAX_NO_LABEL_RE = re.compile(r"(?:steuer\s*-?\s*(?:nummer|nr\b\.?)|st\.?\s*-?\s*nr\b\.?|tax\s*(?:id|number|no\b\.?)|"
                              r"siren|siret|n[°o]\s*tva|abn|ein\b|\bc\.?i\.?f\b\.?|\bn\.?i\.?f\b\.?|\bp\.?\s*iva\b|"
                              r"partita\s*iva|btw\s*-?\s*(?:nummer|nr\b\.?))")
_VAT_CONTEXT_RE = re.compile(r"(?:ust|vat|tva|mwst|uid|iva|btw|tax|steuer|siret|vies)")
_BUYER_CONTEXT_RE = re.compile(r"(?:client|customer|kunde|ihre|your|buyer|acheteur|destinataire|empfanger|kaufer)")


def vendor_tax_id(doc: Doc, exclude: set[tuple[int, int]]) -> str | None:
    """Seller's VAT ID (EU formats) or tax number: skipping the buyer block and 'your/customer VAT' lines."""
    fallback: str | None = None
    for ln in doc.head_tail():
        f = fold(ln.text)
        if not (_VAT_ID_RE.search(ln.text) or (fallback is None and _TAX_NO_LABEL_RE.search(f))):
            continue
        for seg in ln.segs:
            if (ln.idx, seg.col) in exclude:
                continue
            sf = seg.folded
            prefix = fold(ln.text[:seg.col + 1]) + sf
            if _BUYER_CONTEXT_RE.search(prefix[-60:]):
                continue
            m = _VAT_ID_RE.search(seg.text)
            if m and (_VAT_CONTEXT_RE.search(f) or m.start() == 0):
                return m.group()
            if fallback is None:
                lm = _TAX_NO_LABEL_RE.search(sf)
                if lm:
                    rest = seg.text[lm.end():].strip(" :.#") or next(
                        (s.text for s in ln.segs if s.col > seg.col), "")
                    tm = re.match(r"[A-Z]{0,3}[\s-]?\d[\d /.\-]{5,18}\d", rest)
                    if tm:
                        fallback = tm.group().strip()
    return fallback
