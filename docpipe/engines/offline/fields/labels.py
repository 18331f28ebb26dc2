"""The label vocabularies, as data: which words name which field (EN/DE/FR/ES/IT/NL, matched on folded text).

Compiled and used elsewhere: amount labels by ``amount_labels``, field labels by ``lookup``, block labels and
legal forms by ``parties`` and ``names``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Amount labels are matched against a *normalised* label (folded, no punctuation, percentages, currency
# marks or parentheses; filler words like "zzgl."/"in"/"von" stripped). Weight: how sure the label names the
# field. An exact match adds 3, the label's last words 2, its first words 0 (e.g. "total at checkout").
_VAT = r"(?:vat|tax|taxes|mwst|ust|umsatzsteuer|tva|gst|iva|btw)"
_INCL = r"(?:incl|including|inkl|inklusive|inclusive|ttc|avec)"
_EXCL = r"(?:excl|excluding|exkl|exklusive|exclusive|ohne|hors|before|without|w o|net of|sans)"
AMOUNT_LABELS: dict[str, tuple[tuple[str, int], ...]] = {
    "total": (
        (rf"(?:grand |invoice |order |final )?total(?: amount| sum| due| payable)?(?: {_INCL} {_VAT})?", 3),
        (rf"(?:gesamt|rechnungs|brutto|end)(?:betrag|summe)(?: brutto)?(?: {_INCL} {_VAT})?|amount {_INCL} {_VAT}", 3),
        (r"total (?:ttc|general|facture|a payer|brut|gross|eur|net a payer)", 3),
        (r"(?:summe|gesamt|rechnungssumme|betrag) (?:brutto|inkl (?:mwst|ust|umsatzsteuer))", 3),
        (r"brutto|gesamt|summe|montant (?:total )?ttc|montant total|total gross|gross amount|importe total|totale|"
         r"total (?:factura|a pagar)|totale (?:fattura|documento|complessivo|da pagare)|totaal(?: incl btw)?|"
         r"totaalbedrag|factuurbedrag|importe a pagar", 2),
        (r"amount due|balance due|amount payable|zahlbetrag|zu zahlen(?:der betrag)?|net a payer|"
         r"solde a payer|reste a payer|montant du|a payer|netto a pagare|te betalen|a pagar", 1),
        (r"invoice amount|rechnungsbetrag netto|offener betrag|restbetrag|balance|residual|amount|betrag|montant", 0),
    ),
    "subtotal": (
        (rf"sub ?total|net(?: amount| total| value)?|total net|(?:total|amount|summe|betrag|montant) {_EXCL} {_VAT}|"
         r"total ht|montant ht|sous ?total|"
         r"total hors taxes?|netto(?:betrag|summe)?|summe netto|gesamt netto|nettobetrag gesamt|"
         r"rechnungssumme (?:netto|ohne (?:ust|mwst|umsatzsteuer))|(?:gesamt|rechnungs)betrag netto|"
         r"summe (?:ohne|exkl|excl) (?:ust|mwst)", 3),
        (r"zwischensumme|warenwert|sous total ht|base ht|base imponible|importe neto|(?:totale )?imponibile|"
         r"subtotale|subtotaal|totaal excl btw|netto bedrag|bedrag excl btw|taxable (?:value|amount)", 2),
        (r"positionssumme|items total|summe positionen", 1),
    ),
    "tax": (
        (r"(?:total |sales |vat |value added )?(?:tax|taxes|vat)(?: total| amount| sub ?total)?|"
         r"total (?:vat|tax|taxes)|"
         r"(?:mwst|ust|umsatzsteuer|mehrwertsteuer|steuer)(?: ?betrag)?|summe (?:umsatzsteuer|mwst|ust|steuern?)|"
         r"(?:gesamt|total) (?:mwst|ust)|steuerbetrag gesamt|tva|total tva|montant (?:de la )?tva|total taxes|"
         r"taxe|taxes|iva|btw|gst|hst|imposta|importe iva|cuota iva|btw bedrag|iva importo|igst|cgst|sgst|utgst|"
         r"pst|qst", 3),
    ),
}


# The same for receipts: till words (cash handed over names a total, but ranks last)
RECEIPT_LABELS: dict[str, tuple[tuple[str, int], ...]] = {
    "total": (
        (r"total|summe|gesamt|gesamtbetrag|zu zahlen|total ttc|total eur|endbetrag|betrag|a payer|net a payer|brutto|"
         r"montant|amount|grand total|total due|amount due|totale|importe|total a payer|montant ttc|sum|"
         r"jumlah(?: besar| bayaran| keseluruhan)?|合計|総合計|お買上げ?合計|お会計|合计|总计|"
         rf"total(?: sales| amt| amount)? {_INCL}(?: of)? {_VAT}", 3),
        # "Total Indl. of GST": a misread word between total and the tax word is "including" (never "excluding")
        (rf"total(?: sales| amt| amount)? (?!(?:of|{_EXCL})\b)[a-z]{{3,9}} of {_VAT}", 3),
        (r"bar|cash|kartenzahlung|ec karte|girocard|card|visa|mastercard|espece|especes|cb|gegeben|paid|tunai", 0),
    ),
    "subtotal": ((rf"sub ?total|zwischensumme|netto|net|total ht|sous total|summe netto|"
                  rf"total(?: sales| amt| amount)? {_EXCL}(?: of)? {_VAT}|小計|小计", 3),),
    "tax": ((r"(?:mwst|ust|tax|vat|tva|steuer|mehrwertsteuer|umsatzsteuer|iva|gst|hst|btw)(?: ?betrag| total| amount)?|"
             r"(?:total|summe|gesamt) (?:mwst|tax|vat|tva|steuer|gst|hst|btw)|内?消費税等?|消费税|税額|税额", 3),),
}


# Field labels for label -> value lookups, as folded regexes. "anywhere": may start mid-cell (after a
# non-letter); otherwise the label must open its cell (generic words like "Date" are too common elsewhere).
@dataclass(frozen=True)
class Label:
    rx: str
    weight: int = 2
    anywhere: bool = True


def _labels(weight: int, anywhere: bool, *rxs: str) -> tuple[Label, ...]:
    return tuple(Label(r, weight, anywhere) for r in rxs)


INVOICE_NUMBER_LABELS = _labels(
    3, True,
    r"invoice\s*(?:no\b\.?|number|nr\b\.?|num\b\.?|#|id\b)", r"inv\.?\s*(?:no\b\.?|#)",
    r"rechnungs?\s*-?\s*(?:nummer|nr\b\.?|no\b\.?)", r"rechnungsnr\b\.?", r"beleg\s*-?\s*(?:nummer|nr\b\.?)",
    r"gutschrifts?\s*-?\s*(?:nummer|nr\b\.?)", r"(?:n[°o]|no\.|numero)\s*(?:de\s+)?(?:la\s+)?facture",
    r"facture\s*(?:n\s?°|no\b\.?|numero)", r"credit\s*note\s*(?:no\b\.?|number|#)",
    r"avoir\s*(?:n\s?°|no\b\.?)", r"bill\s*(?:no\b\.?|number|#)",
    r"(?:numero|n[°o])\s*(?:de\s+)?(?:facture|avoir)",
    r"(?:n[°ºo]\.?|num(?:ero)?\.?)\s*(?:de\s+)?factura", r"factura\s*(?:n[°ºo]\.?|num(?:ero)?\.?|#)",
    r"fattura\s*(?:n[°ºr]?\.?|numero|num\.?)", r"numero\s*(?:della\s+)?fattura", r"n\.?\s*fattura",
    r"factuur\s*-?\s*(?:nummer|nr\.?|no\.?)", r"factuurnr\.?",
) + _labels(1, False, r"re\.?\s*-?\s*nr\b\.?", r"document\s*(?:no\b\.?|number|nr\b\.?)", r"belegnr\b\.?",
                    r"n\.?\s*documento", r"reference", r"ref\.?\s*(?:no\.?)?",
                    r"n[°º]")  # "N° FA-2025-0093" under a "Facture" title: a bare number sign opening its cell

# An order's number: the invoice number of a shop's "Invoice for Order #1047" when nothing else numbers it
ORDER_NUMBER_LABELS = _labels(
    1, True,
    r"order\s*(?:no\b\.?|number|nr\b\.?|#)", r"bestell\s*-?\s*(?:nummer|nr\b\.?)",
    r"auftrags\s*-?\s*(?:nummer|nr\b\.?)",
    r"(?:n[°o]|numero)\s*(?:de\s+)?commande", r"commande\s*(?:n\s?°|no\b\.?|numero)", r"pedido\s*(?:n[°ºo]\.?|#)",
    r"(?:n[°ºo]\.?|numero)\s*(?:de\s+)?pedido", r"ordine\s*(?:n[°ºr]?\.?|numero|#)", r"bestel\s*-?\s*(?:nummer|nr\.?)",
)

INVOICE_DATE_LABELS = _labels(
    3, True,
    r"invoice\s*date", r"date\s*of\s*(?:issue|invoice)", r"issue\s*date", r"date\s*issued", r"issued\s*(?:on|date)",
    r"billing\s*date", r"rechnungs\s*-?\s*datum", r"beleg\s*-?\s*datum", r"ausstellungsdatum",
    r"datum\s*der\s*rechnung", r"date\s*(?:de\s*(?:la\s*)?)?facture", r"date\s*d\s*'?\s*emission",
    r"date\s*de\s*facturation", r"facture\s*du", r"rechnung\s*vom", r"gutschriftsdatum",
    r"fecha\s*(?:de\s*)?(?:la\s*)?factura", r"fecha\s*de\s*(?:emision|expedicion)", r"data\s*(?:della\s*)?fattura",
    r"data\s*(?:del\s*)?documento", r"data\s*(?:di\s*)?emissione", r"factuurdatum", r"datum\s*factuur",
    r"emise?\s*le",
) + _labels(1, False, r"date", r"datum", r"dated", r"fecha", r"data")

DUE_DATE_LABELS = _labels(
    3, True,
    r"due\s*date", r"date\s*due", r"payment\s*due(?:\s*date)?", r"due\s*(?:on|by)", r"payable\s*(?:by|until|on)",
    r"pay\s*by", r"fallig(?:\s*(?:am|bis|zum))?", r"falligkeit(?:sdatum)?", r"zahlbar\s*bis(?:\s*zum)?",
    r"zahlungsziel", r"zahlungsfrist", r"(?:date\s*d\s*'?\s*)?echeance",
    r"date\s*limite\s*(?:de\s*)?(?:paiement|reglement)",
    r"a\s*payer\s*avant(?:\s*le)?", r"payable\s*le", r"zu\s*zahlen\s*bis",
    r"(?:fecha\s*de\s*)?vencimiento", r"fecha\s*limite\s*de\s*pago",
    r"(?:data\s*(?:di\s*)?)?scadenza(?:\s*(?:del\s*)?pagamento)?",
    r"pagamento\s*entro(?:\s*il)?", r"vervaldatum", r"te\s*betalen\s*(?:voor|uiterlijk|op)",
    r"uiterste\s*betaaldatum", r"betalen\s*voor",
) + _labels(1, False, r"due", r"fallig", r"payable")


SELLER_LABELS = (r"verkaufer", r"lieferant", r"rechnungs?(?:er)?steller", r"aussteller", r"absender",
                 r"leistungserbringer", r"auftragnehmer", r"seller", r"vendor", r"supplier", r"from",
                 r"issued\s+by", r"sold\s+by", r"(?:[\w()]+\s+){0,2}provided\s+by", r"bill\s+from",
                 r"fournisseur", r"vendeur", r"emetteur", r"prestataire", r"expediteur", r"remit\s+to",
                 r"proveedor", r"emisor", r"vendedor", r"fornitore", r"cedente", r"venditore", r"leverancier",
                 r"verkoper")
BUYER_LABELS = (r"bill(?:ed)?\s+to", r"invoice(?:d)?\s+to", r"sold\s+to", r"customer", r"client", r"buyer",
                r"recipient", r"to", r"kunde", r"rechnung\s+an", r"gutschrift\s+an", r"rechnungsempfanger",
                r"rechnungsadresse",
                r"kaufer(?:\s*/\s*leistungsempfanger)?", r"leistungsempfanger", r"auftraggeber", r"an",
                r"empfanger", r"facture\s+a", r"factures?\s+a", r"adresse\s+de\s+facturation", r"destinataire",
                r"acheteur", r"billing\s+address", r"customer\s+details", r"client\s+factur[ée]",
                r"facturar\s+a", r"facturado\s+a", r"cliente", r"datos\s+del\s+cliente", r"destinatario",
                r"intestat[ao]\s+a", r"spett(?:\.?\s*le|abile)", r"committente", r"factuur\s+aan",
                r"gefactureerd\s+aan", r"klant", r"afnemer", r"aan")
DELIVERY_LABELS = (r"ship(?:ped)?\s+to", r"deliver(?:y|ed)\s*(?:to|address)", r"lieferanschrift", r"lieferadresse",
                   r"warenempfanger", r"adresse\s+de\s+livraison", r"livre\s+a")


RELAXED_LABELS = {
    "seller": (r"verkaufer", r"rechnungs?(?:er)?steller", r"leistungserbringer", r"(?:[\w()]+\s+){0,2}provided\s+by",
               r"issued\s+by", r"sold\s+by", r"fournisseur", r"emetteur"),
    "buyer": (r"bill(?:ed)?\s+to", r"rechnung\s+an", r"invoice(?:d)?\s+to", r"sold\s+to", r"rechnungsempfanger",
              r"rechnungsadresse",
              r"kaufer\s*/\s*leistungsempfanger", r"leistungsempfanger", r"adresse\s+de\s+facturation",
              r"billing\s+address", r"facturar\s+a", r"intestat[ao]\s+a", r"factuur\s+aan",
              r"gefactureerd\s+aan"),
    "delivery": (r"ship(?:ped)?\s+to", r"lieferanschrift", r"lieferadresse", r"adresse\s+de\s+livraison",
                 r"delivery\s+address"),
}


# Cells that open a block which is no party's: an address block under a party label ends there
OTHER_BLOCK_LABELS = (r"abweichender\s+\w+", r"bemerkungen?", r"positionsdaten", r"zahlungsbedingungen",
                      r"payment\s+(?:details|terms|information)", r"details", r"notes?", r"description",
                      r"conditions\s+de\s+paiement", r"bank\w*", r"steuerbevollmachtigter.*",
                      r"contact", r"kontakt", r"project", r"projekt", r"projet", r"references?",
                      r"referenz", r"vat\s+reg\.?\s*no\.?", r"company\s+no\.?")


# Legal forms that mark a company name, case-insensitive
LEGAL_CI = (r"gmbh(?:\s*&\s*co\.?\s*(?:kg(?:aa)?|ohg)?)?", r"mbh", r"ltd\.?", r"limited", r"llc", r"l\.l\.c\.",
            r"inc\.?",
            r"incorporated", r"corp\.?", r"corporation", r"plc", r"llp", r"sarl", r"s\.a\.r\.l\.", r"sasu?", r"eurl",
            r"s\.a\.s\.", r"s\.a\.", r"s\.p\.a\.", r"s\.r\.l\.", r"b\.v\.", r"n\.v\.", r"pty\.?\s+ltd\.?", r"gbr",
            r"e\.\s?v\.", r"a\.\s?g\.", r"ohg", r"kgaa", r"ug(?:\s*\(haftungsbeschr[aä]nkt\))?", r"s\.n\.c\.",
            r"s\.r\.l\.s\.", r"s\.l\.u\.", r"v\.o\.f\.")
# Case-sensitive short forms; "AB"/"AS"/"Oy" are left out: in running text they are more often not companies.
LEGAL_CS = (r"AG", r"KG", r"SA", r"SE", r"BV", r"NV", r"A/S", r"ApS", r"SpA", r"Srl", r"S\.L\.", r"Co\.",
            r"SNC", r"Snc", r"SLU", r"GmbH & Co\.? KG")


# Words that name the document itself (titles: 'Rechnung Nr.', 'INVOICE', 'Quittung')
DOC_WORDS = (r"(?:\w*rechnung|invoice|facture|gutschrift|credit\s+note|avoir|rechnungskorrektur|bill|quittung|receipt"
             r"|factura|fattura|factuur)")


CURRENCY_LABELS = (Label(r"(?:rechnungs)?wahrung|currency|devise|monnaie|betrage\s+in|amounts?\s+in|"
                         r"montants?\s+en|all\s+amounts\s+(?:are\s+)?in|payment\s+currency|invoice\s+currency",
                         3, False),)
