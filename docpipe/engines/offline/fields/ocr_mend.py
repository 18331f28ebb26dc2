"""Letters a scan's OCR gets wrong inside names: a stray accent in a document that has none ("HARDWÀRE"), a one or
zero read for a letter inside a word of capitals ("URBAN 1DEA", "C0MPANY").

Only name fields are mended: addresses, numbers, codes and IDs keep what the page shows.
"""

from __future__ import annotations

import re
import unicodedata

from .layout import Doc

#: Fields that hold names, whichever schema they come from (addresses keep what the page shows: places abroad
#: their accents, "Montréal", postcodes and unit numbers their digits).
NAME_FIELDS = frozenset({"vendor_name", "customer_name", "merchant_name"})
#: Languages whose words carry accents: a stray accent cannot be told from a real one there.
_ACCENTED_LANGS = frozenset({"de", "fr", "es", "it", "nl"})
#: One accented letter in a whole English text is OCR noise; two may be a name's spelling ("Lumière", "Zürich").
MAX_STRAY_ACCENTS = 1
_ACCENTED_RE = re.compile(r"[À-ÖØ-öø-ÿ]")
# a one or zero before two capitals inside a word of capitals: "1DEA", "C0MPANY"; not ordinals ("1ST"), codes ("A1",
# "B10"), a number after a place's letters ("USJ1") or a postcode's district ("EC1N")
_DIGIT_IN_CAPS_RE = re.compile(r"\b(?=[A-Z01]{4,}\b)(?![01](?:ST|ND|RD|TH)\b)[A-Z]*[01][A-Z]{2,}\b")


def _strip_accent(c: str) -> str:
    return unicodedata.normalize("NFKD", c)[0]


def _unaccented(doc: Doc) -> bool:
    """A document in no accented language whose text has only a few accented letters: those are OCR noise."""
    return doc.lang not in _ACCENTED_LANGS and len(_ACCENTED_RE.findall(doc.text)) <= MAX_STRAY_ACCENTS


def mend_name(value: str, unaccented: bool) -> str:
    """A name with accents inside words dropped (``unaccented`` documents only; a final 'é' as in 'Café' stays)
    and ones and zeros inside words of capitals read as I and O."""
    if unaccented:
        value = re.sub(r"(?<=[^\W\d_])[À-ÖØ-öø-ÿ](?=[^\W\d_])", lambda m: _strip_accent(m.group()), value)
    return _DIGIT_IN_CAPS_RE.sub(lambda m: m.group().replace("1", "I").replace("0", "O"), value)


def mend_names(result: dict, doc: Doc) -> dict:
    """The result with its name fields mended (see ``mend_name``)."""
    unaccented = _unaccented(doc)
    for key in NAME_FIELDS & result.keys():
        if isinstance(result[key], str):
            result[key] = mend_name(result[key], unaccented)
    return result
