"""Tests for docpipe.engines.offline.einvoice with self-made CII (Factur-X 2, ZUGFeRD 1) and UBL XML."""

from __future__ import annotations

import pymupdf
import pytest

from docpipe.engines.offline.einvoice import find_einvoice_xml, parse_einvoice_xml, read_einvoice

FACTURX_CII = """<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
  xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>
    <ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>FX-2024-001</ram:ID><ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20240305</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID></ram:AssociatedDocumentLineDocument>
      <ram:SpecifiedTradeProduct><ram:Name>Widget
        large</ram:Name></ram:SpecifiedTradeProduct>
      <ram:SpecifiedLineTradeAgreement>
        <ram:GrossPriceProductTradePrice><ram:ChargeAmount>1300.00</ram:ChargeAmount></ram:GrossPriceProductTradePrice>
        <ram:NetPriceProductTradePrice><ram:ChargeAmount>1250.00</ram:ChargeAmount>
          <ram:BasisQuantity unitCode="C62">100</ram:BasisQuantity></ram:NetPriceProductTradePrice>
      </ram:SpecifiedLineTradeAgreement>
      <ram:SpecifiedLineTradeDelivery>
        <ram:BilledQuantity unitCode="C62">200</ram:BilledQuantity>
      </ram:SpecifiedLineTradeDelivery>
      <ram:SpecifiedLineTradeSettlement><ram:SpecifiedTradeSettlementLineMonetarySummation>
        <ram:LineTotalAmount>2500.00</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>
      </ram:SpecifiedLineTradeSettlement>
    </ram:IncludedSupplyChainTradeLineItem>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty><ram:Name>Acme  GmbH</ram:Name>
        <ram:PostalTradeAddress><ram:PostcodeCode>10115</ram:PostcodeCode><ram:LineOne>Hauptstr. 1</ram:LineOne>
          <ram:CityName>Berlin</ram:CityName><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>
        <ram:SpecifiedTaxRegistration><ram:ID schemeID="FC">12/345/67890</ram:ID></ram:SpecifiedTaxRegistration>
        <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">DE999999999</ram:ID></ram:SpecifiedTaxRegistration>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>Client SARL</ram:Name>
        <ram:PostalTradeAddress><ram:PostcodeCode>75001</ram:PostcodeCode><ram:LineOne>1 rue de Rivoli</ram:LineOne>
          <ram:LineTwo>Bâtiment B</ram:LineTwo><ram:CityName>Paris</ram:CityName><ram:CountryID>FR</ram:CountryID>
        </ram:PostalTradeAddress>
      </ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:TaxCurrencyCode>EUR</ram:TaxCurrencyCode>
      <ram:InvoiceCurrencyCode>GBP</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime>
        <udt:DateTimeString format="102">20240404</udt:DateTimeString></ram:DueDateDateTime>
      </ram:SpecifiedTradePaymentTerms>
      <ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime>
        <udt:DateTimeString format="102">20240315</udt:DateTimeString></ram:DueDateDateTime>
      </ram:SpecifiedTradePaymentTerms>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:LineTotalAmount>2500.00</ram:LineTotalAmount>
        <ram:TaxBasisTotalAmount>2500.00</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">555.17</ram:TaxTotalAmount>
        <ram:TaxTotalAmount currencyID="GBP">475.00</ram:TaxTotalAmount>
        <ram:GrandTotalAmount>2975.00</ram:GrandTotalAmount>
        <ram:DuePayableAmount>2975.00</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
""".encode()

ZUGFERD1_CII = """<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"
  xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12"
  xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15">
  <rsm:HeaderExchangedDocument>
    <ram:ID>Z1-77</ram:ID><ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20130305</udt:DateTimeString></ram:IssueDateTime>
  </rsm:HeaderExchangedDocument>
  <rsm:SpecifiedSupplyChainTradeTransaction>
    <ram:ApplicableSupplyChainTradeAgreement>
      <ram:SellerTradeParty><ram:Name>Lieferant GmbH</ram:Name>
        <ram:SpecifiedTaxRegistration><ram:ID schemeID="FC">201/113/40209</ram:ID></ram:SpecifiedTaxRegistration>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>Kunden AG</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableSupplyChainTradeAgreement>
    <ram:ApplicableSupplyChainTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementMonetarySummation>
        <ram:TaxBasisTotalAmount currencyID="EUR">198.00</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">37.62</ram:TaxTotalAmount>
        <ram:GrandTotalAmount currencyID="EUR">235.62</ram:GrandTotalAmount>
      </ram:SpecifiedTradeSettlementMonetarySummation>
    </ram:ApplicableSupplyChainTradeSettlement>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:AssociatedDocumentLineDocument><ram:IncludedNote><ram:Content>free text row</ram:Content>
      </ram:IncludedNote></ram:AssociatedDocumentLineDocument>
    </ram:IncludedSupplyChainTradeLineItem>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:SpecifiedSupplyChainTradeAgreement><ram:NetPriceProductTradePrice>
        <ram:ChargeAmount currencyID="EUR">9.9000</ram:ChargeAmount></ram:NetPriceProductTradePrice>
      </ram:SpecifiedSupplyChainTradeAgreement>
      <ram:SpecifiedSupplyChainTradeDelivery><ram:BilledQuantity unitCode="C62">20.0000</ram:BilledQuantity>
      </ram:SpecifiedSupplyChainTradeDelivery>
      <ram:SpecifiedSupplyChainTradeSettlement><ram:SpecifiedTradeSettlementMonetarySummation>
        <ram:LineTotalAmount currencyID="EUR">198.00</ram:LineTotalAmount>
      </ram:SpecifiedTradeSettlementMonetarySummation></ram:SpecifiedSupplyChainTradeSettlement>
      <ram:SpecifiedTradeProduct><ram:Name>Trennblätter A4</ram:Name></ram:SpecifiedTradeProduct>
    </ram:IncludedSupplyChainTradeLineItem>
  </rsm:SpecifiedSupplyChainTradeTransaction>
</rsm:CrossIndustryDocument>
""".encode()

UBL_INVOICE = b"""<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
  xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0</cbc:CustomizationID>
  <cbc:ID>UBL-42</cbc:ID>
  <cbc:IssueDate>2024-01-15</cbc:IssueDate>
  <cbc:DueDate>2024-02-14</cbc:DueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyName><cbc:Name>Seller Trade Name</cbc:Name></cac:PartyName>
    <cac:PostalAddress><cbc:StreetName>Weg 5</cbc:StreetName><cbc:CityName>Bonn</cbc:CityName>
      <cbc:PostalZone>53111</cbc:PostalZone><cac:Country><cbc:IdentificationCode>DE</cbc:IdentificationCode></cac:Country>
    </cac:PostalAddress>
    <cac:PartyTaxScheme><cbc:CompanyID>DE111111111</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
    <cac:PartyLegalEntity><cbc:RegistrationName>Seller Legal GmbH</cbc:RegistrationName></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cac:PartyLegalEntity><cbc:RegistrationName>Buyer AG</cbc:RegistrationName></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">19.00</cbc:TaxAmount></cac:TaxTotal>
  <cac:LegalMonetaryTotal>
    <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
    <cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="EUR">119.00</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="EUR">119.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
  <cac:InvoiceLine>
    <cbc:ID>1</cbc:ID>
    <cbc:InvoicedQuantity unitCode="HUR">4</cbc:InvoicedQuantity>
    <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
    <cac:Item><cbc:Name>Consulting</cbc:Name></cac:Item>
    <cac:Price><cbc:PriceAmount currencyID="EUR">25.00</cbc:PriceAmount></cac:Price>
  </cac:InvoiceLine>
</Invoice>
"""


def _pdf_with(name: str | None, data: bytes | None) -> pymupdf.Document:
    doc = pymupdf.open()
    doc.new_page()
    if name is not None and data is not None:
        doc.embfile_add(name, data)
    # round-trip through bytes so we test what a reader of a saved file sees
    return pymupdf.open("pdf", doc.tobytes())


def test_facturx_cii_from_pdf() -> None:
    doc = _pdf_with("factur-x.xml", FACTURX_CII)
    assert find_einvoice_xml(doc) == ("factur-x.xml", FACTURX_CII)
    inv = read_einvoice(doc)
    assert inv is not None
    assert inv["invoice_number"] == "FX-2024-001"
    assert inv["invoice_date"] == "2024-03-05"
    assert inv["due_date"] == "2024-04-04"  # latest of several payment terms = net due date
    assert inv["vendor_name"] == "Acme GmbH"
    assert inv["vendor_address"] == "Hauptstr. 1, 10115 Berlin, DE"
    assert inv["vendor_tax_id"] == "DE999999999"  # VA preferred over FC
    assert inv["customer_name"] == "Client SARL"
    assert inv["customer_address"] == "1 rue de Rivoli, Bâtiment B, 75001 Paris, FR"
    assert inv["currency"] == "GBP"
    assert inv["subtotal"] == "2500.00"
    assert inv["tax"] == "475.00"  # the TaxTotalAmount in the invoice currency, not the VAT currency
    assert inv["total"] == "2975.00"
    assert inv["amount_due"] == "2975.00"
    assert inv["line_items"] == [{
        "description": "Widget\n        large", "quantity": "200", "unit_price": "12.5",
        "amount": "2500.00", "unit": "C62",
    }]


def test_zugferd1_by_content_not_name() -> None:
    doc = _pdf_with("some-odd-name.bin", ZUGFERD1_CII)
    found = find_einvoice_xml(doc)
    assert found is not None and found[0] == "some-odd-name.bin"
    inv = read_einvoice(doc)
    assert inv is not None
    assert inv["invoice_number"] == "Z1-77"
    assert inv["invoice_date"] == "2013-03-05"
    assert "due_date" not in inv  # absent in the XML: omitted, never invented
    assert inv["vendor_tax_id"] == "201/113/40209"  # FC when there is no VA
    assert inv["customer_name"] == "Kunden AG"
    assert (inv["currency"], inv["subtotal"], inv["tax"], inv["total"]) == ("EUR", "198.00", "37.62", "235.62")
    assert inv["line_items"] == [{
        "description": "Trennblätter A4", "quantity": "20.0000", "unit_price": "9.9000",
        "amount": "198.00", "unit": "C62",
    }]  # the free-text row is not a line item


def test_ubl_invoice() -> None:
    inv = parse_einvoice_xml(UBL_INVOICE)
    assert inv["einvoice_syntax"] == "ubl"
    assert inv["invoice_number"] == "UBL-42"
    assert (inv["invoice_date"], inv["due_date"]) == ("2024-01-15", "2024-02-14")
    assert inv["vendor_name"] == "Seller Legal GmbH"
    assert inv["vendor_address"] == "Weg 5, 53111 Bonn, DE"
    assert inv["vendor_tax_id"] == "DE111111111"
    assert inv["customer_name"] == "Buyer AG"
    assert (inv["currency"], inv["subtotal"], inv["tax"], inv["total"]) == ("EUR", "100.00", "19.00", "119.00")
    assert inv["line_items"] == [{
        "description": "Consulting", "quantity": "4", "unit_price": "25.00", "amount": "100.00", "unit": "HUR",
    }]


def test_ubl_in_pdf_next_to_other_attachment() -> None:
    doc = pymupdf.open()
    doc.new_page()
    doc.embfile_add("readme.txt", b"not an invoice")
    doc.embfile_add("xrechnung.xml", UBL_INVOICE)
    found = find_einvoice_xml(pymupdf.open("pdf", doc.tobytes()))
    assert found == ("xrechnung.xml", UBL_INVOICE)


def test_page_file_annotation() -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    page.add_file_annot(pymupdf.Point(50, 50), FACTURX_CII, "factur-x.xml")
    inv = read_einvoice(pymupdf.open("pdf", doc.tobytes()))
    assert inv is not None and inv["invoice_number"] == "FX-2024-001"


def test_no_attachment_gives_none() -> None:
    doc = _pdf_with(None, None)
    assert find_einvoice_xml(doc) is None
    assert read_einvoice(doc) is None


def test_non_invoice_xml_attachment_gives_none() -> None:
    assert read_einvoice(_pdf_with("data.xml", b"<config><a>1</a></config>")) is None


def test_doctype_refused() -> None:
    evil = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]>'
            + FACTURX_CII.split(b"?>", 1)[1])
    with pytest.raises(ValueError, match="DOCTYPE"):
        parse_einvoice_xml(evil)
    # the same in UTF-16, where a plain byte search cannot see it
    utf16 = evil.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16")
    with pytest.raises(ValueError, match="DOCTYPE"):
        parse_einvoice_xml(utf16)
    # and a PDF carrying it yields no invoice rather than an exception
    assert find_einvoice_xml(_pdf_with("factur-x.xml", evil)) is None


@pytest.mark.parametrize("bad", [b"", b"not xml", b"<Invoice>x</Invoice>", b"<a><b></a>"])
def test_garbage_raises_valueerror(bad: bytes) -> None:
    with pytest.raises(ValueError):
        parse_einvoice_xml(bad)


def test_oversized_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_einvoice_xml(b"<a>" + b" " * (20 * 1024 * 1024 + 1) + b"</a>")
