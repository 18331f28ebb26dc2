"""The issuer's address from the letterhead: the lines under the vendor's name in its column, or the parts after
the name on a sender line ('Müller GmbH · Industriestraße 14 · 70565 Stuttgart')."""

from __future__ import annotations

import re

from .layout import Doc, Line, Seg
from .names import ADDRESS_HINT_RE, CONTACT_RE, fold_name
from .text import fold

_SEPARATORS_RE = re.compile(r"\s+[·•|∙▪]\s+|\s+[-–]\s+")
_STOP_RE = re.compile(r"\b(?:tel|fon|fax|phone|e-?mail|www|http|iban|bic|swift|vat|ust|tax|steuer|siret|siren|tva|"
                      r"gst|hst|gstin|abn|uid|mwst|kvk|btw|rsin|kbo|cif|nif|p\.?\s?iva|codice\s+fiscale|"
                      r"reg|registration|company\s+no|invoice|rechnung|facture|factura|fattura|factuur|date|datum|"
                      r"bill|kunde|customer|client|sort\s+code|account|bank|registered|konto|kto|blz|"
                      r"since|depuis|seit|desde|dal|sinds|geschaftsfuhrer|amtsgericht|hrb|hra|director|"
                      r"managing|gerant|capital)\b|@")
_POSTCODE_RE = re.compile(r"\b(?:\d{4,5}|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d{2} ?[A-Z\d]{4}|[A-Z]{2} \d{5})\b")


_STREET_RE = re.compile(r"\b(?:unit|block|quay|lane|drive|way|court|park|square|place|plaza|via|viale|corso|piazza|"
                        r"calle|avenida|plaza|straat|gracht|plein|laan|kade|postbus|apt|flat|house|"
                        r"jalan|jln|lorong|lrg|persiaran|lebuh|taman|tmn)\b", re.I)


def addressy(t: str) -> bool:
    """A street, postcode or floor: a line of an address, not a name."""
    return bool(ADDRESS_HINT_RE.search(t) or _POSTCODE_RE.search(t) or (_STREET_RE.search(t) and re.search(r"\d", t)))


def _overlaps(seg: Seg, col: int, end: int) -> bool:
    return min(seg.end, end) - max(seg.col, col) > 0 or abs(seg.end - end) <= 2


def letterhead_address(doc: Doc, vendor: str, exclude: frozenset[tuple[int, int]] = frozenset()) -> str | None:
    """Address lines printed with the vendor's name in the letterhead (first page), joined with ', '. ``exclude``:
    (line, column) cells of the customer's block, never the vendor's address."""
    want = fold_name(vendor)
    lines = [ln for ln in doc.nonempty() if ln.page == 0][:40]
    named = [(i, seg) for i, ln in enumerate(lines) for seg in ln.segs if want in fold_name(seg.text)]
    for i, seg in named:  # the letterhead block: lines under the name
        if len(_SEPARATORS_RE.split(seg.text)) == 1 and (found := _below(lines[i + 1:i + 8], seg)):
            return found
    for i, seg in named[:1]:  # a sender block level with the name, in a column to its right
        if found := _beside(lines[max(0, i - 3):i + 4], seg, exclude):
            return found
    for _, seg in named:  # a sender line: the name and its address parts on one line
        parts = [p.strip(" ,;") for p in _SEPARATORS_RE.split(seg.text)]
        rest = [p for p in parts[1:] if p and not _STOP_RE.search(fold(p)) and not CONTACT_RE.search(p)]
        if rest and any(addressy(p) for p in rest):
            return ", ".join(rest[:4])
    return None


def _below(lines: list[Line], name_seg: Seg) -> str | None:
    out: list[str] = []
    skipped = 0
    for ln in lines:
        cell = next((s for s in ln.segs if _overlaps(s, name_seg.col, name_seg.end)), None)
        if cell is None:
            skipped += 1  # a logo's letters or a title beside the name's column, before its address
            if out or skipped > 2:
                break
            continue
        t = cell.text.strip()
        if _STOP_RE.search(fold(t)) or CONTACT_RE.search(t) or len(_SEPARATORS_RE.split(t)) > 1:
            if out:
                break
            continue  # a slogan, register or sender line between the name and its address
        if addressy(t) or (out and re.fullmatch(r"[^\W\d_][^\d]{1,30}", t) and len(t.split()) <= 4):
            out.append(t.rstrip(" ,"))  # a street or postcode line; a country or region line after one
        elif out:
            break
        else:
            skipped += 1  # a tagline under the name ("Cloud infrastructure & managed services")
            if skipped > 2:
                break
        if len(out) == 4:
            break
    return ", ".join(out) if out and any(addressy(x) for x in out) else None


def _beside(lines: list[Line], name_seg: Seg, exclude: frozenset[tuple[int, int]]) -> str | None:
    """Street and postcode lines right of the name, in one column (aligned left or right), up to a contact line:
    a letterhead that prints the name on the left and the sender's address on the right."""
    cells = [s for ln in lines for s in ln.segs
             if s.col > name_seg.end and (ln.idx, s.col) not in exclude and not _STOP_RE.search(fold(s.text))]
    out: list[Seg] = []
    for cell in cells:
        t = cell.text.strip()
        if CONTACT_RE.search(t) or not (addressy(t) or out):
            if out:
                break
            continue
        if out and abs(cell.col - out[0].col) > 2 and abs(cell.end - out[0].end) > 2:
            break  # another column's text
        out.append(cell)
        if _POSTCODE_RE.search(t) and len(out) >= 2:
            break
    texts = [c.text.strip().rstrip(" ,") for c in out]
    if len(texts) >= 2 and _POSTCODE_RE.search(texts[-1]) and ADDRESS_HINT_RE.search(texts[0]):
        return ", ".join(texts)
    return None
