"""The invoice number from a title line ('Rechnung Nr. 471102 vom 05.03.2018'), and what an ID token looks like."""

from __future__ import annotations

import datetime as dt
import re

from .dates import find_dates
from .labels import DOC_WORDS
from .layout import Doc
from .lookup import cell_below, names_a_date
from .text import fold

_ID_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/._]*[A-Za-z0-9]|[0-9]")
_TITLE_STRICT_RE = re.compile(rf"\b{DOC_WORDS}\b(?:\s*\([^)]*\))*\s*(?P<mark>n\s?°|(?:nr|no|number|nummer|numero|"
                              rf"num)\b\.?|#)?\s*[:#—–-]*\s*(?P<id>[A-Za-z0-9][A-Za-z0-9\-/._]*)")
_TITLE_LOOSE_RE = re.compile(rf"\b{DOC_WORDS}\b(?P<filler>[^:\n]{{1,30}}?)"
                             rf"(?:\b(?:nr|no|number|nummer|numero)\b\.?|n\s?°)\s*[:#]?\s*"
                             rf"(?P<id>[A-Za-z0-9][A-Za-z0-9\-/._]*)")
_OTHER_REF_RE = re.compile(r"bestell|order|commande|liefer|deliver|auftrag|kunden|customer|client|vertrag|contract|"
                           r"referenz|reference|gemass|according|selon|account|konto")
_VOM_RE = re.compile(r"^\s*(?:vom|du|dated|of|from|le|date[d:]?)\s*[:]?\s*")


def invoice_id(text: str, strict: bool = False) -> str | None:
    """An invoice number token: has a digit, is not a date or an amount with cents."""
    m = _ID_TOKEN_RE.match(text.strip().lstrip("#:№").strip())
    if not m:
        return None
    tok = m.group().rstrip(".-/")
    if not re.search(r"\d", tok) or len(tok) > 40:
        return None
    if find_dates(tok) and find_dates(tok)[0].end - find_dates(tok)[0].start == len(tok):
        return None
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})*[.,]\d{2}", tok):
        return None
    if strict and (len(tok) < 4 or re.fullmatch(r"(?:19|20)\d\d", tok)):
        return None
    return tok


def title_number(doc: Doc) -> tuple[str, dt.date | None] | None:
    """'Rechnung Nr. 471102 vom 05.03.2018', 'Invoice FA-2017-0008': number (and date) from a title line."""
    lines = doc.head_tail()
    for i, ln in enumerate(lines):
        flat = ln.flat
        f = fold(flat)
        for rx in (_TITLE_STRICT_RE, _TITLE_LOOSE_RE):
            for m in rx.finditer(f):
                if rx is _TITLE_LOOSE_RE and _OTHER_REF_RE.search(m.group("filler")):
                    continue
                if rx is _TITLE_STRICT_RE:
                    after_mark = m.end("mark") if m.group("mark") else m.start("id")
                    if re.match(r"\s*(?:date|datum|to|an|a)\b", f[after_mark:]):
                        continue  # "Invoice date", "Invoice to"
                ident = invoice_id(flat[m.start("id"):], strict=not (rx is _TITLE_LOOSE_RE or m.group("mark")))
                if not ident:
                    continue
                after = flat[m.start("id") + len(ident):]
                if _VOM_RE.match(fold(after)) and not find_dates(after, doc.dmy) and i + 1 < len(lines):
                    after += " " + lines[i + 1].flat
                date = None
                vm = _VOM_RE.match(fold(after))
                if vm:
                    dh = find_dates(after, doc.dmy)
                    date = dh[0].value if dh and dh[0].start <= vm.end() + 2 else None
                return ident, date
    for i, ln in enumerate(lines[:30]):  # "INVOICE" with "No. NWC-1042" in the cell below it
        if re.search(rf"\b{DOC_WORDS}\s*$", fold(ln.flat)):  # title ends the line, number ends a line below
            for below in lines[i + 1:i + 3]:
                m = re.search(r"(?:^|\s)(?:nr|no|n\s?°|nº|number|#)\.?\s*[:#]?\s*(\S+)\s*$", fold(below.flat))
                ident = invoice_id(below.flat[m.start(1):]) if m else None
                if ident:
                    return ident, None
        for seg in ln.segs:
            if not re.fullmatch(DOC_WORDS, seg.folded.strip(" :")):
                continue
            for below in doc.nonempty(ln.idx + 1, ln.idx + 3):
                cells = [cell_below(below, seg.col, seg.end, slack=6)]
                if seg is ln.segs[-1]:
                    cells.append(below.segs[-1])  # right-aligned title block: big fonts drift in text columns
                for cell in cells:
                    m = cell and re.match(r"(?:nr|no|n\s?°|nº|number|#)\.?\s*[:#]?\s*", fold(cell.text))
                    ident = invoice_id(cell.text[m.end():]) if cell and m else None
                    if ident:
                        return ident, None
    return None


_BARE_DOC_WORD_RE = re.compile(rf"^\W*{DOC_WORDS}\W*$")


def header_row_number(doc: Doc) -> str | None:
    """'Factura   Fecha de emisión   Fecha de vencimiento' over '2024/77260   12/06/2025   12/07/2025': a bare title
    word heading a column beside date columns names the number under it."""
    for ln in doc.head_tail():
        titles = [i for i, seg in enumerate(ln.segs) if _BARE_DOC_WORD_RE.match(seg.folded)]
        if not titles or not any(names_a_date(s.folded) for s in ln.segs):
            continue  # a bare title word never names a date itself
        row = next(iter(doc.nonempty(ln.idx + 1)), None)
        if row is None or len(row.segs) != len(ln.segs):
            continue
        for i in titles:
            if found := invoice_id(row.segs[i].text, True):
                return found
    return None
