"""Extractive summaries for the offline engine: pick a document's most informative sentences, no ML.

Text layers wrap prose at line ends and lay tables out as space-separated columns, so the text is first cut
into *units*: prose lines are joined into paragraphs and split into sentences, table-like lines stay single
lines. Units are scored by how many of the document's frequent content words they carry, whether they state
numbers or dates, and how early they come; the best ones are returned in their original order.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

__all__ = ["summarize", "text_units"]

MAX_LINE = 2000  # characters kept per line (bounds the work on garbled text layers)

_COLUMN_GAP = re.compile(r"\S {3,}\S")
_LEADERS = re.compile(r"[.\-_=*·…]{4,}")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'»”)]*\s+(?=[\"'«„“(]?[A-ZÄÖÜÀ-Þ0-9])")
_ABBREV_END = re.compile(r"(?:\b(?:[A-Za-z]|Nr|No|Dr|Mr|Mrs|Ms|St|Str|ca|bzw|z\.B|u\.a|vgl|ggf|inkl|zzgl|Abs|Art|"
                         r"Co|Inc|Ltd|etc|e\.g|i\.e|vs|Fig|Abb|S)\.|(?<![\d.])\d{1,2}\.)$")  # "1. April": no end
_WORD = re.compile(r"[^\W\d_]{3,}")
_NUMBERISH = re.compile(r"\d")
_DATE_OR_MONEY = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}|\d[.,]\d{2}\b|[€$£]\s?\d|"
                            r"\d\s?(?:€|EUR|USD|GBP|CHF)\b|\b(?:EUR|USD|GBP|CHF)\s?\d|\d\s?%|\b(?:19|20)\d\d\b")
# Words that announce a conclusion, an obligation or a bottom line (EN/DE/FR).
_CUE_WORDS = frozenset(_w for _w in """
total amount due payable deadline result results conclusion summary agreed must shall required balance
gesamt gesamtbetrag summe betrag fallig zahlbar ergebnis fazit frist vereinbart
montant echeance resultat conclusion payer
""".split())
_PAGE_FURNITURE = re.compile(r"(?i)^(?:page|seite|p\.)\s*\d+(?:\s*(?:of|von|/|sur)\s*\d+)?$|^\d+\s*(?:/\s*\d+)?$")
_PAGE_NUMBER = re.compile(r"(?i)\s*\b(?:page|seite|p\.)\s*\d+\s*(?:of|von|/|sur)\s*\d+\b\s*")

# Words too common to say what a document is about (EN/DE/FR).
_STOPWORDS = frozenset("""
the and for with this that are was were been have has had from your you our will would shall should can could may
not but all any its their there which who whom what when where how into onto upon about over under than then also
per such these those other each more most some only very here please thank thanks dear regards sincerely
der die das und ist nicht mit von für den dem des ein eine einer eines einem auf wir sie ihr ihre ihnen unser
unsere bitte sich auch als bei nach zum zur oder wird werden wurde sind war aus hat haben sehr noch nur dass
les des une pour avec dans par sur est sont pas vous nous votre vos notre nos qui que cette ces aux leur plus
""".split())


def _fold(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s.lower()) if not unicodedata.combining(c))


def _is_tabular(line: str) -> bool:
    """Column gaps mean a table row or a label/value pair: keep it as its own unit."""
    return bool(_COLUMN_GAP.search(line.strip()))


def text_units(pages: list[str]) -> list[tuple[int, str]]:
    """(page, unit) in reading order: sentences of prose paragraphs, and table-like lines as they are."""
    units: list[tuple[int, str]] = []

    def flush(pno: int, para: list[str]) -> None:
        if para:
            text = " ".join(para)
            text = re.sub(r"(\w)- (\w)", lambda m: m.group(1) + ("-" if m.group(2).isupper() else "")
                          + m.group(2), text)  # re-join hyphenated line breaks
            for sent in _split_sentences(text):
                units.append((pno, sent))
            para.clear()

    for pno, page in enumerate(pages):
        para: list[str] = []
        for raw in (page or "").splitlines():
            raw = _LEADERS.sub("   ", raw[:MAX_LINE])  # dotted leaders and rules are layout, not text
            line = raw.strip()
            if not line:
                flush(pno, para)
                continue
            if _is_tabular(raw) or _PAGE_FURNITURE.match(line):
                flush(pno, para)
                line = _PAGE_NUMBER.sub("  ", line).strip()
                if line and not _PAGE_FURNITURE.match(line):
                    units.append((pno, re.sub(r"\s{2,}", "  ", line)))
                continue
            para.append(re.sub(r"\s+", " ", line))
            if len(line) < 40 and not re.search(r"[,;:\-]$", line):
                flush(pno, para)  # short line: a heading, an address line or the end of a paragraph
        flush(pno, para)
    return units


def _split_sentences(text: str) -> list[str]:
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        head = text[start:m.start()].strip()
        if _ABBREV_END.search(head) or len(head) < 3:
            continue
        out.append(head)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _content_words(unit: str) -> list[str]:
    return [w for w in (_fold(x) for x in _WORD.findall(unit)) if w not in _STOPWORDS]


def _candidates(units: list[tuple[int, str]]) -> list[int]:
    """Indexes of units worth scoring: no exact repeats, no header/footer printed on several pages."""
    keys = [_fold(re.sub(r"[\W\d_]+", "", t)) for _, t in units]
    pages_of: dict[str, set[int]] = {}
    for (pno, _), key in zip(units, keys):
        pages_of.setdefault(key, set()).add(pno)
    seen: set[str] = set()
    out: list[int] = []
    for i, (_, text) in enumerate(units):
        furniture = len(pages_of[keys[i]]) > 1 and len(_content_words(text)) <= 15
        if keys[i] and keys[i] not in seen and not furniture and not _PAGE_FURNITURE.match(text):
            out.append(i)
        seen.add(keys[i])
    if not out:  # every page alike: then only drop exact repeats
        out = sorted({k: i for i, k in reversed(list(enumerate(keys))) if k}.values())
    return out


def _score(i: int, n: int, pno: int, text: str, doc_freq: Counter[str]) -> float | None:
    """Frequent document terms (length-normalised) + early position + stated numbers/dates + cue words,
    minus a penalty for fluff (no document terms and no figures)."""
    words = _content_words(text)
    if not words:
        return None
    topical = sum(math.log1p(doc_freq[w]) for w in words if doc_freq[w] > 1) / math.sqrt(len(words) + 1)
    position = (1 - i / n) ** 2 + (0.3 if pno == 0 and i < 3 else 0)
    facts = 0.6 * min(2, len(_DATE_OR_MONEY.findall(text))) + (0.3 if _NUMBERISH.search(text) else 0)
    shape = 0.3 if re.search(r"[.!?]$", text) and len(words) >= 5 else 0
    cue = 0.8 if _CUE_WORDS.intersection(words) else 0
    penalty = 0.0 if facts else (0.8 if len(words) < 3 else 0) + (1.0 if topical == 0 else 0)
    return topical + position + facts + shape + cue - penalty


def summarize(pages: list[str], max_chars: int = 600) -> str:
    """A short extractive summary: the highest-scoring units in document order, within ``max_chars``."""
    units = text_units(pages)
    if not units or max_chars <= 0:
        return ""
    candidates = _candidates(units)
    # document terms are counted over the candidates: a letterhead repeated on every page is no topic
    doc_freq = Counter(w for i in candidates for w in set(_content_words(units[i][1])))
    scored = [(sc, i) for i in candidates
              if (sc := _score(i, len(units), units[i][0], units[i][1], doc_freq)) is not None]
    if not scored:
        return ""
    ranked = sorted(scored, key=lambda x: (-x[0], x[1]))
    floor = 0.35 * ranked[0][0]  # leftover room is not filled with weak units
    chosen: list[int] = []
    used = 0
    for score, i in ranked:
        if score < floor and chosen:
            break
        cost = len(units[i][1]) + (1 if chosen else 0)
        if used + cost <= max_chars:
            chosen.append(i)
            used += cost
        if used >= max_chars * 0.9:
            break
    if not chosen:  # even the best unit is too long: cut it at a word boundary
        text = units[ranked[0][1]][1]
        cut = text[:max(1, max_chars - 1)].rsplit(" ", 1)[0] if max_chars > 1 else ""
        return (cut + "…")[:max_chars]
    return " ".join(re.sub(r"\s{2,}", " ", units[i][1]) for i in sorted(chosen))
