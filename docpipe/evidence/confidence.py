"""Confidence per field in 0..1 from what is known about it: where it was read, how well it matched, whether its
label sits next to it, the OCR score, how many places print it, and the checks it passed or failed.

The weights were set by hand and checked on the devset with `docpipe eval` (accuracy by confidence band, see
docs/review.md): a band's accuracy should be at least its lower bound.
"""

from __future__ import annotations

from .ground import FieldEvidence
from .rules import CheckResult


def score(ev: FieldEvidence, checks: list[CheckResult], xml: bool) -> float:
    mine = [c for c in checks if ev.field in c.fields]
    failed = sum(not c.passed for c in mine)
    passed = sum(c.passed for c in mine)
    if xml:
        s = 0.97  # the document's own machine-readable copy
    elif ev.found:
        s = 0.62
        if ev.source == "ocr" and ev.ocr_conf is not None:
            s -= 0.6 * max(0.0, 0.95 - ev.ocr_conf)
        s += 0.25 * ev.label
        s -= 0.5 * (1.0 - ev.match)
        if ev.places >= 2:
            s += 0.05
        if ev.label_printed and ev.label == 0.0 and "[" not in ev.field:
            s -= 0.12  # its label is printed, but not next to this value
    else:
        s = 0.2  # found nowhere on the page
    s -= 0.3 * failed
    s += 0.06 * min(passed, 2)
    return round(min(0.99, max(0.01, s)), 3)


def apply(evidence: list[FieldEvidence], checks: list[CheckResult], xml: bool) -> None:
    for ev in evidence:
        ev.confidence = score(ev, checks, xml)
