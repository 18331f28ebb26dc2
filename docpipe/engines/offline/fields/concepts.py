"""User schemas that ask for what the built-in extractors already find: fields matched to invoice and receipt
concepts by their name and description, so 'supplier', 'bill_no', 'Rechnungsdatum' or 'amount_due' get the
invoice rules' vendor, number, date and total (chosen by the document's arithmetic and the page's blocks), and a
list field of items gets the line items with its own item field names.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .custom import name_words
from .text import fold

# translations and near-synonyms -> one canonical word
_CANON: dict[str, str] = {}
for _canon, _alts in {
        "vendor": "supplier seller issuer biller provider lieferant verkaufer fournisseur vendeur proveedor vendedor "
                  "fornitore venditore leverancier verkoper from",
        "customer": "buyer client recipient purchaser kunde cliente klant billed debtor acheteur comprador koper",
        "invoice": "bill rechnung facture factura fattura factuur",
        "number": "no nr num id nummer numero ref reference",
        "tax": "vat mwst ust tva iva btw gst steuer",
        "subtotal": "net netto",
        "total": "gross brutto grand payable gesamt totale totaal",
        "amount": "betrag montant importe importo bedrag sum",
        "issue": "issued issuing",
        "date": "dated datum fecha data",
        "due": "fallig echeance vencimiento scadenza",
        "quantity": "qty menge count units anzahl cantidad quantita aantal",
        "price": "rate cost preis prix precio prezzo prijs",
        "items": "positions lines products articles entries",
        "merchant": "store shop retailer business",
        "address": "adresse anschrift direccion indirizzo adres",
        "description": "beschreibung bezeichnung designation descripcion descrizione omschrijving",
        "taxid": "tin uid vatin",
}.items():
    for _a in _alts.split():
        _CANON[_a] = _canon


# built-in field -> word sets (canonical); a user field whose words include one set is that field
INVOICE_CONCEPTS: dict[str, tuple[frozenset[str], ...]] = {
    "vendor_tax_id": (frozenset({"vendor", "tax", "number"}), frozenset({"taxid"}), frozenset({"tax", "number"})),
    "vendor_address": (frozenset({"vendor", "address"}),),
    "customer_address": (frozenset({"customer", "address"}),),
    "vendor_name": (frozenset({"vendor"}), frozenset({"merchant"})),
    "customer_name": (frozenset({"customer"}),),
    "invoice_number": (frozenset({"invoice", "number"}), frozenset({"document", "number"})),
    "due_date": (frozenset({"due"}),),
    "invoice_date": (frozenset({"invoice", "date"}), frozenset({"issue"}), frozenset({"date"})),
    "subtotal": (frozenset({"subtotal"}),),
    "tax": (frozenset({"tax"}),),
    "total": (frozenset({"total"}), frozenset({"amount", "due"}), frozenset({"amount"})),
    "currency": (frozenset({"currency"}),),
    "line_items": (frozenset({"items"}), frozenset({"item"}), frozenset({"line"})),
}
ITEM_CONCEPTS: dict[str, tuple[frozenset[str], ...]] = {
    "quantity": (frozenset({"quantity"}),),
    "unit_price": (frozenset({"price"}),),
    "amount": (frozenset({"amount"}), frozenset({"total"}), frozenset({"value"})),
    "description": (frozenset({"description"}), frozenset({"name"}), frozenset({"item"}), frozenset({"product"}),
                    frozenset({"text"})),
}


def _words(name: str, info: FieldInfo | None) -> set[str]:
    """Canonical words of a field's name, or of its description's lead (first three words)."""
    words = name_words(name) if name else []
    if info is not None and info.description:
        lead = [w for w in re.split(r"[^\w]+", fold(info.description.split(".")[0].split(",")[0])) if w]
        words += [w for w in lead if w not in _OK][:3]
    return {_CANON.get(w, w) for w in words}


# words that may stand beside a concept's words in a field name ('vendor_name', 'invoice_date_iso', 'issued_on')
_OK = frozenset("name full legal printed as iso on of the at by a to de du la le value code text payment amount "
                "date".split())
# words that give a date or an amount another role than the invoice's own
_OTHER_ROLE = frozenset("order delivery ship shipping start end period birth expiry valid signed contract payment "
                        "paid discount deposit balance previous service due".split())


def _concept(words: set[str], table: dict[str, tuple[frozenset[str], ...]], taken: set[str],
             strict: bool = True) -> str | None:
    """The built-in field whose word set the field's words hold; with ``strict`` (a field's own name), no other
    words than harmless ones may stand beside it."""
    for builtin, sets in table.items():
        if builtin in taken:
            continue
        for s in sets:
            rest = words - s
            if s <= words and not (rest & _OTHER_ROLE and "due" not in s) and not (strict and rest - _OK):
                return builtin
    return None


def concept_map(model: type[BaseModel]) -> dict[str, str]:
    """User field -> built-in invoice field it asks for (each built-in field used once; name words first)."""
    out: dict[str, str] = {}
    for by_name_only in (True, False):
        for name, info in model.model_fields.items():
            if name in out or (not by_name_only and not info.description):
                continue
            words = _words(name, None) if by_name_only else _words("", info)
            b = _concept(words, INVOICE_CONCEPTS, set(out.values()), strict=by_name_only)
            if b is not None:
                out[name] = b
    return out


def map_items(items: list[dict[str, Any]], item_model: type[BaseModel]) -> list[dict[str, Any]]:
    """Built-in line items renamed to the user item model's fields."""
    names: dict[str, str] = {}
    for name in item_model.model_fields:
        b = _concept(_words(name, None), ITEM_CONCEPTS, set(names.values()), strict=False)
        if b is not None:
            names[name] = b
    return [{n: it[b] for n, b in names.items() if b in it} for it in items] if len(names) >= 2 else []
