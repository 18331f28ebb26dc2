"""The text model: pages -> lines -> cells (``Seg``: text between runs of 2+ spaces, with its column).

``Doc`` also holds document-wide cues (language, decimal mark, date order) and finds every date and amount
once, filed by line.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .browser_print import strip_pages
from .dates import DateHit, blank_dates, find_dates
from .language import detect_language, guess_day_first, guess_decimal_mark
from .numbers import Amount, find_amounts
from .text import fold

MAX_LINE = 2000  # characters kept per line: real lines are far shorter; this bounds the per-line work
_SEG_RE = re.compile(r"\S+(?: \S+)*")  # a run of words separated by single spaces


@dataclass(frozen=True)
class Seg:
    """A column cell: text between runs of 2+ spaces, with its start column."""

    line: int
    col: int
    text: str
    folded: str = ""

    def __post_init__(self) -> None:
        if not self.folded:
            object.__setattr__(self, "folded", fold(self.text))

    @property
    def end(self) -> int:
        return self.col + len(self.text)


@dataclass(frozen=True)
class Line:
    idx: int
    page: int
    text: str
    segs: tuple[Seg, ...]

    @property
    def flat(self) -> str:
        """The line with column gaps collapsed: for patterns that read across cells."""
        return " ".join(s.text for s in self.segs)


def _any_after(text: str, day_first: bool, day: dt.date) -> bool:
    return any(h.value > day for h in find_dates(text, day_first))


class Doc:
    """Pages split into lines and segments, plus document-wide cues (language, decimal mark, date order, and what
    a browser printed around a saved web page: ``print_cues``, its lines left out)."""

    def __init__(self, pages: list[str]) -> None:
        pages, self.print_cues = strip_pages(pages)
        self.lines: list[Line] = []
        for pno, page in enumerate(pages):
            for raw in unicodedata.normalize("NFC", page or "").splitlines():
                raw = raw.expandtabs(8).rstrip()[:MAX_LINE]
                idx = len(self.lines)
                self.lines.append(Line(idx, pno, raw, tuple(Seg(idx, m.start(), m.group())
                                                            for m in _SEG_RE.finditer(raw))))
        self.text = "\n".join(ln.text for ln in self.lines)
        self.lang = detect_language(self.text)
        self.dmy = guess_day_first(self.text, self.lang)
        printed = self.print_cues.printed
        if printed and _any_after(self.text, self.dmy, printed) and not _any_after(self.text, not self.dmy, printed):
            self.dmy = not self.dmy  # nothing is dated after the day it was printed: the other order is right
        self.decimal = guess_decimal_mark(self.text, self.lang)
        self._dates: dict[int, list[DateHit]] | None = None
        self._amounts: dict[int, list[Amount]] | None = None
        self._furniture: set[str] | None = None
        self._head_tail: tuple[int, list[Line]] | None = None

    def nonempty(self, start: int = 0, stop: int | None = None) -> Iterable[Line]:
        for ln in self.lines[start:stop]:
            if ln.segs:
                yield ln

    def head_tail(self, head: int = 3, max_head: int = 400, max_tail: int = 200) -> list[Line]:
        """Lines of the first pages and the last page (bounded): where letterheads, addresses, numbers and dates
        live. Keeps a 100-page document from costing 100 pages of party and number searching."""
        if self._head_tail is None or self._head_tail[0] != head:
            last = self.lines[-1].page if self.lines else 0
            first = [ln for ln in self.nonempty() if ln.page < head][:max_head]
            tail = [ln for ln in self.nonempty() if ln.page == last and ln.page >= head][-max_tail:]
            self._head_tail = (head, first + tail)
        return self._head_tail[1]

    def dates(self, ln: Line) -> list[DateHit]:
        """Dates on a line, offsets within the line."""
        if self._dates is None:
            self._scan()
        return self._dates.get(ln.idx, [])  # type: ignore[union-attr]

    def amounts(self, ln: Line) -> list[Amount]:
        """Amounts on a line (dates blanked first so '05.06.2018' never reads as money)."""
        if self._amounts is None:
            self._scan()
        return self._amounts.get(ln.idx, [])  # type: ignore[union-attr]

    def _scan(self) -> None:
        """Dates and amounts of the whole text in one pass each (patterns never cross a line break), filed by
        line: one regex scan over the document is much cheaper than thousands of small ones."""
        starts = [0] * len(self.lines)
        pos = 0
        for i, ln in enumerate(self.lines):
            starts[i] = pos
            pos += len(ln.text) + 1
        dates = find_dates(self.text, self.dmy)
        amounts = find_amounts(blank_dates(self.text, dates), self.decimal, space_plain=self.lang == "fr")
        self._dates, self._amounts = {}, {}
        for d in dates:
            i = bisect_right(starts, d.start) - 1
            self._dates.setdefault(i, []).append(DateHit(d.start - starts[i], d.end - starts[i], d.value))
        for a in amounts:
            i = bisect_right(starts, a.start) - 1
            self._amounts.setdefault(i, []).append(
                Amount(a.start - starts[i], a.end - starts[i], a.value, a.decimals, a.currency, a.raw))

    def money_values(self) -> set[Decimal]:
        """Every money-looking value in the document: to verify a derived figure is really printed."""
        return {abs(a.value) for ln in self.nonempty() for a in self.amounts(ln) if a.is_money}
