"""What kind of document it is (invoice, contract, letter, report, ...): keyword scores, page 1 weighing most."""

from __future__ import annotations

import re
from collections import Counter

from .layout import Doc
from .text import fold

# Keyword regexes (folded text) per document type; compounds count ("Mietrechnung", "Kaufvertrag").
_DOC_TYPES: dict[str, tuple[str, ...]] = {
    "invoice": (r"invoice", r"\w*rechnung", r"facture", r"invoice (?:number|no|date)", r"rechnungs\w+", r"amount due",
                r"bill(?:ed)? to", r"zahlbar", r"due date", r"fattura", r"factura", r"factuur", r"total ttc"),
    "credit note": (r"credit note", r"gutschrift", r"avoir", r"rechnungskorrektur"),
    "receipt": (r"receipt", r"kassenbon", r"quittung", r"kassenbeleg", r"ticket de caisse", r"recu", r"change",
                r"ruckgeld", r"bar", r"cash", r"cashier", r"kasse", r"bon"),
    "contract": (r"contract", r"agreement", r"\w*vertrag", r"contrat", r"hereby", r"parties", r"party", r"clause",
                 r"terms and conditions", r"\w*vereinbarung", r"vertragspartner\w*", r"whereas", r"§"),
    "letter": (r"dear", r"sincerely", r"kind regards", r"sehr geehrte\w*", r"mit freundlichen grussen", r"madame",
               r"monsieur", r"cordialement", r"veuillez agreer", r"betreff", r"objet"),
    "report": (r"report", r"\w*bericht", r"rapport", r"summary", r"analysis", r"results", r"findings", r"conclusions?",
               r"introduction", r"chapter", r"kapitel", r"einleitung", r"abstract", r"zusammenfassung",
               r"table of contents", r"inhaltsverzeichnis", r"table des matieres", r"sommaire", r"preface", r"vorwort",
               r"bibliography", r"literaturverzeichnis", r"references", r"figure", r"abbildung"),
    "purchase order": (r"purchase order", r"bestellung", r"bon de commande", r"order number", r"po number"),
    "quotation": (r"quotation", r"quote", r"angebot", r"devis", r"kostenvoranschlag", r"valid until", r"gultig bis"),
    "delivery note": (r"delivery note", r"lieferschein", r"bon de livraison", r"packing list"),
    "bank statement": (r"bank statement", r"kontoauszug", r"releve de compte", r"opening balance", r"closing balance"),
    "payslip": (r"payslip", r"lohnabrechnung", r"gehaltsabrechnung", r"bulletin de paie", r"gross pay", r"net pay"),
}
DOC_TYPE_RES = {kind: [re.compile(rf"(?<![^\W\d_]){w}(?![^\W\d_])") for w in words]
                for kind, words in _DOC_TYPES.items()}
_TOKEN_RE = re.compile(r"[^\W\d_]+|§")
_SINGLE_WORD_RES = {w: re.compile(w) for words in _DOC_TYPES.values() for w in words if " " not in w}
_ANY_SINGLE_WORD_RE = re.compile("|".join(f"(?:{w})" for w in _SINGLE_WORD_RES))


def _keyword_counts(text: str) -> Counter[str]:
    """Occurrences of every keyword in ``text``: single words are looked up among the distinct words (fast even
    for '\\w*rechnung' on a 100-page text); phrases are searched only if their first word occurs at all."""
    counts: Counter[str] = Counter()
    for word, n in Counter(_TOKEN_RE.findall(text)).items():
        if _ANY_SINGLE_WORD_RE.fullmatch(word):
            for w, rx in _SINGLE_WORD_RES.items():
                if rx.fullmatch(word):
                    counts[w] += n
    for rxs in DOC_TYPE_RES.values():
        for rx in rxs:
            if " " in rx.pattern:
                lead = re.match(r"[a-z]+", rx.pattern.split(")", 1)[1])
                if lead is None or lead.group() in text:
                    counts[rx.pattern] = len(rx.findall(text))
    return counts


def document_type(doc: Doc) -> str | None:
    """Keyword scoring: the top of page 1 weighs most, then page 1 (documents announce what they are)."""
    lines = list(doc.nonempty())
    top = fold(" ".join(ln.flat for ln in lines[:12]))
    first = fold(" ".join(ln.flat for ln in lines[12:] if ln.page == 0))
    rest = fold(" ".join(ln.flat for ln in lines if ln.page > 0)[:200_000])
    zones = [_keyword_counts(text) for text in (top, first, rest)]
    scores: Counter[str] = Counter()
    for kind, words in _DOC_TYPES.items():
        for w, rx in zip(words, DOC_TYPE_RES[kind]):
            key = rx.pattern if " " in w else w
            # capped per keyword: one word repeated all over (a "§" per clause) must not decide alone
            n_top, n_first, n_rest = (z[key] for z in zones)
            scores[kind] += 4 * min(3, n_top) + 2 * min(5, n_first) + min(5, n_rest)
    if not scores or scores.most_common(1)[0][1] < 2:
        return None
    return scores.most_common(1)[0][0]
