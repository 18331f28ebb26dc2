"""User schemas, beyond 'Label: value': label phrasings in six languages, values recognised by their shape
(e-mail, IBAN, phone, URL), and list fields read from a table whose header names the item's fields.

A field's labels come from its name, its aliases and its description, each word also in its usual translations
(``order number`` -> ``Bestellnummer``, ``numéro de commande``, ``n° pedido`` ...), so a schema written in English
finds its values on a German or Spanish page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .layout import Doc, Line
from .text import fold

# word -> translations and common abbreviations (folded; German compounds are formed by joining words)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "number": ("no", "nr", "#", "nummer", "numero", "n°", "num", "id"),
    "no": ("number", "nr", "nummer", "numero"),
    "id": ("number", "no", "nr", "nummer", "numero"),
    "date": ("datum", "fecha", "data", "dated"),
    "total": ("gesamt", "summe", "totale", "totaal", "montant total", "importe total", "grand total"),
    "amount": ("betrag", "montant", "importe", "importo", "bedrag", "sum", "value"),
    "value": ("wert", "valeur", "valor", "valore", "waarde", "amount"),
    "price": ("preis", "prix", "precio", "prezzo", "prijs", "rate"),
    "quantity": ("qty", "menge", "anzahl", "quantite", "qte", "cantidad", "cant", "quantita", "aantal", "units"),
    "description": ("beschreibung", "bezeichnung", "designation", "descripcion", "descrizione", "omschrijving",
                    "item", "article", "artikel", "concepto", "libelle"),
    "customer": ("kunde", "client", "cliente", "klant", "buyer", "bill to", "sold to"),
    "buyer": ("kaufer", "acheteur", "comprador", "acquirente", "koper", "customer"),
    "supplier": ("lieferant", "fournisseur", "proveedor", "fornitore", "leverancier", "vendor", "seller"),
    "vendor": ("supplier", "seller", "verkaufer", "vendeur", "vendedor", "venditore", "verkoper"),
    "order": ("bestellung", "bestell", "auftrags", "auftrag", "commande", "pedido", "ordine", "bestelling", "po",
              "purchase order"),
    "invoice": ("rechnung", "facture", "factura", "fattura", "factuur"),
    "delivery": ("lieferung", "liefer", "lieferungs", "livraison", "entrega", "consegna", "levering", "ship",
                 "shipping"),
    "due": ("fallig", "falligkeit", "echeance", "vencimiento", "scadenza", "verval", "payable"),
    "reference": ("ref", "referenz", "reference", "referencia", "riferimento", "referentie", "your ref"),
    "email": ("e-mail", "mail", "courriel", "correo", "posta elettronica"),
    "phone": ("tel", "telephone", "telefon", "telefono", "telefoon", "mobile", "phone no"),
    "address": ("adresse", "anschrift", "direccion", "indirizzo", "adres"),
    "name": ("name", "nom", "nombre", "nome", "naam"),
    "tax": ("vat", "mwst", "ust", "tva", "iva", "btw", "steuer", "gst"),
    "net": ("netto", "ht", "neto", "imponibile"),
    "contract": ("vertrag", "contrat", "contrato", "contratto", "contract"),
    "policy": ("police", "polizze", "poliza", "polizza", "polis"),
    "account": ("konto", "compte", "cuenta", "conto", "rekening"),
    "patient": ("patient", "paciente", "paziente"),
    "start": ("beginn", "debut", "inicio", "inizio", "begin", "from"),
    "end": ("ende", "fin", "fine", "eind", "until", "to"),
    "weight": ("gewicht", "poids", "peso", "gewicht"),
    "unit": ("einheit", "unite", "unidad", "unita", "eenheid"),
    "issue": ("ausstellung", "emission", "emision", "emissione", "uitgifte"),
    "employee": ("mitarbeiter", "employe", "empleado", "dipendente", "werknemer"),
    "gross": ("brutto", "brut", "bruto", "lordo"),
    "period": ("zeitraum", "periode", "periodo", "periode"),
}
_STOP = frozenset("the a an of der die das le la les el los il de du des for".split())

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
PHONE_RE = re.compile(r"(?<![\w/])(?:\+|00)?\d[\d ()./-]{6,18}\d(?![\w/])")
URL_RE = re.compile(r"\b(?:https?://|www\.)[\w.-]+(?:/[\w./?=&%-]*)?")
_SHAPES: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (("email", "mail"), EMAIL_RE), (("iban",), IBAN_RE), (("phone", "tel", "telephone", "mobile", "fax"), PHONE_RE),
    (("url", "website", "web", "homepage"), URL_RE))


def name_words(name: str) -> list[str]:
    """'poNumber' / 'po_number' / 'PO-Number' -> ['po', 'number']."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return [w for w in re.split(r"[_\-\s]+", s) if w]


def field_label_patterns(name: str, info: FieldInfo) -> list[str]:
    """Regex sources (on folded text) for a field's labels: its name, aliases and description lead, each word also
    in its translations, words joined as phrase or compound ('order number', 'Bestellnummer', 'n° de commande')."""
    bases: list[list[str]] = [name_words(name)]
    for alias in (info.alias, info.validation_alias if isinstance(info.validation_alias, str) else None,
                  info.serialization_alias):
        if alias and alias != name:
            bases.append(name_words(alias))
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    for alias in extra.get("aliases", []) or []:
        bases.append(fold(str(alias)).split())
    if info.description:
        words = [w for w in re.split(r"[^\w'#°]+", fold(info.description.split(".")[0].split(",")[0])) if w]
        while words and words[0] in _STOP:
            words.pop(0)
        for k in (3, 2):
            if len(words) >= k:
                bases.append([w.replace("'s", "") for w in words[:k]])
    out: list[str] = []
    for words in bases:
        words = [w for w in words if w not in _STOP][:3] or words[:3]
        alts = ["(?:" + "|".join(re.escape(x).replace(r"\ ", r"\s*") for x in sorted(
            {w, *SYNONYMS.get(w, ())}, key=len, reverse=True)) + ")" for w in words]
        pattern = _SEP.join(alts)
        if len(alts) == 2:
            pattern = f"(?:{pattern}|{alts[1]}{_OF}{alts[0]})"
        if pattern not in out:
            out.append(pattern)
    return out


_SEP = r"\s*[-_./]?\s*"
_OF = r"\s*(?:[-_./]|\b(?:of|de|di|van|du|del|des|der|la)\b)?\s*(?:\b(?:la|le|el|il)\b)?\s*"


def shape_value(doc: Doc, name: str) -> str | None:
    """A value recognised by its shape when the field's name says what it is (email, iban, phone, url)."""
    words = set(name_words(name))
    for keys, rx in _SHAPES:
        if words & set(keys):
            for ln in doc.nonempty():
                m = rx.search(ln.text)
                if m and (rx is not PHONE_RE or len(re.sub(r"\D", "", m.group())) >= 7):
                    return m.group().strip()
    return None


def table_rows(doc: Doc, item: type[BaseModel], coerce: Callable[[str, Any], Any]) -> list[dict[str, Any]]:
    """Rows of the first table whose header names at least two of the item's fields; each cell read by the field
    whose header sits over it. Stops at the first line that is not a row (a totals line, a blank run)."""
    phrases = {n: re.compile("|".join(f"(?:{p})" for p in field_label_patterns(n, f)))
               for n, f in item.model_fields.items()}
    lines = list(doc.nonempty())
    for i, ln in enumerate(lines):
        header = _header_columns(ln, phrases)
        if len(header) < 2:
            continue
        rows: list[dict[str, Any]] = []
        for row in lines[i + 1:i + 200]:
            cells = _assign(row, header)
            if len(cells) < 2 or re.match(r"\W*(?:sub)?total|summe|gesamt|totale|totaal", row.segs[0].folded):
                break
            values = {n: v for n, t in cells.items() if (v := coerce(t, item.model_fields[n].annotation)) is not None}
            if len(values) >= 2:
                rows.append(values)
        if rows:
            return rows
    return []


def _header_columns(ln: Line, phrases: dict[str, re.Pattern[str]]) -> list[tuple[str, int, int]]:
    """(field, start col, end col) for each header cell that names an item field."""
    out: list[tuple[str, int, int]] = []
    used: set[str] = set()
    for seg in ln.segs:
        cell = re.sub(r"[^\w#° ]+", " ", seg.folded).strip()
        for n, ps in phrases.items():
            m = ps.match(cell) if n not in used else None
            if m and (m.end() == len(cell) or cell[m.end()] == " "):
                out.append((n, seg.col, seg.end))
                used.add(n)
                break
    return out


def _assign(row: Line, header: list[tuple[str, int, int]]) -> dict[str, str]:
    """Each cell of a row to the header column it overlaps most (or the nearest one)."""
    out: dict[str, str] = {}
    for seg in row.segs:
        best = min(header, key=lambda h: (-_overlap(seg.col, seg.end, h[1], h[2]),
                                          abs((seg.col + seg.end) / 2 - (h[1] + h[2]) / 2)))
        out[best[0]] = (out[best[0]] + " " + seg.text) if best[0] in out else seg.text
    return out


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))
