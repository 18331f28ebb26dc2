"""The offline engine's second look: where a failed sum check points at one amount and the page prints the
amount that makes every check pass, take it (and say so in the evidence). Model engines are left as they are:
their answer is what is being judged."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .locate import find
from .rules import CheckResult, num, run_checks
from .words import Line

#: Amount fields the correction may change, tried in this order.
AMOUNTS = ("tax", "subtotal", "total")


def correct_amounts(data: dict[str, Any], model: Any, checks: list[CheckResult],
                    lines: list[Line]) -> tuple[dict[str, Any], list[str]]:
    """(data with at most one amount replaced, notes). Only when a check failed, the replacement is printed on the
    page, and every check that ran before still runs and now passes."""
    failed = [c for c in checks if not c.passed]
    if not failed:
        return data, []
    suspects = [f for f in AMOUNTS if any(f in c.fields for c in failed) and f in data]
    for field in suspects:
        for value in _solutions(field, data):
            if value is None or value <= 0 or num(data.get(field)) == value:
                continue
            if not find(str(value), "number", lines):
                continue
            trial = dict(data)
            trial[field] = str(value.quantize(Decimal("0.01")))
            after = run_checks(model, trial)
            if len(after) >= len(checks) and all(c.passed for c in after):
                return trial, [f"{field}: {data.get(field)} -> {trial[field]}, printed on the page and makes "
                               f"every check pass"]
    return data, []


def _solutions(field: str, data: dict[str, Any]) -> list[Decimal | None]:
    """Values of ``field`` that would satisfy subtotal + tax = total or the line sum, from the other fields."""
    sub, tax, tot = num(data.get("subtotal")), num(data.get("tax")), num(data.get("total"))
    items = [num(r.get("amount")) for r in data.get("line_items") or [] if isinstance(r, dict)]
    line_sum = sum(items, Decimal(0)) if items and None not in items else None
    out: list[Decimal | None] = []
    if field == "tax" and sub is not None and tot is not None:
        out.append(tot - sub)
    if field == "subtotal":
        if tot is not None and tax is not None:
            out.append(tot - tax)
        out.append(line_sum)
    if field == "total" and sub is not None and tax is not None:
        out.append(sub + tax)
    return out
