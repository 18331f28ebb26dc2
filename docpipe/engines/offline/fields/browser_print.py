"""What a browser prints around a web page: the date and time, the page's title, its URL, a page counter.

Why: invoices of web services are often kept as "Print > Save as PDF" of the billing page. The header's date is
the day it was printed, not the invoice's date, and its title ("Invoice | Brightloop") names the issuer, so
these lines are taken out of the text the rules read, and the title and print date kept as cues. A page counts
as browser-printed only when its first or last lines hold a date-and-time stamp, a URL and a title or page
counter, so an ordinary letter or a till receipt keeps its dates and web addresses.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .dates import find_dates

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:\s*(?P<ampm>[AaPp]\.?\s?[Mm]\.?))?"
_STAMP_RE = re.compile(rf"^(?P<date>\d{{1,4}}[./-]\d{{1,2}}[./-]\d{{1,4}}),?\s+{_TIME}$")
_URL_RE = re.compile(r"^(?:https?|file)://\S+$|^www\.\S+$", re.I)
_COUNTER_RE = re.compile(r"^(?:page\s+|seite\s+)?\d{1,4}\s*(?:/|of|von|sur|de|di)\s*\d{1,4}$", re.I)
_GAP_RE = re.compile(r"\s{2,}")
EDGE = 2  # lines at the top and at the bottom of a page where a browser puts its header and footer


@dataclass(frozen=True)
class PrintCues:
    """What the furniture said: the page title and the day it was printed (either may be missing)."""

    title: str | None = None
    printed: dt.date | None = None


def _kind(cell: str) -> str:
    if _STAMP_RE.match(cell):
        return "stamp"
    if _URL_RE.match(cell):
        return "url"
    if _COUNTER_RE.match(cell):
        return "counter"
    return "other"


def _furniture(line: str) -> list[tuple[str, str]] | None:
    """The line's cells with their kinds when it can be browser furniture: at least one stamp, URL or counter
    and at most one other cell (the title)."""
    cells = [(_kind(c), c) for c in _GAP_RE.split(line.strip()) if c]
    kinds = [k for k, _ in cells]
    if not cells or kinds.count("other") > 1 or kinds.count("other") == len(kinds):
        return None
    return cells


def _print_date(stamp: str) -> dt.date | None:
    """'12/6/26, 10:56 PM' (a 12-hour clock: month first, as en-US browsers print) or '23.06.23, 11:09'."""
    m = _STAMP_RE.match(stamp)
    hits = find_dates(m.group("date"), day_first=not m.group("ampm")) if m else []
    return hits[0].value if hits else None


def strip_print_furniture(page: str) -> tuple[str, PrintCues]:
    """The page without a browser's header and footer lines, and the cues they held; untouched otherwise."""
    lines = page.splitlines()
    filled = [i for i, ln in enumerate(lines) if ln.strip()]
    edge = filled[:EDGE] + [i for i in filled[-EDGE:] if i not in filled[:EDGE]]
    found = {i: cells for i in edge if (cells := _furniture(lines[i])) is not None}
    kinds = {k for cells in found.values() for k, _ in cells}
    # a browser prints a title or a page counter beside them too; a till receipt's date line and web address
    # (first and last lines) have neither
    if not {"stamp", "url"} <= kinds or not kinds & {"counter", "other"}:
        return page, PrintCues()
    title = next((c for cells in found.values() for k, c in cells if k == "other"), None)
    printed = next((d for cells in found.values() for k, c in cells if k == "stamp" and (d := _print_date(c))),
                   None)
    kept = "\n".join(ln for i, ln in enumerate(lines) if i not in found)
    return kept, PrintCues(title, printed)


def strip_pages(pages: list[str]) -> tuple[list[str], PrintCues]:
    """Every page stripped; the cues of the first page that had them."""
    out, cues = [], PrintCues()
    for page in pages:
        kept, found = strip_print_furniture(page)
        out.append(kept)
        if cues == PrintCues():
            cues = found
    return out, cues
