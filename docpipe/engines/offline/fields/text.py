"""Character-level text helpers: accent folding that keeps offsets, blanking spans out of a text."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


class _FoldTable(dict[int, str]):
    """str.translate table filled on first sight of a character: lowercase base letter, one char per char."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        base = unicodedata.normalize("NFKD", ch)[:1].lower() or ch
        value = "s" if ch == "ß" else base if len(base) == 1 else ch
        self[code] = value
        return value


_FOLD_TABLE = _FoldTable()


def fold(s: str) -> str:
    """Lowercase without diacritics, same length as ``s``: regexes on it give offsets valid in ``s``.

    Labels are matched folded so that OCR dropping accents ("Fallig", "Echeance") still matches.
    """
    return s.translate(_FOLD_TABLE)


def blank_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with the given (sorted, disjoint) spans replaced by spaces: offsets stay valid."""
    out, pos = [], 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(" " * (end - start))
        pos = end
    out.append(text[pos:])
    return "".join(out)
