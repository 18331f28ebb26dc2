"""Extractive summaries (offline engine)."""

from __future__ import annotations

import time

from docpipe.engines.offline.summary import summarize, text_units

REPORT_P1 = """\
Quarterly Operations Report – Q1 2025                                   Page 1 of 2

Warehouse throughput rose to 48,200 parcels in March 2025, up 12% on the previous quarter. The new
sorting line in Leipzig handled 31% of all parcels after its start on 3 February 2025.
Our team enjoyed the spring picnic, and the weather was lovely.
Parcel damage claims fell to 0.4% of shipments, the lowest rate since the warehouse opened.
"""
REPORT_P2 = """\
Quarterly Operations Report – Q1 2025                                   Page 2 of 2

Warehouse staffing costs were EUR 1.2 million, 3% above budget because of overtime in January.
Coffee in the break room will be replaced by a new brand.
The board approved a second sorting line for the warehouse, due to open on 1 September 2025.
"""


def test_empty_input_gives_empty_string() -> None:
    assert summarize([]) == ""
    assert summarize([""]) == ""
    assert summarize(["   \n\n  "]) == ""


def test_picks_informative_sentences_in_original_order() -> None:
    summary = summarize([REPORT_P1, REPORT_P2], max_chars=400)
    assert 0 < len(summary) <= 400
    assert "48,200 parcels" in summary
    assert "picnic" not in summary and "Coffee" not in summary  # no numbers, no document terms
    picked = [s for s in ("48,200 parcels", "damage claims", "staffing costs", "second sorting line") if s in summary]
    assert picked == sorted(picked, key=summary.index)  # document order is kept
    assert sorted(picked, key=summary.index) == sorted(picked, key=(REPORT_P1 + REPORT_P2).index)


def test_page_headers_repeated_on_every_page_are_left_out() -> None:
    summary = summarize([REPORT_P1, REPORT_P2], max_chars=600)
    assert "Page 1 of 2" not in summary and "Page 2 of 2" not in summary


def test_wrapped_lines_are_joined_into_sentences() -> None:
    units = [u for _, u in text_units([REPORT_P1])]
    assert ("Warehouse throughput rose to 48,200 parcels in March 2025, up 12% on the previous quarter."
            in units)
    assert any(u.startswith("The new sorting line in Leipzig") and u.endswith("3 February 2025.") for u in units)


def test_german_ordinal_dates_do_not_end_sentences() -> None:
    units = [u for _, u in text_units(["Der Vertrag endet am 31. Mai 2025. Die Kaution wird erstattet."])]
    assert units == ["Der Vertrag endet am 31. Mai 2025.", "Die Kaution wird erstattet."]


def test_max_chars_is_respected_even_for_one_long_sentence() -> None:
    long = "Revenue " + " ".join(f"grew in region {i} by {i}%" for i in range(60)) + "."
    summary = summarize([long], max_chars=80)
    assert 0 < len(summary) <= 80 and summary.endswith("…")
    assert summarize([REPORT_P1], max_chars=0) == ""


def test_tables_stay_line_by_line() -> None:
    invoice = """\
Invoice INV-7                                   Date: 05.03.2025
Description                 Qty     Price      Amount
Consulting                    10    95.00      950.00
Total                                          950.00 EUR
"""
    units = [u for _, u in text_units([invoice])]
    assert "Consulting  10  95.00  950.00" in units
    assert "950.00" in summarize([invoice], max_chars=300)


def test_hundred_pages_quickly() -> None:
    pages = [REPORT_P1, REPORT_P2] * 50
    start = time.process_time()
    summary = summarize(pages)
    assert time.process_time() - start < 1.0
    assert 0 < len(summary) <= 600
