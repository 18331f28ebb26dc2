"""A receipt's header block: the merchant's name and address above the first transaction line.

The header is the run of lines before the first date, amount, till title or cashier line. Its lines are
registration numbers, contact lines, slogans, the name and the address; the name is the line that looks most like
a business name (a legal form, capitals, near the top) and least like a slogan or an address, and the address is
the lines after it that are not contact, registration or slogan lines.
"""

from __future__ import annotations

import re

from .layout import Doc, Line
from .names import ADDRESS_HINT_RE, LEGAL_RE
from .text import fold
from .vendor_address import addressy

# Legal forms and business words that till headers print after the name (Malaysia, Singapore, UK, ...)
_LEGAL_EXTRA_RE = re.compile(r"\b(?:sdn\.?\s*bhd|bhd|pte\.?\s*ltd|berhad|plt)\b")
_BUSINESS_RE = re.compile(r"\b(?:enterprise|trading|restaurant|restoran|store|stores|"
                          r"mart|supermarket|hypermarket|hardware|stationery|bakery|cafe|kitchen|pharmacy|"
                          r"boutique|company|co|holdings|industries|services|bistro|shop|market)\b\.?")
# Registration, tax and contact lines: "(162761-M)", "GST ID: 0016...", "TEL: 03-...", "Company Reg No."
_IDENT_RE = re.compile(r"\b(?:gst|hst|gstin|uen|rsin|vat|tax\s*id|reg(?:istration)?|co\.?\s*no|company\s*no|"
                       r"te[l1]|tele?phone|tele?fon|tlf|fax|phone|careline|hotline|outlet|site|"
                       r"hp|e-?mail|ust-?id|st\.?-?nr|mwst|siret|siren|tva|p\.?\s*iva|c\.?f|cif|nif|nie|kvk|btw|abn|"
                       r"roc|brn|tin|uid)\b|@|www\.|https?:|^[^\W\d][\w .]{0,20}[:=]\s*[\d\-() +]{5,}")
# Words of slogans, greetings and cashier lines: a phrase, not a business's name
_PHRASE_RE = re.compile(r"\b(?:welcome|thank|thanks|since|every|your|our|you|visit|please|best|quality|open|"
                        r"daily|days|week|taste|enjoy|served|cashier|operator|counter|salesperson|willkommen|"
                        r"danke|bienvenue|merci|bienvenido|gracias|benvenuti|grazie|welkom|bedankt|seit|depuis|"
                        r"desde|dal|sinds|manager|mgr|supervisor)\b")
# Lines that open the transaction: titles, till metadata, table heads
_TXN_RE = re.compile(r"\b(?:tax\s+invoice|invoice|receipt|bill|cash\s+sale|ticket|kassenbon|beleg|bon|"
                     r"quittung|factura|fattura|scontrino|kassabon|rechnung|facture|cashier|kasse|caissier|cajero|"
                     r"cassiere|doc(?:ument)?\s*no|table|pax|order|qty|item|description|date|datum|fecha|data|"
                     r"time|served)\b|^[-=*_~.\s]{5,}$|\b[a-z]{2,4}#\s?\d+\s+[a-z]{2,4}#")  # "ST# 01893 OP# 009044"
_BARE_TITLE_RE = re.compile(r"^\W*(?:tax\s+invoice|invoice|receipt|official\s+receipt|cash\s+(?:sale|bill))\W*$")


def _letters(t: str) -> int:
    return len(re.findall(r"[^\W\d_]", t))


def _prices(doc: Doc, ln: Line) -> bool:
    """Whether a line carries a price: money with no word after it ('55,57 & 59, JALAN SAGU' is a street number)."""
    return any(a.is_money and a.decimals == 2 and not re.search(r"[^\W\d_]{3,}", ln.flat[a.end:])
               for a in doc.amounts(ln))


def header_lines(doc: Doc, limit: int = 14) -> list[Line]:
    """Lines of the first page before the first transaction line (date, money, till title, cashier). A bare till
    title between the name and the address ("TAX INVOICE" / "NO7, JLN EURO, SHAH ALAM") lets the address through."""
    out: list[Line] = []
    title_passed = False
    lines = [ln for ln in doc.nonempty() if ln.page == 0]
    for i, ln in enumerate(lines):
        if len(out) >= limit:
            break
        f = fold(ln.flat)
        opens = bool(doc.dates(ln) or _prices(doc, ln) or _TXN_RE.search(f))
        if title_passed and (opens or not addressy(ln.flat)):
            break
        if out and opens:
            nxt = lines[i + 1] if i + 1 < len(lines) else None
            if (_BARE_TITLE_RE.match(f) and nxt is not None and addressy(nxt.flat) and not doc.dates(nxt)
                    and not any(addressy(o.flat) for o in out if not _is_noise(o))):
                title_passed = True
                continue
            break
        if not out and opens:
            continue  # a till number, print time or till title above the name
        out.append(ln)
    return out


# a postcode with its town glued on by the OCR: "28013Madrid"
_GLUED_TOWN_RE = re.compile(r"\b(\d{4,5})([A-Z][a-z]{2,})")


def _is_noise(ln: Line) -> bool:
    """Registration/contact lines and lines of codes: never the name, skipped inside the address."""
    t = _GLUED_TOWN_RE.sub(r"\1 \2", ln.flat.strip())
    words = [w for w in re.findall(r"[^\W\d_]{2,}|\S*\d\S*", t) if not re.search(r"\d", w)]
    codes_only = not words and len(re.findall(r"\d", t)) >= 4     # "(162761-M)", "3180303"
    return bool(_IDENT_RE.search(fold(t))) or codes_only or _letters(t) < 2


def _name_score(ln: Line, pos: int) -> float:
    t = ln.flat.strip()
    f = fold(t)
    score = -0.4 * pos
    legal = bool(LEGAL_RE.search(t) or _LEGAL_EXTRA_RE.search(f))
    if legal:
        score += 4
    elif _BUSINESS_RE.search(f):
        score += 2
    letters = re.findall(r"[^\W\d_]", t)
    if letters and sum(c.isupper() for c in letters) >= 0.8 * len(letters):
        score += 1
    if _PHRASE_RE.search(f) or (re.search(r"[!*]|\.\s*$", t) and not legal):
        score -= 4
    if ADDRESS_HINT_RE.search(t) or re.search(r"\d", t):
        score -= 2.5
    if len(letters) < 3:
        score -= 5
    return score


# "Receipt from Lumenfield, Inc.", "Your receipt from ... #2041-9937", "Quittung von ...": a web shop's title
_FROM_RE = re.compile(r"^\W*(?:your\s+)?(?:receipt|invoice|order|payment|quittung|rechnung|beleg|re[çc]u|facture|"
                      r"recibo|factura|ricevuta|fattura|bon)\s+(?:from|by|von|de|da|van)\s+(?P<name>[^#\n]{2,60}?)"
                      r"\s*(?:#.*)?$", re.I)


def _title_name(doc: Doc) -> tuple[Line | None, str] | None:
    """The merchant a receipt's title names (its own first lines, or a saved web page's title)."""
    first = [ln for ln in doc.nonempty() if ln.page == 0][:12]
    for ln, text in [(ln, ln.flat) for ln in first] + [(None, doc.print_cues.title or "")]:
        m = _FROM_RE.match(text.strip())
        if m and _letters(m["name"]) >= 2:
            return ln, m["name"].strip(" ,:")
    return None


def merchant_name_and_address(doc: Doc) -> tuple[Line | None, str | None, str | None]:
    """(name line, name, address) from the header block; None where the header gives nothing. A title naming
    the merchant ("Receipt from ...") comes first: a web receipt's header is headings, not a till's letterhead."""
    titled = _title_name(doc)
    if titled:
        return titled[0], titled[1], None
    head = [ln for ln in header_lines(doc)]
    cands = [(ln, i) for i, ln in enumerate(head) if not _is_noise(ln)]
    if not cands:
        return None, None, None
    name_ln = max(cands, key=lambda c: _name_score(c[0], c[1]))[0]
    if _name_score(name_ln, 0) < -3:
        return None, None, None
    name, rest = _split_name(name_ln.flat)
    after = head[head.index(name_ln) + 1:]
    if not rest and after and _continues_name(after[0]):
        name = f"{name} {after[0].flat.strip()}"  # "TSH POWER HARDWARE" / "TRADING": a name on two lines
        after = after[1:]
    addr = _address_lines(name_ln, after, [rest] if rest else [])
    return name_ln, name, ", ".join(addr) if addr else None


def _address_lines(name_ln: Line, after: list[Line], addr: list[str]) -> list[str]:
    """The address under the name: header lines up to the contact block, a slogan or a blank line after the
    postcode, skipping registration lines, the company behind a brand and a trading name before the street."""
    prev = name_ln
    for k, ln in enumerate(after):
        t = ln.flat.strip()
        gap, prev = ln.idx - prev.idx > 1, ln
        if gap and any(re.search(r"\d{4,}", a) for a in addr):
            break  # a blank line after the postcode closes the address ("D'Rosh Servport" below is a name)
        if _is_noise(ln):
            if addr and _IDENT_RE.search(fold(t)):
                label = _IDENT_RE.search(t.lower())  # "81750 Johor Bahru, Johor. Tel No.: 07-...": keep the town
                head_part = t[:label.start()].strip(" ,.;:") if label else ""
                if head_part and addressy(head_part):
                    addr.append(head_part)
                break  # the contact block closes the address
            continue
        if LEGAL_RE.search(t) or _LEGAL_EXTRA_RE.search(fold(t)):
            continue  # the company behind a brand name: not part of the address
        slogan = not re.search(r"\d", t) and bool(re.search(r"[a-z]\.\s+[A-Z]|!", t))  # "Save money. Live better."
        if slogan or _PHRASE_RE.search(fold(t)) or len(addr) >= 5:
            if addr:
                break
            continue
        if not addr and _trading_name(t) and any(addressy(o.flat) and re.search(r"\d", o.flat) for o in after[k + 1:]):
            continue  # a trading name under the company's ("FASARAYA BORONG SUPER SEVEN", "Express"), before the street
        addr.append(_GLUED_TOWN_RE.sub(r"\1 \2", t.rstrip(" ,")))
    return addr


def _trading_name(t: str) -> bool:
    """A line in capitals or of one word, with no number and no street: a name, not an address line."""
    return (t.isupper() or len(t.split()) == 1) and not re.search(r"\d", t) and not addressy(t)


def _continues_name(ln: Line) -> bool:
    """A line of nothing but business words or a legal form ("TRADING", "SDN BHD", "ENTERPRISE")."""
    f = fold(ln.flat).strip(" .,")
    rest = _BUSINESS_RE.sub(" ", _LEGAL_EXTRA_RE.sub(" ", f))
    return bool(f) and not rest.strip(" .,&") and len(f.split()) <= 3


def _split_name(text: str) -> tuple[str, str]:
    """(name, the rest of the line): a registration number in brackets or an address after the legal form is cut
    off: 'ACME SDN BHD (590150-A) 28-05', 'Segi Cash Sdn. Bhd. Pt17920 Sek U9, Shah Alam'."""
    t = re.sub(r"\s*[(\[][^)\]]*\d[^)\]]*[)\]]?.*$", "", text).strip()
    t = re.sub(r"^\W*\(\w\)\s*", "", t)               # "(P) Segi ..."
    t = re.sub(r"^(?:di|de|del|della|van|von)\s+(?=[A-Z])", "", t)  # "di Rossi Mario & C. s.n.c.": the owner's line
    rest = ""
    m = _LEGAL_EXTRA_RE.search(fold(t)) or LEGAL_RE.search(t)
    if m and m.end() < len(t) and re.search(r"\d", t[m.end():]):
        end = m.end() + (1 if t[m.end():m.end() + 1] == "." else 0)
        t, rest = t[:end], t[end:].strip(" ,;")
        if len(rest.split()) == 1 and not addressy(rest):
            rest = ""  # a registration number after the form ("SDN BHD 800725-U"), not an address
    return re.sub(r"\s{2,}", " ", t).strip(" ,;:-") or text.strip(), rest
