"""Invoices in Spanish, Italian and Dutch, and French-grouped line amounts: labels the rules did not know."""

from __future__ import annotations

from docpipe.engines.offline.fields import extract_fields
from docpipe.schemas import resolve


def run(schema: str, *pages: str) -> dict:
    return extract_fields(list(pages), resolve(schema))


ITALIAN = """Fratelli Moretti Forniture S.r.l.
Via Roma 12
20121 Milano

FATTURA

Fattura n.        F2024-0117                 Intestata a:
Data fattura:     14/03/2024                 Aurora Design Studio S.p.A.
Scadenza:         13/04/2024                 Corso Italia 4, 00184 Roma

Descrizione                   Q.tà        Prezzo unit.        Importo
Manutenzione sito               2            150,00            300,00
Licenza annuale                 1          1.200,00          1.200,00

                              Imponibile                      1.500,00
                              IVA 22%                           330,00
                              Totale fattura                  1.830,00
"""

SPANISH = """Ribera Distribuciones S.L.
Calle Mayor 3, 28013 Madrid
                                   FACTURA
Nº de factura: 2024/5531                      Facturar a:
Fecha de factura: 2 de mayo de 2024           Sierra Alta Consulting S.A.
Vencimiento: 1 de junio de 2024               Plaza España 9, 41001 Sevilla

Concepto                     Cant.     Precio unit.      Importe
Formación                       3          200,00         600,00
                             Base imponible                600,00
                             IVA 21%                       126,00
                             Total a pagar                 726,00
"""

DUTCH = """De Molen Handel B.V.
Kerkstraat 8, 3511 LK Utrecht
FACTUUR
Factuurnummer:    NL-88231                    Factuur aan:
Factuurdatum:     05-09-2024                  Tulpenveld Systems N.V.
Vervaldatum:      05-10-2024                  Dorpsweg 2, 1012 AB Amsterdam

Omschrijving                Aantal      Prijs        Bedrag
Advies                          4        95,00       380,00
                            Subtotaal                380,00
                            BTW 21%                   79,80
                            Totaal incl. btw         459,80
"""

FRENCH_GROUPED = """Lumière Ateliers SAS
10 rue de la Paix, 75002 Paris
FACTURE
Facture n° FA-2024-77
Date de facture : 03/02/2024
Client : Montclair Supplies SARL

Désignation                 Qté       Prix unitaire         Montant
Câble USB-C 2 m               3          1 820,05 €       5 460,15 €
Formation                     1          1 511,99 €       1 511,99 €
                            Total HT                     6 972,14 €
                            TVA 20 %                     1 394,43 €
                            Total TTC                    8 366,57 €
"""


def test_italian_invoice_labels() -> None:
    r = run("invoice", ITALIAN)
    assert r["invoice_number"] == "F2024-0117"
    assert r["invoice_date"] == "2024-03-14" and r["due_date"] == "2024-04-13"
    assert r["customer_name"] == "Aurora Design Studio S.p.A."
    assert (r["subtotal"], r["tax"], r["total"]) == ("1500.00", "330.00", "1830.00")


def test_spanish_invoice_labels() -> None:
    r = run("invoice", SPANISH)
    assert r["invoice_number"] == "2024/5531"
    assert r["invoice_date"] == "2024-05-02" and r["due_date"] == "2024-06-01"
    assert r["customer_name"] == "Sierra Alta Consulting S.A."
    assert r["total"] == "726.00" and r["subtotal"] == "600.00"


def test_dutch_invoice_labels() -> None:
    r = run("invoice", DUTCH)
    assert r["invoice_number"] == "NL-88231"
    assert r["invoice_date"] == "2024-09-05" and r["due_date"] == "2024-10-05"
    assert r["customer_name"] == "Tulpenveld Systems N.V."
    assert (r["subtotal"], r["tax"], r["total"]) == ("380.00", "79.80", "459.80")


def test_french_grouped_thousands_in_line_items() -> None:
    items = run("invoice", FRENCH_GROUPED)["line_items"]
    assert [(i["quantity"], i["unit_price"], i["amount"]) for i in items] == [
        ("3", "1820.05", "5460.15"), ("1", "1511.99", "1511.99")]


TOTALS_ROW = """Ribera Supplies S.L.
Plaza España 13, 28013 Madrid
FACTURA
Nº de factura: 2024/0871
Fecha: 04/03/2024
Facturar a: Aurora Trading S.A.

Concepto                             Cant.     Precio unit.        Importe
Catering buffet                          5    2.421,21 EUR   12.106,05 EUR

      Importe neto         Descuento      Importe neto        IVA (21 %)            Total:
   12.106,05 EUR      -605,30 EUR    11.500,75 EUR     2.415,16 EUR    13.915,91 EUR
"""

NO_SUBTOTAL = """Lumière Ateliers SAS
FACTURE
Facture n° FA-2024-78
Date de facture : 03/02/2024

Désignation                 Qté       Prix unitaire         Montant
Câble USB-C 2 m               3          1 820,05         5 460,15
Formation                     1          1 511,99         1 511,99
                            TVA 20 %                     1 394,43
                            Net à payer                  8 366,57
"""


def test_totals_printed_as_a_row_of_labels_over_values() -> None:
    r = run("invoice", TOTALS_ROW)
    assert (r["subtotal"], r["tax"], r["total"]) == ("11500.75", "2415.16", "13915.91")


def test_subtotal_from_lines_that_add_up() -> None:
    r = run("invoice", NO_SUBTOTAL)
    assert [i["amount"] for i in r["line_items"]] == ["5460.15", "1511.99"]  # grouped, no currency mark
    assert (r["subtotal"], r["tax"], r["total"]) == ("6972.14", "1394.43", "8366.57")


def test_party_label_with_its_words_run_together_by_ocr() -> None:
    text = SPANISH.replace("Facturar a:", "Facturara:  ")
    assert run("invoice", text)["customer_name"] == "Sierra Alta Consulting S.A."


def test_scan_misreads_of_a_date_slash_and_a_decimal_comma() -> None:
    from docpipe.engines.offline.fields import find_dates, parse_amount

    assert [h.value.isoformat() for h in find_dates("Date of issue: 06/04:2025", day_first=False)] == ["2025-06-04"]
    assert find_dates("at 12:30:2025") == []
    assert parse_amount("1.734.27 USD", ".") == parse_amount("1,734.27 USD", ".")


def test_vendor_address_from_the_letterhead_block() -> None:
    text = """Globex Cloud Services Ltd           VAT INVOICE
Cloud infrastructure & managed services

Unit 5, Block B, Grand Canal Quay
Dublin 2, D02 X576
Ireland
VAT No. IE9876543W
Invoice number: GCS-17       Invoice date: 03/02/2025
Bill to: Hollis & Grant LLP
Total: €1,230.00
"""
    assert run("invoice", text)["vendor_address"] == "Unit 5, Block B, Grand Canal Quay, Dublin 2, D02 X576, Ireland"
    assert run("invoice", ITALIAN)["vendor_address"] == "Via Roma 12, 20121 Milano"


def test_national_tax_numbers_and_an_italian_payment_deadline() -> None:
    # a Spanish CIF with its hyphen and an Italian partita IVA without the IT prefix; the buyer's is not taken
    spanish = """Talleres Ibérica S.L.                                        FACTURA
C/ Alcalá 145, 3º                                 Nº Factura: 2025/0417
28009 Madrid                                      Fecha: 12/06/2025
CIF: B-84512399

Cliente
Construcciones Duero S.A.
NIF: A-47123456

Base imponible     910,00 €
IVA 21%            191,10 €
TOTAL FACTURA    1.101,10 €
"""
    r = run("invoice", spanish)
    assert r["vendor_tax_id"] == "B-84512399" and r["customer_name"] == "Construcciones Duero S.A."
    italian = """Studio Grafico Lanterna S.r.l.
Via dei Mille 18 - 40121 Bologna (BO)
P.IVA 03398761204
                                        Spett.le
                                        Osteria Il Portico S.n.c.
                                        P.IVA 02211430375
Fattura n. 58/2025 del 03/03/2025
Imponibile            € 1.450,00
IVA 22%                 € 319,00
Totale documento      € 1.769,00
Scadenza pagamento: 02/04/2025
"""
    r = run("invoice", italian)
    assert (r["vendor_tax_id"], r["due_date"], r["total"]) == ("03398761204", "2025-04-02", "1769.00")


def test_a_bare_number_sign_under_the_title_and_a_dutch_to_block() -> None:
    french = """Atelier Verrier Moreau
                                                                     Facture
12 rue des Tanneurs
69001 Lyon
SIRET 812 345 678 00021                                             N° FA-2025-0093
TVA intracom. FR 41 812345678                                     Date : 18 mars 2025

Total HT        2 680,00 €
TVA 20 %          536,00 €
Total TTC       3 216,00 €
"""
    r = run("invoice", french)
    assert (r["invoice_number"], r["invoice_date"], r["vendor_tax_id"]) == ("FA-2025-0093", "2025-03-18",
                                                                            "FR 41 812345678")
    dutch = """Bakkerij Van Dijk B.V.
Kerkstraat 21
3511 LX Utrecht

Aan:
Café De Zwaan
Oudegracht 110
3511 AX Utrecht

Factuurnummer: 2025-1187
Factuurdatum: 05-05-2025
Totaal   € 295,39
"""
    r = run("invoice", dutch)
    assert (r["customer_name"], r["vendor_name"]) == ("Café De Zwaan", "Bakkerij Van Dijk B.V.")


def test_a_bare_invoice_word_heading_a_column_beside_dates_names_the_number_under_it() -> None:
    text = """\
                    Olivar Comercial S.A.
                                 Calle Mayor 12
                                  41001 Sevilla

FACTURA

Factura             Fecha de emisión    Fecha de vencimiento
2024/51230          12/06/2025          12/07/2025

Facturar a:
Almendra Foods S.L.
Plaza Mayor 3
28013 Madrid
                 Importe neto                IVA (10 %)                    Total
                  1.000,00                    100,00                    1.100,00
"""
    r = extract_fields([text], resolve("invoice"))
    assert (r["invoice_number"], r["invoice_date"], r["due_date"]) == ("2024/51230", "2025-06-12", "2025-07-12")
