"""Where a field's label is printed, and how near a candidate value sits to it (same row to the right, or below).

Labels come from the offline engine's tables where it has them (so both agree on what 'Total' looks like in
German or French), else from the field's own name ('vendor_tax_id' -> 'vendor tax id').
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..engines.offline.fields import labels as L
from ..engines.offline.fields.text import fold
from .words import Line

Box = tuple[float, float, float, float]

_TAX_ID = (r"vat\s*(?:reg\w*\s*)?(?:no|number|id|#)?|ust\.?\s*-?\s*id\w*|tax\s*(?:id|no|number)|steuer\s*-?\s*nr|"
           r"steuernummer|n[°o]\s*tva|tva\s*intra\w*|siret|gst\s*(?:reg\w*\s*)?(?:no|id)?|uid|btw|nif|cif")
_ADDRESS = r"address|adresse|anschrift"


def _field_rx(name: str) -> list[str]:
    amount = {k: [rx for rx, _ in v] for k, v in L.AMOUNT_LABELS.items()}
    receipt = {k: [rx for rx, _ in v] for k, v in L.RECEIPT_LABELS.items()}
    table: dict[str, list[str]] = {
        "invoice_number": [lab.rx for lab in L.INVOICE_NUMBER_LABELS],
        "invoice_date": [lab.rx for lab in L.INVOICE_DATE_LABELS],
        "date": [lab.rx for lab in L.INVOICE_DATE_LABELS],
        "due_date": [lab.rx for lab in L.DUE_DATE_LABELS],
        "vendor_name": list(L.SELLER_LABELS), "merchant_name": list(L.SELLER_LABELS),
        "customer_name": list(L.BUYER_LABELS),
        "vendor_address": list(L.SELLER_LABELS) + [_ADDRESS], "merchant_address": [_ADDRESS],
        "customer_address": list(L.BUYER_LABELS) + [_ADDRESS],
        "vendor_tax_id": [_TAX_ID], "currency": [lab.rx for lab in L.CURRENCY_LABELS],
        "total": amount.get("total", []) + receipt.get("total", []),
        "subtotal": amount.get("subtotal", []) + receipt.get("subtotal", []),
        "tax": amount.get("tax", []) + receipt.get("tax", []),
    }
    return table.get(name) or [r"\s*".join(re.escape(w) for w in name.split("_") if w)]


@lru_cache(maxsize=256)
def label_re(name: str) -> re.Pattern[str]:
    """One folded regex for a field's labels, whole words only."""
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(f"(?:{rx})" for rx in _field_rx(name)) + r")(?![a-z0-9])")


def label_boxes(name: str, lines: list[Line]) -> list[tuple[int, Box]]:
    """(page, box) of every printed label of a field."""
    rx = label_re(name)
    out = []
    for line in lines:
        for m in rx.finditer(fold(line.text)):
            if m.end() > m.start():
                out.append((line.page, line.span_box(m.start(), m.end())))
    return out


def nearness(page: int, box: Box, labels: list[tuple[int, Box]]) -> float:
    """1 for a label just left of the value on its row, less further away or above it, 0 for none nearby."""
    best = 0.0
    h = max(box[3] - box[1], 4.0)
    for lp, lb in labels:
        if lp != page:
            continue
        overlap = min(box[3], lb[3]) - max(box[1], lb[1])
        if overlap > 0.4 * min(h, lb[3] - lb[1]) and lb[0] <= box[0] + 1:  # same row, label first
            gap = max(0.0, box[0] - lb[2])
            best = max(best, 1.0 - min(gap, 400.0) / 800.0)
        elif lb[3] <= box[1] + 1 and box[1] - lb[3] < 3.5 * h:  # label above
            if min(box[2], lb[2]) - max(box[0], lb[0]) > -20:  # the same column
                best = max(best, 0.8 - 0.05 * (box[1] - lb[3]) / h)
    return round(best, 3)
