"""What names and addresses look like in a cell: legal forms, company names, person/company names, address lines."""

from __future__ import annotations

import re

from .labels import LEGAL_CI, LEGAL_CS
from .text import fold

KV_RE = re.compile(r"^([^\W\d][\w.\- /]{0,30}?)\s*[:：]\s*(.*)$")
NAME_KV_RE = re.compile(r"^\W*(?:name|firma|company|raison sociale|nom)\s*[:：]?\s+(.+)$", re.I)
#: An Irish Eircode: routing key and unique identifier ("D02 X576", "T12 X2F7")
EIRCODE = r"\b[ACDEFHKNPRTVWXY]\d[\dW] [ACDEFHKNPRTVWXY\d]{4}\b"
#: A Canadian postal code ("M5J 2J2")
CA_POSTCODE = r"\b[ABCEGHJ-NPRSTVXY]\d[A-Z] \d[A-Z]\d\b"
ADDRESS_HINT_RE = re.compile(r"\d{4,5}\s+\w|\b\d+(?:st|nd|rd|th)\s+floor|\bfloor\b|etage|stock\b|building|"
                             r"geb[aä]ude|\b\d+[a-z]?\s*$|^\d+\s+\w|strasse|str\.|straße|weg\b|platz\b|allee\b|"
                             r"road|street|\bst\b|avenue|\bave\b|rue\b|chemin|boulevard|suite|p\.?o\.? box|"
                             r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b|" + EIRCODE + "|" + CA_POSTCODE, re.I)
CONTACT_RE = re.compile(r"@|https?:|www\.|\+?\d[\d ()/.-]{8,}\d|^(?:tel|fon|fax|phone|e-?mail|mobil)\b", re.I)
LEGAL_RE = re.compile(r"(?<![\w])(?:(?i:" + "|".join(LEGAL_CI) + r")|" + "|".join(LEGAL_CS) + r")(?![\w])")
_SALUTATIONS = frozenset("herr herrn frau firma mr mrs ms miss m mme monsieur madame dr attn z.hd. zhd".split())
_COUNTRIES = frozenset(fold(c) for c in (
    "Germany Deutschland France Frankreich Austria Österreich Switzerland Schweiz Suisse Italy Italia Spain España "
    "Netherlands Nederland Belgium Belgique Ireland Canada USA UK Luxembourg Poland Polska Sweden Denmark Norway "
    "Israel Portugal").split()) | {"united states", "united kingdom", "united states of america", "great britain"}


def clean_name(name: str) -> str:
    """Cut a name after its legal form: what follows on the line belongs to another column."""
    m = LEGAL_RE.search(name)
    if m and m.start() > 0:
        end = m.end()
        tail = re.match(r"\s*&\s*Co\.?(?:\s*KG)?", name[end:])
        name = name[:end + (tail.end() if tail else 0)]
    return name.strip(" ,;")


def looks_like_name(text: str, street_words: bool = False) -> bool:
    """``street_words``: a street word without a number may be part of a name ("Maple Street Dental"), as it is in
    the line above a street address."""
    t = text.strip()
    f = fold(t).strip(" .,:")
    if len(re.findall(r"[^\W\d_]", t)) < 2 or f in _COUNTRIES or f in _SALUTATIONS:
        return False
    addressy = ADDRESS_HINT_RE.search(t) and not (street_words and not re.search(r"\d", t))
    if CONTACT_RE.search(t) or (addressy and not LEGAL_RE.search(t)):
        return False
    if re.fullmatch(r"[\W\d]*", t) or len(t) > 80 or (t[:1].isdigit() and not LEGAL_RE.search(t)):
        return False
    return True


POSTCODE_RE = re.compile(r"\b\d{4,5}\s+[^\W\d_]|\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b|\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b|"
                          + EIRCODE + "|" + CA_POSTCODE)


def find_address(texts: list[str]) -> str | None:
    """Address lines under a name, up to the postcode line (and a country line after it)."""
    addr: list[str] = []
    done = False
    for t in texts:
        t = re.sub(r"(?i)^(?:anschrift|adresse|address)\s*:?\s*", "", t).strip()
        if not t or CONTACT_RE.search(t) or (KV_RE.match(t) and not ADDRESS_HINT_RE.search(t)):
            continue
        if done:
            if fold(t) in _COUNTRIES:
                addr.append(t)
            break
        if ADDRESS_HINT_RE.search(t) or fold(t) in _COUNTRIES:
            addr.append(t)
            done = bool(POSTCODE_RE.search(t))
        elif addr:
            break
    return ", ".join(addr) or None


_NAME_BREAKS = frozenset("on through by with from for to at via von durch bei mit fur par pour chez is are ist est "
                         "purchased paid made issued sold account name".split())


_PREFIX_LEGAL_RE = re.compile(r"^(?:SAS|SARL|SA|EURL|SCI|SASU|SNC|SELARL)\s+((?:[A-ZÀ-Ý][\w'’\-]*\s*){1,4})$")


def company_names(text: str) -> list[tuple[str, bool]]:
    """Company names with a legal form in a cell: (name, whether the name is the whole cell part).
    The form usually ends the name ('Acme GmbH'); French forms may open it ('SAS Bâtir Ensemble')."""
    out: list[tuple[str, bool]] = []
    for part in re.split(r"\s+[-–|]\s+|[●•·|∙▪]", text):
        part = part.strip(" ,;")
        if _PREFIX_LEGAL_RE.match(part):
            out.append((part, True))
            continue
        for m in LEGAL_RE.finditer(part):
            if re.match(r"\s+(?:liability|partnership)\b", part[m.end():], re.I):
                continue  # "a Delaware limited liability company": what kind, not whose name
            end = m.end()
            tail = re.match(r"\s*&\s*Co\.?(?:\s*KG)?", part[end:])
            if tail:
                end += tail.end()
            words = part[:m.start()].split()
            if not words:
                continue
            name_words: list[str] = []
            if (len(words) <= 5 and words[0][:1].isupper() and not any(fold(w) in _NAME_BREAKS for w in words)
                    and not any(w.isdigit() for w in words)):
                name_words = words  # the part is the name: "Au bon moulin SARL"
            for k, w in enumerate(reversed(words if not name_words else [])):
                if re.search(r"[:\"“”()\[\]]", w) or (w.endswith(",") and k > 0):
                    break
                if (w[:1].isupper() or w in ("&", "und", "and", "et", "de", "du", "des", "of", "the")) \
                        and len(name_words) < 6:
                    name_words.insert(0, w)
                else:
                    break
            while name_words and name_words[0].lower() in ("&", "und", "and", "et", "de", "du", "des", "of", "the"):
                name_words.pop(0)
            before = words[len(words) - len(name_words) - 1] if len(words) > len(name_words) else ""
            if before in ("a", "an") or any(w in ("a", "an") for w in name_words):
                continue  # "a Virginia corporation": a description of the party named before it
            if not name_words or not re.search(r"[^\W\d_]{2}", " ".join(name_words)):
                continue
            name = (" ".join(name_words) + " " + part[m.start():end]).strip()
            name = re.sub(r"\s+,", ",", name)
            out.append((name, len(name_words) == len(words) and end >= len(part.rstrip(". ")) - 1))
    return out


def fold_name(s: str) -> str:
    return re.sub(r"[\W_]+", "", fold(s))
