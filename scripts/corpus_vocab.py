"""Vocabulary for scripts/make_corpus.py: labels, names and formats per language (all fictitious).

Each label list holds several phrasings a real document might use, so that a generated corpus varies the way
unseen documents do; the generator picks one per document.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

MONTHS = {
    "en": "January February March April May June July August September October November December",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
}

INVOICE = {
    "en": dict(title=["INVOICE", "Invoice", "Tax Invoice", "Sales Invoice"],
               number=["Invoice No.", "Invoice #", "Invoice Number", "Inv. No", "Reference"],
               date=["Invoice Date", "Date", "Date of issue", "Issue Date", "Dated"],
               due=["Due Date", "Payment Due", "Due", "Pay by"],
               bill_to=["Bill To", "Billed To", "Customer", "Invoice To", "Sold To"],
               subtotal=["Subtotal", "Net Amount", "Total excl. VAT", "Sub-total"],
               tax=["VAT {r}%", "Sales Tax ({r}%)", "Tax {r}%", "GST {r}%"],
               total=["Total", "Amount Due", "Total Due", "Grand Total", "Invoice Total", "Total (incl. VAT)"],
               desc=["Description", "Item", "Service", "Details"], qty=["Qty", "Quantity", "Units", "Hrs"],
               unit=["Unit Price", "Rate", "Price", "Unit Cost"], amount=["Amount", "Line Total", "Total", "Net"],
               order=["Order No.", "PO Number", "Your Ref."], delivery=["Delivery Date", "Ship Date", "Service Date"],
               paid=["Amount Paid", "Payments"], balance=["Balance Due", "Amount Due"],
               shipping=["Shipping", "Delivery", "Freight"], discount=["Discount", "Less discount"],
               customer_no=["Customer ID", "Account No.", "Client No."], thanks=["Thank you for your business!"],
               terms=["Payment terms: {d} days net", "Please pay within {d} days."]),
    "de": dict(title=["RECHNUNG", "Rechnung"], number=["Rechnungsnummer", "Rechnungs-Nr.", "Rechnung Nr.", "Beleg-Nr."],
               date=["Rechnungsdatum", "Datum", "Ausstellungsdatum"], due=["Fällig am", "Zahlbar bis", "Fälligkeitsdatum"],
               bill_to=["Rechnungsempfänger", "Kunde", "Rechnung an"],
               subtotal=["Zwischensumme", "Nettobetrag", "Summe netto", "Gesamt netto"],
               tax=["MwSt. {r}%", "USt. {r} %", "zzgl. {r}% MwSt.", "Umsatzsteuer {r}%"],
               total=["Gesamtbetrag", "Rechnungsbetrag", "Gesamt brutto", "Summe", "Zu zahlen", "Endbetrag"],
               desc=["Beschreibung", "Bezeichnung", "Artikel", "Leistung"], qty=["Menge", "Anz.", "Anzahl"],
               unit=["Einzelpreis", "E-Preis", "Preis"], amount=["Betrag", "Gesamt", "Summe"],
               order=["Bestellnummer", "Auftrags-Nr."], delivery=["Lieferdatum", "Leistungsdatum"],
               paid=["Bereits bezahlt", "Anzahlung"], balance=["Offener Betrag", "Restbetrag"],
               shipping=["Versand", "Versandkosten"], discount=["Rabatt", "Nachlass"],
               customer_no=["Kundennummer", "Kunden-Nr."], thanks=["Vielen Dank für Ihren Auftrag."],
               terms=["Zahlbar innerhalb von {d} Tagen ohne Abzug."]),
    "fr": dict(title=["FACTURE", "Facture"], number=["Facture n°", "N° de facture", "Numéro de facture", "Réf. facture"],
               date=["Date de facture", "Date", "Date d'émission", "Émise le"], due=["Date d'échéance", "Échéance", "À payer avant le"],
               bill_to=["Facturé à", "Client", "Destinataire"], subtotal=["Total HT", "Sous-total", "Montant HT"],
               tax=["TVA {r} %", "TVA ({r}%)", "Montant TVA {r}%"], total=["Total TTC", "Net à payer", "Montant TTC", "Total à payer"],
               desc=["Désignation", "Description", "Libellé"], qty=["Qté", "Quantité"], unit=["Prix unitaire", "P.U. HT", "Prix"],
               amount=["Montant", "Total HT", "Montant HT"], order=["Bon de commande", "Réf. commande"],
               delivery=["Date de livraison", "Date de prestation"], paid=["Acompte versé", "Déjà réglé"],
               balance=["Reste à payer", "Solde dû"], shipping=["Frais de port", "Livraison"], discount=["Remise"],
               customer_no=["N° client", "Code client"], thanks=["Merci de votre confiance."],
               terms=["Paiement à {d} jours."]),
    "es": dict(title=["FACTURA", "Factura"], number=["Nº de factura", "Factura nº", "Número de factura", "Factura"],
               date=["Fecha de factura", "Fecha", "Fecha de emisión"], due=["Fecha de vencimiento", "Vencimiento"],
               bill_to=["Facturar a", "Cliente", "Datos del cliente"], subtotal=["Base imponible", "Subtotal", "Importe neto"],
               tax=["IVA {r}%", "IVA ({r} %)"], total=["Total", "Total factura", "Importe total", "Total a pagar"],
               desc=["Descripción", "Concepto", "Artículo"], qty=["Cant.", "Cantidad", "Uds."], unit=["Precio unit.", "Precio", "P. unitario"],
               amount=["Importe", "Total"], order=["Nº de pedido", "Pedido"], delivery=["Fecha de entrega"],
               paid=["Pagado", "Anticipo"], balance=["Pendiente", "Saldo"], shipping=["Envío", "Portes"], discount=["Descuento"],
               customer_no=["Nº cliente", "Código cliente"], thanks=["Gracias por su confianza."],
               terms=["Pago a {d} días."]),
    "it": dict(title=["FATTURA", "Fattura"], number=["Fattura n.", "Numero fattura", "N. documento", "Fattura nr."],
               date=["Data fattura", "Data", "Data documento", "Data emissione"], due=["Scadenza", "Data di scadenza", "Pagamento entro"],
               bill_to=["Intestata a", "Cliente", "Destinatario", "Spett.le"], subtotal=["Imponibile", "Totale imponibile", "Subtotale"],
               tax=["IVA {r}%", "IVA ({r}%)", "Imposta {r}%"], total=["Totale", "Totale fattura", "Totale documento", "Netto a pagare"],
               desc=["Descrizione", "Articolo", "Prestazione"], qty=["Q.tà", "Quantità"], unit=["Prezzo unit.", "Prezzo", "P.U."],
               amount=["Importo", "Totale"], order=["Ordine n.", "Rif. ordine"], delivery=["Data consegna", "DDT del"],
               paid=["Acconto", "Già pagato"], balance=["Saldo", "Da pagare"], shipping=["Spese di spedizione", "Trasporto"],
               discount=["Sconto"], customer_no=["Cod. cliente", "Codice cliente"], thanks=["Grazie per averci scelto."],
               terms=["Pagamento a {d} giorni d.f."]),
    "nl": dict(title=["FACTUUR", "Factuur"], number=["Factuurnummer", "Factuur nr.", "Factuurnr."],
               date=["Factuurdatum", "Datum", "Datum factuur"], due=["Vervaldatum", "Te betalen voor", "Uiterste betaaldatum"],
               bill_to=["Factuur aan", "Klant", "Gefactureerd aan"], subtotal=["Subtotaal", "Totaal excl. btw", "Netto bedrag"],
               tax=["BTW {r}%", "Btw ({r}%)", "{r}% btw"], total=["Totaal", "Totaal incl. btw", "Te betalen", "Totaalbedrag"],
               desc=["Omschrijving", "Artikel", "Beschrijving"], qty=["Aantal", "Aant."], unit=["Prijs", "Stukprijs", "Tarief"],
               amount=["Bedrag", "Totaal"], order=["Ordernummer", "Uw referentie"], delivery=["Leverdatum", "Leveringsdatum"],
               paid=["Reeds betaald", "Aanbetaling"], balance=["Openstaand", "Nog te betalen"], shipping=["Verzendkosten", "Verzending"],
               discount=["Korting"], customer_no=["Klantnummer", "Debiteurnr."], thanks=["Bedankt voor uw bestelling."],
               terms=["Betaling binnen {d} dagen."]),
}

RECEIPT = {
    "en": dict(total=["TOTAL", "Total", "AMOUNT DUE", "NETT TOTAL", "TOTAL (RM)", "Total Rounded", "GRAND TOTAL"],
               subtotal=["SUBTOTAL", "Sub Total", "Total Sales (Excl GST)"], tax=["GST 6%", "VAT 20%", "Tax", "Sales Tax"],
               cash=["CASH", "Cash Tendered", "TENDERED", "Paid"], change=["CHANGE", "Change Due", "Balance"],
               rounding=["Rounding Adj", "ROUNDING"], cashier=["Cashier: {n}", "Served by: {n}", "Operator {n}"],
               title=["RECEIPT", "TAX INVOICE", "CASH SALE", "SALES RECEIPT"], date=["Date: ", "DATE ", ""],
               bye=["THANK YOU, PLEASE COME AGAIN", "Thank you for shopping with us", "Goods sold are not returnable"]),
    "de": dict(total=["SUMME", "Summe EUR", "GESAMT", "Zu zahlen", "TOTAL"], subtotal=["Zwischensumme", "Netto"],
               tax=["MwSt 19%", "USt 7%"], cash=["BAR", "Gegeben", "Bar EUR"], change=["Rückgeld", "Zurück"],
               rounding=["Rundung"], cashier=["Kasse 2 Bed. {n}", "Es bediente Sie: {n}"], title=["Kassenbon", "Beleg", ""],
               date=["Datum: ", ""], bye=["Vielen Dank für Ihren Einkauf", "Bitte beehren Sie uns wieder"]),
    "fr": dict(total=["TOTAL TTC", "TOTAL", "A PAYER", "Net à payer"], subtotal=["Total HT", "Sous-total"],
               tax=["TVA 20%", "TVA 5,5%"], cash=["ESPECES", "Espèces", "Reçu"], change=["RENDU", "Monnaie rendue"],
               rounding=["Arrondi"], cashier=["Caissier: {n}", "Vous avez été servi par {n}"], title=["TICKET", "Ticket de caisse", ""],
               date=["Le ", "Date : ", ""], bye=["MERCI DE VOTRE VISITE", "A bientôt"]),
    "es": dict(total=["TOTAL", "TOTAL A PAGAR", "Importe total"], subtotal=["Base imponible", "Subtotal"], tax=["IVA 21%", "IVA 10%"],
               cash=["EFECTIVO", "Entregado"], change=["CAMBIO", "Devolución"], rounding=["Redondeo"],
               cashier=["Cajero: {n}", "Le atendió: {n}"], title=["TICKET", "FACTURA SIMPLIFICADA", ""],
               date=["Fecha: ", ""], bye=["GRACIAS POR SU VISITA"]),
    "it": dict(total=["TOTALE", "TOTALE EURO", "Totale complessivo"], subtotal=["Subtotale", "Imponibile"], tax=["IVA 22%", "di cui IVA"],
               cash=["CONTANTI", "Contante"], change=["RESTO", "Resto"], rounding=["Arrotondamento"],
               cashier=["Cassiere: {n}", "Operatore {n}"], title=["SCONTRINO", "DOCUMENTO COMMERCIALE", ""],
               date=["Data: ", ""], bye=["GRAZIE E ARRIVEDERCI"]),
    "nl": dict(total=["TOTAAL", "Te betalen", "Totaal EUR"], subtotal=["Subtotaal"], tax=["BTW 21%", "BTW 9%"],
               cash=["CONTANT", "Contant betaald"], change=["WISSELGELD", "Terug"], rounding=["Afronding"],
               cashier=["Kassamedewerker: {n}", "U werd geholpen door {n}"], title=["KASSABON", "Bon", ""],
               date=["Datum: ", ""], bye=["BEDANKT EN TOT ZIENS"]),
}

SUFFIX = {"en": ["Ltd", "LLC", "Inc.", "Limited", "Sdn Bhd", "Pty Ltd"], "de": ["GmbH", "AG", "KG", "GmbH & Co. KG"],
          "fr": ["SAS", "SARL", "SA"], "es": ["S.L.", "S.A."], "it": ["S.r.l.", "S.p.A."], "nl": ["B.V.", "N.V."]}
NAME_A = ["Kestrel", "Alder", "Nordlicht", "Blue Harbor", "Vega", "Sonnenberg", "Lumière", "Costa Verde", "Fratelli Moretti",
          "De Molen", "Quarry Lane", "Brightwater", "Hafenblick", "Montclair", "Sierra Alta", "Ponte Vecchio", "Zilverberg",
          "Redwood", "Falkenstein", "Belleville", "Ribera", "Aurora", "Tulpenveld", "Copperfield", "Eastgate", "Maple & Finch"]
NAME_B = ["Analytics", "Consulting", "Bakery", "Print Works", "Software", "Logistics", "Design Studio", "Trading",
          "Medientechnik", "Services", "Hardware", "Gastronomie", "Ateliers", "Distribuciones", "Forniture", "Handel",
          "Supplies", "Engineering", "Kitchen", "Stationery", "Systems", "Café"]
STREETS = {"en": ["{n} High Street", "{n} Harbour Road", "Unit {n}, Mill Lane", "{n} Jalan Mawar 3", "{n} Elm Avenue"],
           "de": ["Hauptstraße {n}", "Lindenweg {n}", "Am Markt {n}", "Industriestr. {n}"],
           "fr": ["{n} rue de la Paix", "{n} avenue Victor Hugo", "{n} boulevard Voltaire"],
           "es": ["Calle Mayor {n}", "Avenida de la Constitución {n}", "Plaza España {n}"],
           "it": ["Via Roma {n}", "Corso Italia {n}", "Viale Mazzini {n}"],
           "nl": ["Kerkstraat {n}", "Dorpsweg {n}", "Prinsengracht {n}"]}
CITIES = {"en": ["London EC1A 1BB", "Leeds LS1 4AP", "Austin, TX 78701", "Dublin 2", "43000 Kajang, Selangor"],
          "de": ["10115 Berlin", "80331 München", "50667 Köln", "20095 Hamburg"],
          "fr": ["75002 Paris", "69001 Lyon", "33000 Bordeaux"], "es": ["28013 Madrid", "08002 Barcelona", "41001 Sevilla"],
          "it": ["20121 Milano", "00184 Roma", "50123 Firenze"], "nl": ["1012 AB Amsterdam", "3511 LK Utrecht", "2511 CV Den Haag"]}
PEOPLE = ["AMIN", "Julia", "Marco", "Sophie", "Daan", "Lucía", "Tom", "Ingrid", "Pierre", "Chiara"]
SLOGANS = ["Fresh every day since 1987", "Your friendly neighbourhood store", "Quality you can taste",
           "*** WELCOME ***", "Open 7 days a week", "Best prices in town"]
ITEMS = ["Consulting hours", "Website maintenance", "A4 paper, 500 sheets", "Espresso beans 1kg", "Cloud hosting (monthly)",
         "Printer toner black", "Design workshop", "Office chair", "USB-C cable 2m", "Delivery pallet", "Support plan",
         "Translation services", "Licence renewal", "Training day", "Coffee machine service", "Catering buffet"]
SHOP_ITEMS = ["MILK 1L", "BREAD WHITE", "EGGS 10PCS", "COFFEE", "APPLE JUICE", "RICE 5KG", "PEN BLUE", "NOTEBOOK A5",
              "CROISSANT", "BANANAS", "WATER 1.5L", "CHOC BAR", "TEA BOX", "SOAP", "TISSUE"]


def fmt_num(d: Decimal, lang: str) -> str:
    s = f"{d:,.2f}"
    if lang in ("de", "es", "it", "nl"):
        return s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    if lang == "fr":
        return s.replace(",", " ").replace(".", ",")
    return s


def fmt_money(d: Decimal, lang: str, cur: str, style: int) -> str:
    num = fmt_num(d, lang)
    sym = {"EUR": "€", "USD": "$", "GBP": "£", "MYR": "RM"}[cur]
    if style == 0:
        return num
    if style == 1:
        return f"{sym}{num}" if lang == "en" else f"{num} {sym}"
    return f"{cur} {num}" if style == 2 else f"{num} {cur}"


def fmt_date(d: date, lang: str, style: int, us: bool = False) -> str:
    """A date as documents in LANG print it; ``us``: month first, as US documents print numeric dates."""
    month = MONTHS[lang].split()[d.month - 1]
    styles = {
        "en": [d.strftime("%m/%d/%Y" if us else "%d/%m/%Y"), f"{month} {d.day}, {d.year}", f"{d.day} {month[:3]} {d.year}", d.isoformat()],
        "de": [d.strftime("%d.%m.%Y"), f"{d.day}. {month} {d.year}", d.strftime("%d.%m.%y")],
        "fr": [d.strftime("%d/%m/%Y"), f"{d.day} {month} {d.year}"],
        "es": [d.strftime("%d/%m/%Y"), f"{d.day} de {month} de {d.year}", d.strftime("%d-%m-%Y")],
        "it": [d.strftime("%d/%m/%Y"), f"{d.day} {month} {d.year}", d.strftime("%d.%m.%Y")],
        "nl": [d.strftime("%d-%m-%Y"), f"{d.day} {month} {d.year}"],
    }[lang]
    return styles[style % len(styles)]
