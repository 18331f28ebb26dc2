"""Which field an amount's label names: labels normalised, then classified by the weighted label tables."""

from __future__ import annotations

import re
from functools import lru_cache

from .labels import AMOUNT_LABELS, RECEIPT_LABELS
from .numbers import CURRENCY_PATTERN
from .text import fold

_LEAD_FILLER = frozenset("zzgl zuzugl zuzuglich plus inkl incl including inklusive davon thereof enthaltene enthalten "
                         "enth dont abzgl the la le les der die das".split())
_TRAIL_FILLER = frozenset("in von of on sur auf a de du zu at x".split())


_PAREN_RE = re.compile(r"\([^)]*\)?")
_PERCENT_RE = re.compile(r"\d+(?:[.,]\d+)?\s*%")
_CUR_ANY_RE = re.compile(CURRENCY_PATTERN, re.I)
_NON_WORD_RE = re.compile(r"[^\w ]+|_")  # letters of any script stay: "合計", "小計"
# "GST included in total", "Total includes VAT": the tax is the amount, the total only its context
_INCLUDED_RE = re.compile(r"\b(?:is\s+)?included\s+in\s+(?:the\s+)?(?:total|price|amount)\b|^total\s+includes?\b")


@lru_cache(maxsize=16384)
def norm_label(piece: str) -> str:
    s = fold(piece)
    s = _PAREN_RE.sub(" ", s)
    s = _PERCENT_RE.sub(" ", s)
    s = _CUR_ANY_RE.sub(" ", s)
    s = _INCLUDED_RE.sub(" ", _NON_WORD_RE.sub(" ", s))
    words = s.split()
    while words and (words[0] in _LEAD_FILLER or words[0].isdigit()):
        words.pop(0)
    while words and (words[-1] in _TRAIL_FILLER or words[-1].isdigit()):
        words.pop()
    return " ".join(words)


def _compile_table(table: dict[str, tuple[tuple[str, int], ...]]) -> list[tuple[str, re.Pattern[str], int]]:
    return [(fname, re.compile(rx), weight) for fname, entries in table.items() for rx, weight in entries]


_AMOUNT_TABLE = _compile_table(AMOUNT_LABELS)


def _classify(label: str, table: list[tuple[str, re.Pattern[str], int]], prefix_bonus: int) -> tuple[str, int] | None:
    """(field, score) for a normalised label: exact > last words > first words; one field per label."""
    if not label:
        return None
    words = label.split()
    best: tuple[str, int] | None = None
    variants = ((3, [label]), (2, [" ".join(words[-k:]) for k in range(1, min(4, len(words)))]),
                (prefix_bonus, [" ".join(words[:k]) for k in range(1, min(4, len(words)))]))
    for fname, rx, weight in table:
        for bonus, texts in variants:
            if any(rx.fullmatch(v) for v in texts):
                if best is None or weight + bonus > best[1]:
                    best = (fname, weight + bonus)
                break
    return best


@lru_cache(maxsize=8192)
def classify_amount_label(label: str) -> tuple[str, int] | None:
    return _classify(label, _AMOUNT_TABLE, 0)


_RECEIPT_TABLE = _compile_table(RECEIPT_LABELS)


@lru_cache(maxsize=4096)
def classify_receipt_label(label: str) -> tuple[str, int] | None:
    return _classify(label, _RECEIPT_TABLE, 1)
