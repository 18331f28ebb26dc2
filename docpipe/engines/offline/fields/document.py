"""The document schema (any document): title, type, date, parties, language and key facts."""

from __future__ import annotations

import re
from typing import Any

from ..summary import text_units
from .dates import blank_dates, find_dates
from .document_type import DOC_TYPE_RES, document_type
from .labels import INVOICE_DATE_LABELS
from .language import WORD_RE
from .layout import Doc
from .lookup import first_value, label_hits, leading_date
from .names import CONTACT_RE, LEGAL_RE, company_names, fold_name
from .numbers import find_amounts
from .parties import BUYER_RE, SELLER_RE, labelled_party
from .text import fold

_SUBJECT_RE = re.compile(r"^\W*(?:betreff|subject|objet|re|concerne|betrifft)\s*:\s*(.+)$", re.I)


def _repeated_lines(doc: Doc) -> set[str]:
    """Lines printed on several pages (headers, footers; page numbers ignored): never a title or a fact."""
    if doc._furniture is None:
        pages: dict[str, set[int]] = {}
        for ln in doc.nonempty():
            pages.setdefault(_furniture_key(ln.text), set()).add(ln.page)
        doc._furniture = {k for k, v in pages.items() if len(v) > 1}
    return doc._furniture


def _furniture_key(text: str) -> str:
    return re.sub(r"[\W\d_]+", "", fold(text))


def _title(doc: Doc) -> str | None:
    """Subject line > a short cell naming the document ('INVOICE', 'Mietvertrag') > first prominent line."""
    furniture = _repeated_lines(doc)
    lines = [ln for ln in list(doc.nonempty())[:30] if _furniture_key(ln.text) not in furniture]
    for ln in lines:
        m = _SUBJECT_RE.match(ln.flat)
        if m and len(m.group(1)) > 2:
            return m.group(1).strip()
    kinds = [rx for rxs in DOC_TYPE_RES.values() for rx in rxs[:3]]
    for ln in lines[:10]:
        for seg in ln.segs:
            if len(seg.text.split()) <= 8 and any(rx.search(seg.folded) for rx in kinds):
                return seg.text.strip()
    for ln in lines[:15]:
        t = ln.flat.strip()
        words = t.split()
        if (len(re.findall(r"[^\W\d_]", t)) >= 4 and len(words) <= 14 and not CONTACT_RE.search(t)
                and not re.match(r"(?i)^(?:page|seite|p\.)\s*\d", t) and not doc.dates(ln) and ":" not in t[:25]):
            return t
    return None


def extract_document(doc: Doc, pages: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    title = _title(doc)
    if title:
        out["title"] = title
    kind = document_type(doc)
    if kind:
        out["document_type"] = kind
    labelled = first_value(doc, [h for h in label_hits(doc, INVOICE_DATE_LABELS)], leading_date(doc), below=1)
    first_date = labelled[0] if labelled else next((h.value for ln in doc.nonempty() for h in doc.dates(ln)), None)
    if first_date:
        out["date"] = first_date.isoformat()
    parties: list[str] = []
    seen: set[str] = set()
    for label_re in (SELLER_RE, BUYER_RE):
        p = labelled_party(doc, label_re, prefer_company=label_re is BUYER_RE)
        if p and p.name and fold_name(p.name) not in seen:
            seen.add(fold_name(p.name))
            parties.append(p.name)
    for ln in doc.nonempty():
        if len(parties) >= 10:
            break
        for seg in ln.segs:
            for name, _ in company_names(seg.text) if LEGAL_RE.search(seg.text) else ():
                key = fold_name(name)
                if key not in seen and not any(key in s or s in key for s in seen):
                    seen.add(key)
                    parties.append(name)
    if parties:
        out["parties"] = parties[:10]  # the first ten: a long report names many, the opening ones matter
    if doc.lang:
        out["language"] = doc.lang
    out["key_facts"] = _key_facts(doc, pages)
    return out


_MONEY_WORDS = re.compile(r"\b(?:total|betrag|summe|amount|fee|price|preis|prix|montant|cost|kosten|tax|mwst|tva|vat|"
                          r"miete|rent|salary|gehalt|zahl|pay|paie|kaution|deposit)")


def _key_facts(doc: Doc, pages: list[str], limit: int = 8) -> list[str]:
    """Sentences or table lines that state an amount or a date, in order, without page furniture or repeats."""
    furniture = _repeated_lines(doc)
    facts: list[str] = []
    seen: set[str] = set()
    for _, unit in text_units(pages)[:1500]:  # facts come early; bounded work on long documents
        if not re.search(r"\d", unit) or len(unit) > 300:
            continue
        text = re.sub(r"^[\W_]{3,}|\s{2,}", " ", unit).strip()
        key = fold_name(text)
        if not key or key in seen or _furniture_key(text) in furniture or not WORD_RE.search(text):
            continue
        dated = bool(find_dates(text, doc.dmy))
        amounts = [a for a in find_amounts(blank_dates(text, find_dates(text, doc.dmy)), doc.decimal) if a.value]
        money = any(a.currency for a in amounts) or (any(a.is_money for a in amounts)
                                                     and bool(_MONEY_WORDS.search(fold(text))))
        if dated or money:
            seen.add(key)
            facts.append(text)
            if len(facts) >= limit:
                break
    return facts
