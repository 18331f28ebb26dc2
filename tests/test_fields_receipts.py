"""Till receipts: the merchant is the header's business line (not a slogan, title or registration line), the
address the lines under it, the total the amount that cash minus change confirms, the date even with a glued time."""

from __future__ import annotations

from docpipe.engines.offline.fields import extract_fields
from docpipe.schemas import resolve

RECEIPT = resolve("receipt")

MALAYSIAN = """                 A03120
            Your friendly neighbourhood store
         KEDAI MAJU JAYA SDN BHD
              (162761-M)
      NO.32 & 33, JALAN SR 1/9, SEKSYEN 9,
            TAMAN SERDANG RAYA,
       43300 SERI KEMBANGAN, SELANGOR
           GST ID:002139201536
              TEL: 03-8942 1234
                Tax Invoice
 Doc No     CS00065374     Date: 15/07/201712:07
 Cashier    AMIN
 MILO 1KG               1    18.90   18.90 SR
 ROTI GARDENIA          2     2.90    5.80 SR
   Total Qty   3                      24.70
      Total Sales (Excluding GST)     23.30
                    Total GST          1.40
                     Rounding          0.00
  Total Sales (Inclusive of GST) :    24.70
                       CASH :         50.00
                     Change :         25.30
"""

SLOGAN_FIRST = """*** WELCOME ***
BRIGHTWATER BAKERY
Fresh every day since 1987
Via Roma 12
20121 Milano
TEL: 02-555 1234
SCONTRINO
Data: 03/04/2024 08:15
Cassiere: Marco
CROISSANT                 1,20
CAFFE                     1,10
TOTALE EURO               2,30
CONTANTI                  5,00
RESTO                     2,70
"""


def test_merchant_address_and_paid_total_on_a_till_receipt() -> None:
    r = extract_fields([MALAYSIAN], RECEIPT)
    assert r["merchant_name"] == "KEDAI MAJU JAYA SDN BHD"
    assert r["merchant_address"] == ("NO.32 & 33, JALAN SR 1/9, SEKSYEN 9, TAMAN SERDANG RAYA, "
                                     "43300 SERI KEMBANGAN, SELANGOR")
    assert r["total"] == "24.70"     # not the total before tax, not the cash handed over
    assert r["date"] == "2017-07-15"


def test_slogans_are_not_the_merchant() -> None:
    r = extract_fields([SLOGAN_FIRST], RECEIPT)
    assert r["merchant_name"] == "BRIGHTWATER BAKERY"
    assert r["merchant_address"] == "Via Roma 12, 20121 Milano"
    assert r["total"] == "2.30" and r["date"] == "2024-04-03"


BAKERY = """3180404       staff
               RSK
   SYL ROASTED DELIGHTS SDN. BHD.
    75, JALAN SS 22/19, DAMANSARA JAYA, 47400 PJ
             TEL:03-7731 8169
  Date: 09/06/2018 17:18:08     Invoice No: SP-nu11-18/06/09-1018481
  RAISIN ALMOND BREAD            4.55
  CHEESE ROLL (4)                3.90
  Total Inclusive of Tax  (RM)   8.45
  Payment                      -20.00
  Change                        11.55
"""


def test_legal_name_under_a_logo_word_negative_tender_and_day_first_ringgit() -> None:
    r = extract_fields([BAKERY], RECEIPT)
    assert r["merchant_name"] == "SYL ROASTED DELIGHTS SDN. BHD."
    assert r["merchant_address"] == "75, JALAN SS 22/19, DAMANSARA JAYA, 47400 PJ"
    assert r["total"] == "8.45" and r["date"] == "2018-06-09"


def test_purchase_date_is_the_labelled_one_not_a_voucher_expiry() -> None:
    text = """CORNER CAFE LTD
12 High Street, Leeds LS1 4AP
Voucher valid until 31/12/2024
Table 4            Date: 05/03/2024 12:30
FLAT WHITE                 3.20
TOTAL                      3.20
"""
    assert extract_fields([text], RECEIPT)["date"] == "2024-03-05"


def test_a_web_receipt_is_from_the_merchant_its_title_names() -> None:
    # a web shop's receipt has headings where a till has its letterhead: "SUMMARY" is no merchant
    text = """\
        Receipt from Lumenfield, Inc.

        Receipt #2041-9937

        AMOUNT PAID             DATE PAID             PAYMENT METHOD
        $49.00                  March 3, 2025         Visa – 4242

        SUMMARY

        Pro plan (× 1)                                                         $49.00
        Amount paid                                                            $49.00
"""
    r = extract_fields([text], RECEIPT)
    assert (r["merchant_name"], r["date"], r["total"], r["currency"]) == ("Lumenfield, Inc.", "2025-03-03", "49.00",
                                                                          "USD")


def test_a_merchant_name_on_two_lines_ends_with_its_business_word() -> None:
    text = """\
31803039
       TSH POWER HARDWARE
               TRADING
                002458685-T
            13-1, Jalan PJU 5/10,
        47810, Petaling Jaya, Selangor
             Tel:012-373 2096
               TAX INVOICE
  Date       10/10/2017 4:22:12 PM
                Sub Total:       8.00
          NET TOTAL :           8.00
"""
    r = extract_fields([text], RECEIPT)
    assert r["merchant_name"] == "TSH POWER HARDWARE TRADING"
    assert r["merchant_address"].startswith("13-1, Jalan PJU 5/10")


def test_a_count_before_the_item_name_is_its_quantity() -> None:
    text = """\
THE COPPER KETTLE
512 Main St
Austin, TX 78701
Check #4471   11/22/2025 7:48 PM
2 Fish Tacos                25.00
1 Caesar Salad              11.50
7 Up Lemon                   2.50
1 MAJESTA HSS  2   4.00      8.00
Subtotal                    47.00
Total                       47.00
"""
    items = extract_fields([text], RECEIPT)["items"]
    got = [(i["description"], i.get("quantity"), i.get("unit_price"), i["amount"]) for i in items]
    assert got[:2] == [("Fish Tacos", "2", "12.50", "25.00"), ("Caesar Salad", "1", "11.50", "11.50")]
    assert got[2] == ("7 Up Lemon", None, None, "2.50")  # 2.50 is no multiple of 7: a name that starts with a number
    assert got[3][1] != "1"  # a row number before a line with its own quantity column is no count


def test_a_till_header_keeps_its_address_past_street_numbers_titles_and_codes() -> None:
    # "55,57 & 59" is three street numbers, not 55.57 of money; the town before "Tel No.:" belongs to the address
    numbers = """\
      KEDAI BUKU PELANGI SDN BHD
               100234-W
      NO.5: 55,57 & 59, JALAN MERBAU 18,
            TAMAN MELATI,
      81100 JOHOR BAHRU, JOHOR. Tel No.: 07-331 2020
  Doc No : TD0099
  Date:  25/12/2019 8:13:39 PM
              Total :         9.00
"""
    r = extract_fields([numbers], RECEIPT)
    assert r["merchant_name"] == "KEDAI BUKU PELANGI SDN BHD"
    assert r["merchant_address"] == ("NO.5: 55,57 & 59, JALAN MERBAU 18, TAMAN MELATI, 81100 JOHOR BAHRU, JOHOR")
    # a bare till title between the name and the street; a registration code glued after the legal form
    titled = """\
RIANG SEJAHTERA TRADING SDN BHD 770012-U
      gst:001662431232
            TAX INVOICE
       NO7,JLN ANGGERIK,SHAH ALAM.
27" BASIN BESAR    1.00 X 21.32   21.32
TOTAL                     22.60
Rabu, 10-05-2017 Time : 21:51
"""
    r = extract_fields([titled], RECEIPT)
    assert r["merchant_name"] == "RIANG SEJAHTERA TRADING SDN BHD"
    assert r["merchant_address"] == "NO7,JLN ANGGERIK,SHAH ALAM."
    glued = "     CASA NOGAL S.L.\n      Calle Mayor 12\n       46001Valencia\n     TEL: 96-555 0101\n" \
            "03/03/2022 10:20\nTOTAL     9,20\n"
    assert extract_fields([glued], RECEIPT)["merchant_address"] == "Calle Mayor 12, 46001 Valencia"  # OCR glue


def test_a_trading_name_under_the_company_is_not_the_address_and_a_compact_date_is_read() -> None:
    text = """\
BINTANG TIMUR CASH & CARRY SDN BHD (590150-A)
PASARAYA BORONG BINTANG
NO. 1 Jalan Kenari 1
Seksyen U3 Shah Alam,40150
TEL:03-7859 0861
         Tax Invoice
   14022019           No.CS-20242
    Total Amt Incl. GST @ 6% :   79.50
"""
    r = extract_fields([text], RECEIPT)
    assert r["merchant_name"] == "BINTANG TIMUR CASH & CARRY SDN BHD"
    assert r["merchant_address"] == "NO. 1 Jalan Kenari 1, Seksyen U3 Shah Alam,40150"
    assert r["date"] == "2019-02-14"  # no date with separators anywhere: the till's ddmmyyyy


def test_ocr_misreads_in_names_are_mended_only_where_they_cannot_be_real() -> None:
    from docpipe.engines.offline.fields.layout import Doc
    from docpipe.engines.offline.fields.ocr_mend import mend_name, mend_names

    assert mend_name("URBAN 1DEA SDN BHD", True) == "URBAN IDEA SDN BHD"
    assert mend_name("TSH POWER HARDWÀRE", True) == "TSH POWER HARDWARE"
    assert mend_name("CAFÉ NERO", True) == "CAFÉ NERO"              # a word's last letter may be accented
    assert mend_name("TSH POWER HARDWÀRE", False) == "TSH POWER HARDWÀRE"  # an accented language: keep
    for kept in ("1ST FLOOR", "USJ1 SUBANG", "B1001 BLOCK", "3M COMPANY", "NO.10, JALAN SS2/10", "EC1N WORKS"):
        assert mend_name(kept, True) == kept
    mended = mend_names({"merchant_address": "1 SUMMIT TOWER, L0BBY B"}, Doc(["1 SUMMIT TOWER, L0BBY B"]))
    assert mended["merchant_address"] == "1 SUMMIT TOWER, L0BBY B"  # addresses: as read
    german = "Rechnung\nBäckerei Müller GmbH\nDatum: 03.04.2024\nSumme 4,50 EUR\nMWST 0,29\n"
    assert extract_fields([german], RECEIPT)["merchant_name"] == "Bäckerei Müller GmbH"


US_TILL = """\
              Pricewise
      Shop more. Spend less.
          ( 555 ) 201 - 3377
      MANAGER JOHN SMITH
        2150 N FRONTAGE RD
         SPRINGFIELD IL 62702
ST# 01893 OP# 009044 TE# 44 TR# 03131
BREAD        007225003712 F     2.88 N
MILK 2%      007874235186 F     3.48 N
PAPER TOWEL  003700083755       12.97 X
                    SUBTOTAL    19.33
        TAX 1     6.250 %        0.81
                       TOTAL    20.14
              VISA TEND         20.14
US DEBIT        **** **** **** 4417 I 0
               CHANGE DUE        0.00
       # ITEMS SOLD 3
     TC# 4431 7718 2290 0114 5521
         03/14/25       18:22:05
"""

AU_TILL = """\
  HARDLINE HARDWARE
  Hardline Group Pty Ltd ABN 26 008 672 179
  Cnr Smith & Jones Rd
  Alexandria NSW 2015
  TAX INVOICE
  14/03/2025 10:12   Reg 12  Trans 5561
  PAINT ROLLER 230MM        1 @ $12.98      $12.98
  MASKING TAPE 48MM         2 @ $4.50        $9.00
  TOTAL                                    $21.98
  GST INCLUDED IN TOTAL                     $2.00
  EFTPOS                                   $21.98
"""

UK_TILL = """\
               CORNERFIELD
            Express
        12 Station Road
          Reading RG1 1LX
       VAT NUMBER: GB220430231
      Tel: 0345 677 9598
BANANAS LOOSE                 £0.68
SEMI SKIMMED MILK 2L          £1.55
CHOC DIGESTIVES               £1.25
TOTAL                         £3.48
CONTACTLESS                   £3.48
CHANGE DUE                    £0.00
 CARD:  VISA DEBIT ************1234
 14/03/25  18:22  3114 052 1072 1043
   Thank you for shopping with us
"""


def test_tills_of_three_countries_slogans_staff_and_till_numbers_are_not_the_address() -> None:
    us = extract_fields([US_TILL], RECEIPT)
    assert us["merchant_name"] == "Pricewise"
    assert us["merchant_address"] == "2150 N FRONTAGE RD, SPRINGFIELD IL 62702"
    assert us["currency"] == "USD"  # no mark printed: the store's state and ZIP code
    assert [i["description"] for i in us["items"]] == ["BREAD", "MILK 2%", "PAPER TOWEL"]  # no barcodes, no flags
    assert (us["tax"], us["total"]) == ("0.81", "20.14")
    au = extract_fields([AU_TILL], RECEIPT)
    assert au["currency"] == "AUD"  # "$" beside an ABN and "NSW 2015" is the Australian dollar
    assert (au["tax"], au["total"]) == ("2.00", "21.98")  # "GST INCLUDED IN TOTAL" names the tax
    uk = extract_fields([UK_TILL], RECEIPT)
    assert uk["merchant_address"] == "12 Station Road, Reading RG1 1LX"  # "Express" is the shop's format
    assert uk["currency"] == "GBP"


def test_a_total_including_tax_is_the_total_even_misread_and_tax_words_name_the_tax() -> None:
    text = """\
   GREENLEAF STATIONERY SDN BHD
    NO.9, JALAN MAWAR 3, TAMAN SERI
      CHERAS,56100 KUALA LUMPUR.
              TAX INVOICE
Date:        15/07/2017 12:07
NAME CARD         148.00           148.00     SR
  Total Excl.of GST      139.62
   Total Indl. of GST    148.00
  GST 6%                   8.38
"""
    r = extract_fields([text], RECEIPT)
    assert (r["total"], r["tax"]) == ("148.00", "8.38")
    glued = text.replace("Total Indl. of GST    148.00", "Total Incl. GST:RM   148.00")
    assert extract_fields([glued], RECEIPT)["total"] == "148.00"



DE_TILL = """\
            FRISCHMARKT
     Frischmarkt Lindner GmbH
   Hauptstraße 12
   10827 Berlin
   UID Nr.: DE123456789
                               EUR
BIO BANANE                    1,99 B
VOLLMILCH 3,5%                1,19 B
 2 Stk x   0,95
BROETCHEN                     1,90 B
PFAND 0,25                    0,25 A
--------------------------------------
SUMME                   EUR   5,33
======================================
Geg. EC-Cash            EUR   5,33

Steuer  %    Netto   Steuer  Brutto
A=  19,0%     0,21     0,04    0,25
B=   7,0%     4,76     0,33    5,08
Gesamtbetrag  4,97     0,37    5,33

TSE-Signatur: kJ3n8...
14.03.2025  18:22  Bon-Nr.:4417
Markt:1234  Kasse:2  Bed.:101010
"""

IT_TILL = """\
       BAR PASTICCERIA ROMA
     di Rossi Mario & C. s.n.c.
       Via Garibaldi 21
       00185 Roma (RM)
     P.IVA 01234567890
       DOCUMENTO COMMERCIALE
   di vendita o prestazione
DESCRIZIONE          IVA   Prezzo(€)
CAPPUCCINO          10%        1,50
CORNETTO            10%        1,20
TOTALE COMPLESSIVO              2,70
di cui IVA                      0,25
Pagamento contante              5,00
Resto                           2,30
14-03-2025 08:12
DOC.N. 0042-0017
"""


def test_a_vat_breakdown_by_rate_is_not_the_total_and_its_sum_row_adds_up() -> None:
    r = extract_fields([DE_TILL], RECEIPT)
    # rows "A= 19,0% ..." and "B= 7,0% ..." are parts; "Gesamtbetrag 4,97 0,37 5,33" is net, VAT and gross
    assert (r["total"], r["tax"]) == ("5.33", "0.37")


def test_the_owner_line_under_a_bar_name_is_the_company_not_part_of_the_address() -> None:
    r = extract_fields([IT_TILL], RECEIPT)
    assert r["merchant_name"] == "Rossi Mario & C. s.n.c."  # "di ..." names the business behind the sign
    assert r["merchant_address"] == "Via Garibaldi 21, 00185 Roma (RM)"
    assert (r["total"], r["tax"]) == ("2.70", "0.25")



FR_TILL = """\
        EPICERIE DU CANAL
     12 RUE DE LA ROQUETTE
         75011 PARIS
      TEL 01 43 55 12 12
   SIRET 123 456 789 00011
BAGUETTE TRADITION          1,10
CAMEMBERT PRESIDENT         2,35
EAU CRISTALINE 1,5L         0,45
   3 ARTICLES
TOTAL A PAYER               3,90 EUR
CB EMV                      3,90 EUR
TVA   BASE    TAUX   MONTANT
      3,70    5,50%    0,20
   14/03/2025 18:22  CAISSE 003
     MERCI DE VOTRE VISITE
"""


def test_a_vat_table_headed_by_its_tax_word_gives_the_tax_from_its_amount_column() -> None:
    r = extract_fields([FR_TILL], RECEIPT)
    assert (r["total"], r["tax"]) == ("3.90", "0.20")  # "TVA  BASE  TAUX  MONTANT" over "3,70  5,50%  0,20"
    assert r["merchant_address"] == "12 RUE DE LA ROQUETTE, 75011 PARIS"


def test_a_blank_line_after_the_postcode_closes_the_address() -> None:
    text = """\
         TAX INVOICE

        KPetrol Seri Kembangan
      Jalan Kenanga Dua
              43300 Seri Kembangan
                Selangor

            Wira Servstation
        CO. REG. NO: 000948487-V
18-01-2018 15:44:46 Cashier: 888
             TOTAL SALES    RM 41.95
"""
    r = extract_fields([text], RECEIPT)
    assert r["merchant_address"] == "Jalan Kenanga Dua, 43300 Seri Kembangan, Selangor"



SG_TILL = """\
        TOAST HOUSE PTE. LTD.
   UEN: 201954321K  GST Reg: M90371234X
     1 Raffles Place #01-23
       Singapore 048616
       Tel: 6123 4567
           TAX INVOICE
Receipt: R00123456     Table: 12
Date: 05 Jan 2019  Time: 13:45
Kaya Toast Set     x2       9.00
Iced Kopi          x1       2.20
Sub Total                  11.20
Svc Chg 10%                 1.12
GST 7%                      0.86
Total                      13.18
NETS                       13.18
"""

MY_TILL = """\
RESTORAN NASI LEMAK SERI
(001234567-X)
NO 21, JALAN TUN RAZAK,
50450 KUALA LUMPUR
TEL : 03-2162 1234
Bil No : 00012345   Meja : 5
Tarikh : 05/01/2019  Masa : 13:45
Nasi Kandar Ayam      1    12.50
Teh Tarik             2     5.00
Jumlah                     17.50
Tunai                      20.00
Baki                        2.50
TERIMA KASIH
"""


def test_a_singapore_till_unit_number_counts_and_a_malay_till_in_its_own_words() -> None:
    sg = extract_fields([SG_TILL], RECEIPT)
    assert sg["merchant_address"] == "1 Raffles Place #01-23, Singapore 048616"  # "#01-23" is a unit, not a till tag
    assert (sg["currency"], sg["tax"], sg["total"]) == ("SGD", "0.86", "13.18")
    assert [(i["description"], i.get("quantity"), i.get("unit_price")) for i in sg["items"]] == [
        ("Kaya Toast Set", "2", "4.50"), ("Iced Kopi", "1", "2.20")]
    my = extract_fields([MY_TILL], RECEIPT)
    assert (my["date"], my["total"]) == ("2019-01-05", "17.50")  # Tarikh, Jumlah; Tunai and Baki are tender
    assert [(i["description"], i.get("quantity"), i["amount"]) for i in my["items"]] == [
        ("Nasi Kandar Ayam", "1", "12.50"), ("Teh Tarik", "2", "5.00")]


def test_a_tax_number_line_under_a_till_address_is_not_part_of_it() -> None:
    text = """\
THE COPPER FORK
88 King St W, Toronto ON M5H 1A1
HST# 81234 5678 RT0001
Server: Ana   Table 4   Guests 2
03/12/2025 7:42 PM
Subtotal                  34.00
HST 13%                    4.42
Total                     38.42
"""
    r = extract_fields([text], RECEIPT)
    assert r["merchant_address"] == "88 King St W, Toronto ON M5H 1A1"
    assert (r["tax"], r["total"], r["currency"]) == ("4.42", "38.42", "CAD")  # the address says Canada


def test_a_japanese_till_its_date_totals_tax_and_tender() -> None:
    text = """\
      さくらマート 渋谷店
   東京都渋谷区道玄坂2-1-1
     TEL 03-9876-5432
2025年3月14日(金) 18:22
おにぎり              ¥150
緑茶                  ¥140
小計                  ¥290
消費税等(8%)           ¥23
合計                  ¥313
お預り               ¥1,000
お釣り                ¥687
"""
    r = extract_fields([text], RECEIPT)
    assert (r["date"], r["total"], r["tax"], r["currency"]) == ("2025-03-14", "313.00", "23.00", "JPY")
    assert r["merchant_name"] == "さくらマート 渋谷店"
    assert [i["description"] for i in r["items"]] == ["おにぎり", "緑茶"]  # not the tender lines
