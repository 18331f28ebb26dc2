"""What a till receipt's customer paid: cash handed over minus the change given back, when a total says so.

A receipt prints many totals (before tax, the tax, quantities, rounding, points); the tender lines settle which
one was paid: CASH 50.00 and CHANGE 7.30 mean 42.70, and the line above that prints 42.70 is the total.
"""

from __future__ import annotations

import re
from decimal import Decimal

from .layout import Doc, Line
from .text import fold
from .totals import Cand

_CASH_RE = re.compile(r"^\W*(?:cash(?:\s+tendered)?|tendered|tender|amount\s+tendered|paid(?:\s+amount)?|"
                      r"payment|bar|gegeben|bar\s+eur|especes|espece|recu|efectivo|entregado|contanti|contante|"
                      r"contant(?:\s+betaald)?|cash\s+received|received|tunai|お預か?り|現金|现金)\b")
_CHANGE_RE = re.compile(r"^\W*(?:change(?:\s+due|\s+cash)?|ruckgeld|zuruck|rendu|monnaie(?:\s+rendue)?|cambio|"
                        r"devolucion|vuelto|resto|wisselgeld|terug|baki|お釣り?|おつり|釣銭|找零)\b")


def _last_money(doc: Doc, ln: Line) -> Decimal | None:
    money = [a for a in doc.amounts(ln) if a.is_money]
    return abs(money[-1].value) if money else None  # tills print cash handed over as "-20.00" too


def paid_amount(doc: Doc) -> Cand | None:
    """The total that cash minus change confirms, on the line that prints it above the tender lines."""
    lines = list(doc.nonempty())
    for i, ln in enumerate(lines):
        if not _CASH_RE.match(fold(ln.flat)):
            continue
        cash = _last_money(doc, ln)
        if cash is None:
            continue
        for nxt in lines[i + 1:i + 4]:
            if _CHANGE_RE.match(fold(nxt.flat)):
                change = _last_money(doc, nxt)
                if change is None or change > cash:
                    break
                paid = cash - change
                for prev in reversed(lines[:i]):
                    if any(a.is_money and a.value == paid for a in doc.amounts(prev)):
                        cur = next((a.currency for a in doc.amounts(prev) if a.value == paid), None)
                        return Cand(paid, 10, prev.idx, cur)
                break
    return None
