"""Vendor and customer: address blocks under party labels, sender lines, the letterhead, the first line."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .labels import (
    BUYER_LABELS,
    DELIVERY_LABELS,
    DOC_WORDS,
    LEGAL_CI,
    OTHER_BLOCK_LABELS,
    RELAXED_LABELS,
    SELLER_LABELS,
)
from .layout import Doc, Line, Seg
from .lookup import cell_below
from .names import (
    ADDRESS_HINT_RE,
    KV_RE,
    LEGAL_RE,
    NAME_KV_RE,
    POSTCODE_RE,
    clean_name,
    company_names,
    find_address,
    fold_name,
    looks_like_name,
)
from .text import fold


@dataclass
class Party:
    name: str | None = None
    address: str | None = None
    lines: list[tuple[int, Seg]] = field(default_factory=list)


def _block_label_re(alts: Iterable[str]) -> re.Pattern[str]:
    """A label that *is* its cell ("Bill to", "Verkäufer:"), optionally followed by ': value'. Its words may run
    together ("Billto", "Facturara"): OCR drops spaces, and the whole cell must still be the label."""
    alts = [a.replace(r"\s+", r"\s*") for a in alts]
    return re.compile(r"^[^\w]*(?:" + "|".join(alts) + r")\s*(?:(?:[:\-–—])\s*(?P<rest>.*))?$")


def _relaxed_label_re(alts: Iterable[str]) -> re.Pattern[str]:
    """Label opening a cell with other text after it ("BILL TO SHIP TO" when OCR merged columns); the block is
    then read below. Only unmistakable labels: short or common ones ("To", "Client") start ordinary sentences."""
    return re.compile(r"^[^\w]*(?:" + "|".join(alts) + r")\s+(?P<after>(?!(?i:" + "|".join(LEGAL_CI) + r")\b)\S.*)$")


SELLER_RE = _block_label_re(SELLER_LABELS)
BUYER_RE = _block_label_re(BUYER_LABELS)
DELIVERY_RE = _block_label_re(DELIVERY_LABELS)
_OTHER_BLOCK_RE = _block_label_re(OTHER_BLOCK_LABELS)
_RELAXED = {rx.pattern: _relaxed_label_re(RELAXED_LABELS[kind])
            for rx, kind in ((SELLER_RE, "seller"), (BUYER_RE, "buyer"), (DELIVERY_RE, "delivery"))}


def _block(doc: Doc, line_idx: int, seg: Seg, rest: str | None, max_lines: int = 8) -> list[tuple[int, Seg]]:
    """Cells that belong to the address block under a label: same column, until another block label."""
    out: list[tuple[int, Seg]] = []
    if rest and rest.strip():
        out.append((line_idx, Seg(line_idx, seg.end - len(rest), rest.strip())))
    misses = 0
    for ln in doc.nonempty(line_idx + 1):
        if ln.page != doc.lines[line_idx].page:
            break
        cell = cell_below(ln, seg.col, seg.end, slack=12)
        if cell is None:
            misses += 1
            if misses > 2:
                break
            continue
        f = fold(cell.text)
        if SELLER_RE.match(f) or BUYER_RE.match(f) or DELIVERY_RE.match(f) or _OTHER_BLOCK_RE.match(f):
            break
        if cell.text.rstrip().endswith(":"):  # "Name:" with its value in the next cell
            nxt = [s for s in ln.segs if s.col > cell.col]
            if nxt:
                cell = Seg(ln.idx, cell.col, cell.text + " " + nxt[0].text)
        out.append((ln.idx, cell))
        if len(out) >= max_lines:
            break
    return out


def _party_from_block(doc: Doc, cells: list[tuple[int, Seg]], prefer_company: bool, inline: bool = False) -> Party:
    """Name = a 'Name:' cell, else the first name-like cell (a company one line below a person wins for buyers).
    ``inline``: the label had its value beside it ('To: ...'), so only that first cell may be the name."""
    party = Party(lines=cells)
    texts = [c.text for _, c in cells]
    if inline:
        first = clean_name(texts[0]) if texts else ""
        if looks_like_name(first):
            party.name = first
            # "Bill To: Marlow Builders Ltd, 8 High Street, Bath BA1 1AA": the address after the name, same line
            after = [p.strip() for p in texts[0][texts[0].find(first) + len(first):].split(",") if p.strip()]
            party.address = find_address(texts[1:5]) or (find_address([", ".join(after)]) if after else None)
        return party
    name_i: int | None = None
    for i, t in enumerate(texts[:4]):
        m = NAME_KV_RE.match(t)
        if m and looks_like_name(m.group(1)):
            party.name, name_i = m.group(1).strip(), i
            break
    if party.name is None:
        for i, t in enumerate(texts):
            t = clean_name(t)
            kv = KV_RE.match(t)
            if kv and not LEGAL_RE.search(kv.group(1)):
                continue  # "Nummer: 549910", "GLN: ..."
            if re.fullmatch(r"(?i)(?:herrn?|frau|mr|mrs|ms|m|mme|monsieur|madame|firma|attn)\.?", t.strip()):
                continue
            street_next = i + 1 < len(texts) and re.match(r"\d+[a-z]?\s+\w", texts[i + 1].strip())
            if looks_like_name(t, street_words=bool(street_next)):
                party.name, name_i = t.strip(), i
                break
            if i >= 3:
                break
        if (prefer_company and party.name and name_i is not None and not LEGAL_RE.search(party.name)
                and name_i + 1 < len(texts) and LEGAL_RE.search(texts[name_i + 1])
                and looks_like_name(texts[name_i + 1])):
            party.name, name_i = texts[name_i + 1].strip(), name_i + 1
    if party.name is not None and name_i is not None:
        party.name = clean_name(party.name)
        party.address = find_address(texts[name_i + 1:name_i + 5])
    elif texts and ADDRESS_HINT_RE.search(texts[0]):
        party.address = find_address(texts[:4])  # "FROM" over the street: the name stands elsewhere (a letterhead)
    return party


def labelled_party(doc: Doc, label_re: re.Pattern[str], prefer_company: bool,
                   strictness: tuple[bool, ...] = (True, False)) -> Party | None:
    """Party under a block label; labels that are the whole cell first, then labels with text after them."""
    relaxed = _RELAXED[label_re.pattern]
    for strict in strictness:
        for ln in doc.head_tail():
            for seg in ln.segs:
                m = (label_re if strict else relaxed).match(seg.folded)
                if not m:
                    continue
                rest = seg.text[m.start("rest"):] if strict and m.group("rest") else None
                if not strict and LEGAL_RE.search(after := seg.text[m.start("after"):]):
                    rest = after  # "Sold by Brixton Home Goods Ltd": the name beside its label, no colon
                cells = _block(doc, ln.idx, seg, rest)
                party = _party_from_block(doc, cells, prefer_company, inline=bool(rest and rest.strip()))
                if party.name:
                    return party
    return None


def labelled_address(doc: Doc, label_re: re.Pattern[str]) -> str | None:
    """The address under a block label that names no one ("FROM" / "4th Floor, 27 Hatton Garden" / "London ...")."""
    for ln in doc.head_tail():
        for seg in ln.segs:
            m = label_re.match(seg.folded)
            if m and not m.group("rest"):
                party = _party_from_block(doc, _block(doc, ln.idx, seg, None), prefer_company=False)
                if party.name is None and party.address:
                    return party.address
    return None


_BULLET_RE = re.compile(r"[●•·|∙▪]")
_ONE_BULLET_RE = re.compile(r"[●•·|∙▪][^●•·|∙▪,]+,\s*(?:[A-Z]{1,2}-?)?\d{4,5}\s+\w")
_BANK_RE = re.compile(r"(?i)bank|sparkasse|iban|bic\b|swift|raiffeisen|credit agricole|caisse")


def bullet_senders(doc: Doc) -> list[tuple[Line, str]]:
    """Lines like 'Firma GmbH · Straße 1 · 12345 Ort' (envelope sender line, letter footer): (line, first part).

    Both name the issuer first; a first part that is a bank or an address is no name and is skipped.
    """
    out = []
    for ln in doc.head_tail():
        bullets = len(_BULLET_RE.findall(ln.text))
        # 'Firma GmbH · Straße 1 · 12345 Ort', or with one bullet: 'Firma GmbH · Straße 1, 12345 Ort'
        if not (bullets >= 2 or (bullets == 1 and _ONE_BULLET_RE.search(ln.text))) \
                or not re.search(r"\b\d{4,5}\b", ln.text):
            continue
        first = next((s for s in ln.segs if not _BULLET_RE.fullmatch(s.text)), None)
        if first is None:
            continue
        sender = _BULLET_RE.split(first.text)[0].strip()
        if looks_like_name(sender) and not _BANK_RE.search(sender) and not ADDRESS_HINT_RE.search(sender):
            out.append((ln, sender))
    return out


def envelope_recipient(doc: Doc, senders: list[tuple[Line, str]]) -> Party | None:
    """The name right under a sender line near the top of page 1 (window envelope): the customer, with the
    address lines under it."""
    top = [ln.idx for ln in doc.nonempty() if ln.page == 0][:30]
    for ln, _ in senders:
        if ln.idx not in top:
            continue
        for below in doc.nonempty(ln.idx + 1, ln.idx + 4):
            cell = cell_below(below, ln.segs[0].col, ln.segs[0].col + 20, slack=4)
            if cell and looks_like_name(cell.text):
                under = [c.text for _, c in _block(doc, below.idx, cell, None, max_lines=4)]
                return Party(name=cell.text.strip(), address=find_address(under), lines=[(below.idx, cell)])
    return None


_ADDRESSEE_RE = re.compile(r"^(?:mr|mrs|ms|miss|mx|dr|herrn?|frau|m|mme|monsieur|madame|sr|sra|sig|sig\.ra)\.?\s+"
                           r"[^\W\d_]", re.I)


def addressee(doc: Doc) -> Party | None:
    """An unlabelled addressee on page 1: 'Ms Alice Turner' over a street and a postcode line (a utility bill,
    a letter-style invoice). The name keeps its title, as the page prints it."""
    for ln in [ln for ln in doc.nonempty() if ln.page == 0][:40]:
        for seg in ln.segs:
            if not _ADDRESSEE_RE.match(seg.text.strip()) or not looks_like_name(seg.text):
                continue
            under = [c.text for _, c in _block(doc, ln.idx, seg, None, max_lines=4)]
            address = find_address(under)
            if address and POSTCODE_RE.search(address):
                return Party(name=seg.text.strip(), address=address, lines=[(ln.idx, seg)])
    return None


def letterhead_vendor(doc: Doc, exclude: set[tuple[int, int]], customer: str | None) -> str | None:
    """The issuer's company name: earliest legal-form name outside the buyer block, whole cells first."""
    best: tuple[float, str] | None = None
    first_page = [ln for ln in doc.nonempty() if ln.page == 0]
    top = {ln.idx for ln in first_page[:12]}
    cust = fold_name(customer) if customer else None
    earlier: list[Line] = []  # the lines read so far: the last is the one above
    for rank, ln in enumerate(doc.head_tail(head=1)):
        prev = earlier[-1] if earlier else None
        for seg in ln.segs:
            if (ln.idx, seg.col) in exclude:
                continue
            text = seg.text
            if not LEGAL_RE.search(text):
                continue
            above = cell_below(prev, seg.col, seg.end, slack=4) if prev is not None else None
            if LEGAL_RE.fullmatch(text.strip()) and above is not None and looks_like_name(above.text):
                text = above.text + " " + text  # "Northwind Creative" / "Ltd" on two lines
            elif (start := _wrapped_start(earlier[-2:], seg)) is not None:
                text = start + " " + text  # "Amazon Web" / "Services, Inc.": a name wrapped in a narrow column
            for name, whole in company_names(text):
                fn = fold_name(name)
                if cust and (fn in cust or cust in fn) or _BANK_RE.search(name):
                    continue
                score = ((3 if whole else 0) + (2 if ln.idx in top else 0) - rank * 0.01
                         - (3 if _BANK_RE.search(ln.text) else 0))
                if best is None or score > best[0]:
                    best = (score, name)
        earlier.append(ln)
    return best[1] if best else None


def _wrapped_start(above: list[Line], seg: Seg) -> str | None:
    """The first line of a company name that wrapped: a cell starting in seg's column on one of the lines just
    above, of at most three capitalised words ending without punctuation, when seg opens with a capital too and
    its first word would not have fitted on that line (else a heading sits above a whole name)."""
    if not seg.text[:1].isupper():
        return None
    first_word = seg.text.split()[0]
    for ln in reversed(above):
        cell = next((s for s in ln.segs if abs(s.col - seg.col) <= 1), None)
        if cell is None:
            continue
        words = cell.text.split()
        if (len(words) <= 3 and all(w[:1].isupper() for w in words) and re.search(r"\w$", cell.text)
                and not re.search(r"\d", cell.text) and looks_like_name(cell.text)
                and not re.search(rf"\b{DOC_WORDS}\b", cell.folded) and not LEGAL_RE.search(cell.text)
                and len(cell.text) + 1 + len(first_word) > len(seg.text)):
            return cell.text.strip()
        return None
    return None


def top_line_name(doc: Doc, exclude: set[tuple[int, int]]) -> str | None:
    """Last resort for the issuer: a short capitalised cell among the first lines that is no title or label."""
    for ln in list(doc.nonempty())[:3]:
        if any(a.is_money for a in doc.amounts(ln)):
            continue  # "Montant HT   1 234,56" is a totals row, not a letterhead
        for seg in ln.segs:
            if re.match(rf"\W*{DOC_WORDS}\b", seg.folded):
                continue  # "FACTURE D'ACOMPTE" is a title
            t = re.sub(rf"(?i)\s+{DOC_WORDS}\s*$", "", seg.text).strip()  # "Jordan Ellis Photography INVOICE"
            f = fold(t)
            if (ln.idx, seg.col) in exclude or re.search(rf"\b{DOC_WORDS}\b", f) or ":" in t or re.search(r"\d", t):
                continue
            if looks_like_name(t) and len(t.split()) <= 5 and t[:1].isupper():
                return t
    return None


_TITLE_SPLIT_RE = re.compile(r"\s+[|·•–—-]\s+|:\s+")
_HOST_RE = re.compile(r"(?i)(?:@|://|\bwww\.)([\w-]+(?:\.[\w-]+)*\.[a-z]{2,})\b")
_SECOND_LEVEL = frozenset("co com org net ac gov edu".split())  # "brightloop.co.uk": the name is before them


def _domain_name(host: str) -> str:
    """'app.brightloop.io' -> 'brightloop', 'shop.kaleido.co.uk' -> 'kaleido'."""
    labels = host.lower().split(".")
    i = -3 if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL else -2
    return labels[i] if len(labels) >= -i else labels[0]


def title_vendor(doc: Doc, customer: str | None) -> str | None:
    """The issuer a saved web page's title names ('Invoice | Brightloop'), when the page names it too: as a cell
    of its own or as the domain of an e-mail or web address (a title alone may name a portal or a product)."""
    title = doc.print_cues.title
    if not title:
        return None
    cells = {fold_name(s.text) for ln in doc.head_tail() for s in ln.segs}
    domains = {fold_name(_domain_name(m.group(1))) for m in _HOST_RE.finditer(doc.text)}
    cust = fold_name(customer) if customer else None
    for part in _TITLE_SPLIT_RE.split(title):
        part = part.strip()
        key = fold_name(part)
        if (not key or key == cust or re.search(rf"\b{DOC_WORDS}\b", fold(part)) or re.search(r"[\d#]", part)
                or not looks_like_name(part)):
            continue
        if key in cells or key in domains:
            return part
    return None


def under_title_party(doc: Doc, vendor: str) -> Party | None:
    """The customer of a template that prints no label (Xero's): a name and address block right under the
    document's title at the left, while the vendor's letterhead stands in a column to its right."""
    first = [ln for ln in doc.nonempty() if ln.page == 0][:25]
    want = fold_name(vendor)
    vendor_cols = [s.col for ln in first for s in ln.segs if want and want in fold_name(s.text)]
    for ln in first:
        seg = ln.segs[0]
        if not re.fullmatch(rf"\W*(?:tax\s+)?{DOC_WORDS}\W*", seg.folded):
            continue
        if not vendor_cols or min(vendor_cols) < seg.end + 10:
            return None  # the letterhead is not beside the block: the block may be the vendor's own
        party = _party_from_block(doc, _block(doc, ln.idx, seg, None), prefer_company=True)
        if party.name and party.address and fold_name(party.name) != want:
            return party
        return None
    return None
