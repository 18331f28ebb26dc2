"""Read the invoice XML embedded in hybrid e-invoice PDFs (Factur-X, ZUGFeRD 1/2, XRechnung).

The embedded XML is the legally binding invoice, so when it exists it beats any text
extraction: values are copied from it verbatim (numbers stay decimal strings so money
is exact) and a field is omitted when the XML has no value for it.
"""

from __future__ import annotations

import datetime as _dt
import xml.etree.ElementTree as ET
from decimal import Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any
from xml.parsers import expat

if TYPE_CHECKING:  # pragma: no cover
    import pymupdf

__all__ = ["find_einvoice_xml", "parse_einvoice_xml", "read_einvoice"]

MAX_XML_BYTES = 20 * 1024 * 1024
# Tried first; any other attachment is still accepted if its root element is an invoice.
_KNOWN_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")
_CII_ROOTS = {"CrossIndustryInvoice", "CrossIndustryDocument"}
_UBL_ROOTS = {"Invoice", "CreditNote"}
_UBL_NS_PREFIX = "urn:oasis:names:specification:ubl:schema:xsd:"


# --------------------------------------------------------------------------- XML parsing


def _refuse(*_: Any) -> None:
    raise ValueError("XML with DOCTYPE/ENTITY declarations is refused")


def _parse(xml: bytes) -> tuple[ET.Element, str]:
    """Parse to a tree whose tags are local names (namespace-agnostic), plus the root namespace.

    Uses expat directly so DOCTYPE/ENTITY declarations are refused whatever the encoding,
    on top of the cheap byte check (entity expansion and external entities are attack vectors).
    """
    if len(xml) > MAX_XML_BYTES:
        raise ValueError(f"XML too large ({len(xml)} bytes > {MAX_XML_BYTES})")
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        raise ValueError("XML with DOCTYPE/ENTITY declarations is refused")
    builder = ET.TreeBuilder()
    root_ns: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        ns, _, local = tag.rpartition("}")
        if not root_ns:
            root_ns.append(ns)
        builder.start(local, {k.rpartition("}")[2]: v for k, v in attrs.items()})

    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(tag.rpartition("}")[2])
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    return builder.close(), (root_ns[0] if root_ns else "")


def _syntax(root: ET.Element, ns: str) -> str | None:
    """'cii' / 'ubl' / None from the root element: names of attachments are not reliable."""
    if root.tag in _CII_ROOTS:
        return "cii"
    if root.tag in _UBL_ROOTS and ns.startswith(_UBL_NS_PREFIX):
        return "ubl"
    return None


# --------------------------------------------------------------------------- value helpers


def _first(el: ET.Element | None, *paths: str) -> ET.Element | None:
    """First element matching any path (paths cover ZUGFeRD 1 vs 2 vs UBL element names)."""
    if el is None:
        return None
    for path in paths:
        found = el.find(path)
        if found is not None:
            return found
    return None


def _text(el: ET.Element | None, *paths: str) -> str | None:
    """Stripped text of the first match with non-blank text; None if there is none."""
    if el is None:
        return None
    for path in paths or (".",):
        for found in el.findall(path):
            if found.text and found.text.strip():
                return found.text.strip()
    return None


def _name(el: ET.Element | None, *paths: str) -> str | None:
    """Single-line name: some issuers wrap names over several lines in the XML."""
    value = _text(el, *paths)
    return " ".join(value.split()) if value else None


def _num(el: ET.Element | None, *paths: str) -> str | None:
    """Decimal value as written in the XML; None if absent or not a number (never guess)."""
    value = _text(el, *paths)
    if value is None:
        return None
    try:
        return value if Decimal(value).is_finite() else None
    except InvalidOperation:
        return None


def _date(value: str | None) -> str | None:
    """ISO date from CII format 102 (YYYYMMDD) or an ISO date/datetime; None otherwise."""
    if not value:
        return None
    value = value.strip()
    try:
        if len(value) == 8 and value.isdigit():
            return _dt.date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
        return _dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


def _cii_date(el: ET.Element | None) -> str | None:
    """CII DateTime element: udt:DateTimeString child (ZUGFeRD 1 sometimes has plain text)."""
    return _date(_text(el, "DateTimeString", "."))


def _amount_in(elements: list[ET.Element], currency: str | None) -> str | None:
    """Pick the amount in the invoice currency: tax may be stated again in the VAT currency."""
    if currency:
        same = [e for e in elements if e.get("currencyID") == currency]
        if same:
            return _num(same[0])
    plain = [e for e in elements if not e.get("currencyID")]
    if plain:
        return _num(plain[0])
    return _num(elements[0]) if len(elements) == 1 else None


def _unit_price(amount: str | None, basis: str | None) -> str | None:
    """Price per one unit: a price may be quoted per BasisQuantity (e.g. per 100 pieces)."""
    if amount is None or basis is None:
        return amount
    b = Decimal(basis)
    if b == 0:  # invalid basis: no per-unit price can be stated
        return None
    if b == 1:
        return amount
    with localcontext() as ctx:
        ctx.prec = 34
        q = Decimal(amount) / b
        if q != q.quantize(Decimal("0.000001")):  # non-terminating: round, do not leak 30 digits
            q = q.quantize(Decimal("0.000001"))
    return format(q.normalize(), "f")


def _address(parts: list[str | None]) -> str | None:
    joined = ", ".join(" ".join(p.split()) for p in parts if p and p.strip())
    return joined or None


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, "", []):
        out[key] = value


# --------------------------------------------------------------------------- CII


def _cii_party(party: ET.Element | None, prefix: str, out: dict[str, Any]) -> None:
    if party is None:
        return
    _put(out, f"{prefix}_name", _name(party, "Name"))
    addr = party.find("PostalTradeAddress")
    if addr is not None:
        city = " ".join(filter(None, [_text(addr, "PostcodeCode"), _text(addr, "CityName")]))
        _put(out, f"{prefix}_address", _address([
            _text(addr, "LineOne"), _text(addr, "LineTwo"), _text(addr, "LineThree"),
            city, _text(addr, "CountrySubDivisionName"), _text(addr, "CountryID"),
        ]))
    ids = {e.get("schemeID"): _text(e) for e in party.findall("SpecifiedTaxRegistration/ID")}
    _put(out, f"{prefix}_tax_id", ids.get("VA") or ids.get("FC"))


def _parse_cii(root: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    doc = _first(root, "ExchangedDocument", "HeaderExchangedDocument")
    trans = _first(root, "SupplyChainTradeTransaction", "SpecifiedSupplyChainTradeTransaction")
    agreement = _first(trans, "ApplicableHeaderTradeAgreement", "ApplicableSupplyChainTradeAgreement")
    settlement = _first(trans, "ApplicableHeaderTradeSettlement", "ApplicableSupplyChainTradeSettlement")
    totals = _first(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation",
                    "SpecifiedTradeSettlementMonetarySummation")

    _put(out, "invoice_number", _text(doc, "ID"))
    _put(out, "document_type_code", _text(doc, "TypeCode"))
    _put(out, "invoice_date", _cii_date(_first(doc, "IssueDateTime")))
    # Several payment terms (e.g. cash discount + net): the net due date is the latest one.
    due = [d for d in (_cii_date(e) for e in (settlement.findall("SpecifiedTradePaymentTerms/DueDateDateTime")
                                               if settlement is not None else [])) if d]
    _put(out, "due_date", max(due) if due else None)
    _cii_party(_first(agreement, "SellerTradeParty"), "vendor", out)
    _cii_party(_first(agreement, "BuyerTradeParty"), "customer", out)

    currency = _text(settlement, "InvoiceCurrencyCode")
    _put(out, "currency", currency)
    if totals is not None:
        _put(out, "subtotal", _num(totals, "TaxBasisTotalAmount"))
        taxes = totals.findall("TaxTotalAmount")
        _put(out, "tax", _amount_in(taxes, currency) if taxes else None)
        _put(out, "total", _num(totals, "GrandTotalAmount"))
        _put(out, "amount_due", _num(totals, "DuePayableAmount"))
        _put(out, "line_total_amount", _num(totals, "LineTotalAmount"))

    items = []
    for line in (trans.findall("IncludedSupplyChainTradeLineItem") if trans is not None else []):
        item: dict[str, Any] = {}
        product = line.find("SpecifiedTradeProduct")
        _put(item, "description", _text(product, "Name", "Description"))
        qty = _first(line, "SpecifiedLineTradeDelivery/BilledQuantity",
                     "SpecifiedSupplyChainTradeDelivery/BilledQuantity")
        _put(item, "quantity", _num(qty))
        price = _first(line, "SpecifiedLineTradeAgreement/NetPriceProductTradePrice",
                       "SpecifiedSupplyChainTradeAgreement/NetPriceProductTradePrice")
        _put(item, "unit_price", _unit_price(_num(price, "ChargeAmount"), _num(price, "BasisQuantity")))
        _put(item, "amount", _num(line, "SpecifiedLineTradeSettlement/"
                                  "SpecifiedTradeSettlementLineMonetarySummation/LineTotalAmount",
                                  "SpecifiedSupplyChainTradeSettlement/"
                                  "SpecifiedTradeSettlementMonetarySummation/LineTotalAmount"))
        if item:  # pure note lines (ZUGFeRD 1 free-text rows) carry none of these
            _put(item, "unit", qty.get("unitCode") if qty is not None else None)
            items.append(item)
    _put(out, "line_items", items)
    return out


# --------------------------------------------------------------------------- UBL


def _ubl_party(party: ET.Element | None, prefix: str, out: dict[str, Any]) -> None:
    if party is None:
        return
    _put(out, f"{prefix}_name", _name(party, "PartyLegalEntity/RegistrationName", "PartyName/Name"))
    addr = party.find("PostalAddress")
    if addr is not None:
        city = " ".join(filter(None, [_text(addr, "PostalZone"), _text(addr, "CityName")]))
        _put(out, f"{prefix}_address", _address([
            _text(addr, "StreetName"), _text(addr, "AdditionalStreetName"),
            *(_text(line) for line in addr.findall("AddressLine/Line")),
            city, _text(addr, "CountrySubentity"), _text(addr, "Country/IdentificationCode"),
        ]))
    schemes = party.findall("PartyTaxScheme")
    vat = [s for s in schemes if (_text(s, "TaxScheme/ID") or "").upper() == "VAT"]
    _put(out, f"{prefix}_tax_id", _text(vat[0] if vat else (schemes[0] if schemes else None), "CompanyID"))


def _parse_ubl(root: ET.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "invoice_number", _text(root, "ID"))
    _put(out, "document_type_code", _text(root, "InvoiceTypeCode", "CreditNoteTypeCode"))
    _put(out, "invoice_date", _date(_text(root, "IssueDate")))
    _put(out, "due_date", _date(_text(root, "DueDate", "PaymentMeans/PaymentDueDate")))
    _ubl_party(_first(root, "AccountingSupplierParty/Party"), "vendor", out)
    _ubl_party(_first(root, "AccountingCustomerParty/Party"), "customer", out)

    currency = _text(root, "DocumentCurrencyCode")
    _put(out, "currency", currency)
    taxes = root.findall("TaxTotal/TaxAmount")
    _put(out, "tax", _amount_in(taxes, currency) if taxes else None)
    totals = root.find("LegalMonetaryTotal")
    if totals is not None:
        _put(out, "subtotal", _num(totals, "TaxExclusiveAmount"))
        total = _num(totals, "TaxInclusiveAmount")
        prepaid = _num(totals, "PrepaidAmount")
        if total is None and (prepaid is None or Decimal(prepaid) == 0):
            total = _num(totals, "PayableAmount")  # equal to the gross total when nothing was prepaid
        _put(out, "total", total)
        _put(out, "amount_due", _num(totals, "PayableAmount"))
        _put(out, "line_total_amount", _num(totals, "LineExtensionAmount"))

    items = []
    for line in root.findall("InvoiceLine") + root.findall("CreditNoteLine"):
        item: dict[str, Any] = {}
        _put(item, "description", _text(line, "Item/Name", "Item/Description"))
        qty = _first(line, "InvoicedQuantity", "CreditedQuantity")
        _put(item, "quantity", _num(qty))
        _put(item, "unit_price", _unit_price(_num(line, "Price/PriceAmount"), _num(line, "Price/BaseQuantity")))
        _put(item, "amount", _num(line, "LineExtensionAmount"))
        if item:
            _put(item, "unit", qty.get("unitCode") if qty is not None else None)
            items.append(item)
    _put(out, "line_items", items)
    return out


# --------------------------------------------------------------------------- public API


def parse_einvoice_xml(xml: bytes) -> dict:
    """CII (Factur-X / ZUGFeRD 1 and 2 / XRechnung) or UBL invoice XML -> invoice dict.

    Raises ValueError with a one-line reason for anything else (not XML, DOCTYPE, other roots).
    """
    root, ns = _parse(xml)
    syntax = _syntax(root, ns)
    if syntax == "cii":
        out = _parse_cii(root)
    elif syntax == "ubl":
        out = _parse_ubl(root)
    else:
        raise ValueError(f"not a CII/UBL invoice: root element {root.tag!r} in namespace {ns!r}")
    out["einvoice_syntax"] = syntax
    return out


def _looks_like_einvoice(data: bytes) -> bool:
    """True if the bytes parse as a CII/UBL invoice; non-XML attachments (PDF, PNG) fail fast."""
    if not data or len(data) > MAX_XML_BYTES:
        return False
    head = data[:4]
    if not (data.lstrip()[:1] == b"<" or head.startswith(b"\xef\xbb\xbf")
            or head[:2] in (b"\xff\xfe", b"\xfe\xff")):
        return False
    try:
        root, ns = _parse(data)
    except ValueError:
        return False
    return _syntax(root, ns) is not None


def _attachment_names(doc: pymupdf.Document) -> list[str]:
    """Document-level embedded files, known e-invoice names first, then other *.xml, then the rest."""
    try:
        names = list(doc.embfile_names())
    except Exception:  # encrypted / broken name tree: treat as no attachment
        return []

    def rank(name: str) -> int:
        low = name.lower()
        return 0 if low in _KNOWN_NAMES else 1 if low.endswith(".xml") else 2

    return sorted(names, key=rank)


def find_einvoice_xml(doc: pymupdf.Document) -> tuple[str, bytes] | None:
    """(embedded file name, xml bytes) of the e-invoice attachment, or None.

    Detection is by parsing the root element, since issuers use many file names.
    """
    for name in _attachment_names(doc):
        try:
            info = doc.embfile_info(name)
            if (info.get("size") or info.get("length") or 0) > MAX_XML_BYTES:
                continue
            data = doc.embfile_get(name)
        except Exception:
            continue
        if _looks_like_einvoice(data):
            return name, data
    # Rare: invoice attached via a page-level file annotation instead of the EmbeddedFiles tree.
    try:
        import pymupdf

        for page in doc:
            for annot in page.annots(types=[pymupdf.PDF_ANNOT_FILE_ATTACHMENT]):
                info = annot.file_info
                if (info.get("size") or info.get("length") or 0) > MAX_XML_BYTES:
                    continue
                data = annot.get_file()
                if _looks_like_einvoice(data):
                    return info.get("filename") or "attachment.xml", data
    except Exception:
        pass
    return None


def read_einvoice(doc: pymupdf.Document) -> dict | None:
    """find + parse; None when the PDF carries no e-invoice XML."""
    found = find_einvoice_xml(doc)
    if found is None:
        return None
    out = parse_einvoice_xml(found[1])
    out["einvoice_file"] = found[0]
    return out
