"""Cross-checks a schema declares next to its fields (``checks`` classmethod): each looks at the extracted data and
says passed or failed, with the fields it involves. A check whose inputs are missing says nothing.

A schema declares its checks like this (the built-in invoice does)::

    @classmethod
    def checks(cls):
        from docpipe.evidence import rules as r
        return [r.adds_up("subtotal", "tax", "total"), r.iso4217("currency")]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

#: Rounding a printed total may carry: a cent, or 0.2% on large sums (unit prices printed rounded).
ABS_TOL = Decimal("0.011")
REL_TOL = Decimal("0.002")

ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE
CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL
LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT
XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL""".split())


@dataclass(frozen=True)
class CheckResult:
    check: str  # e.g. "subtotal + tax = total"
    passed: bool
    detail: str
    fields: tuple[str, ...]  # field paths involved: "total", "line_items[2].amount" (1-based, as line_no)


Check = Callable[[dict[str, Any]], list[CheckResult]]


def num(v: Any) -> Decimal | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return Decimal(str(v))
    except (InvalidOperation, ValueError):
        return None


def close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= max(ABS_TOL, abs(b) * REL_TOL)


def _date(v: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(v)[:10]) if v else None
    except ValueError:
        return None


def adds_up(*parts_and_total: str) -> Check:
    """parts sum to the last field: ``adds_up("subtotal", "tax", "total")``."""
    *parts, total = parts_and_total
    name = " + ".join(parts) + f" = {total}"

    def run(data: dict[str, Any]) -> list[CheckResult]:
        vals = [num(data.get(p)) for p in parts]
        t = num(data.get(total))
        if t is None or any(v is None for v in vals):
            return []
        s = sum(vals, Decimal(0))
        return [CheckResult(name, close(s, t), f"{' + '.join(str(v) for v in vals)} = {s}, {total} is {t}",
                            (*parts, total))]
    return run


def items_sum_to(items: str, amount: str, total: str) -> Check:
    """The items' amounts add up to a total field (within rounding)."""
    name = f"sum({items}.{amount}) = {total}"

    def run(data: dict[str, Any]) -> list[CheckResult]:
        rows = data.get(items) or []
        vals = [num(r.get(amount)) for r in rows if isinstance(r, dict)]
        t = num(data.get(total))
        if t is None or not vals or any(v is None for v in vals):
            return []
        s = sum(vals, Decimal(0))
        paths = tuple(f"{items}[{i}].{amount}" for i in range(1, len(vals) + 1))
        return [CheckResult(name, close(s, t), f"{len(vals)} lines sum to {s}, {total} is {t}", (*paths, total))]
    return run


def line_product(items: str, qty: str, price: str, amount: str) -> Check:
    """On each item: quantity x unit price = amount (within rounding)."""
    def run(data: dict[str, Any]) -> list[CheckResult]:
        out = []
        for i, r in enumerate(data.get(items) or [], 1):
            if not isinstance(r, dict):
                continue
            q, p, a = num(r.get(qty)), num(r.get(price)), num(r.get(amount))
            if q is None or p is None or a is None:
                continue
            ok = close(q * p, a) or close(abs(q * p), abs(a))
            out.append(CheckResult(f"{items}.{qty} x {price} = {amount}", ok,
                                   f"line {i}: {q} x {p} = {q * p}, amount is {a}",
                                   tuple(f"{items}[{i}].{f}" for f in (qty, price, amount))))
        return out
    return run


def not_before(later: str, earlier: str) -> Check:
    """One date is not before another: ``not_before("due_date", "invoice_date")``."""
    def run(data: dict[str, Any]) -> list[CheckResult]:
        a, b = _date(data.get(later)), _date(data.get(earlier))
        if a is None or b is None:
            return []
        return [CheckResult(f"{later} >= {earlier}", a >= b, f"{later} {a}, {earlier} {b}", (later, earlier))]
    return run


def years_before(day: dt.date, years: int) -> dt.date:
    """The same day ``years`` earlier; 29 February becomes the 28th in a year without it."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def plausible_date(field: str, years_back: int = 30, days_ahead: int = 400) -> Check:
    """A date within the last ``years_back`` years and not far in the future."""
    def run(data: dict[str, Any]) -> list[CheckResult]:
        d = _date(data.get(field))
        if d is None:
            return []
        today = dt.date.today()
        ok = years_before(today, years_back) <= d <= today + dt.timedelta(days=days_ahead)
        return [CheckResult(f"{field} plausible", ok, f"{d} (today {today})", (field,))]
    return run


def iso4217(field: str) -> Check:
    def run(data: dict[str, Any]) -> list[CheckResult]:
        v = data.get(field)
        if not v:
            return []
        return [CheckResult(f"{field} is ISO 4217", str(v) in ISO_4217, f"{v!r}", (field,))]
    return run


def iban(field: str) -> Check:
    """An IBAN passes its mod-97 check digits."""
    def run(data: dict[str, Any]) -> list[CheckResult]:
        from stdnum import iban as _iban

        v = data.get(field)
        if not v:
            return []
        return [CheckResult(f"{field} IBAN checksum", _iban.is_valid(str(v)), str(v), (field,))]
    return run


def vat_id(field: str) -> Check:
    """A VAT id that names an EU country (DE123..., FR.., ATU..) passes that country's check digits; other tax
    numbers (US EIN, national tax numbers) are not checked."""
    def run(data: dict[str, Any]) -> list[CheckResult]:
        from stdnum.eu import vat as _vat

        v = data.get(field)
        if not v:
            return []
        compact = "".join(ch for ch in str(v).upper() if ch.isalnum())
        if compact[:2].lower() not in _vat.MEMBER_STATES | {"el", "xi"}:
            return []
        return [CheckResult(f"{field} VAT checksum", _vat.is_valid(compact), str(v), (field,))]
    return run


def run_checks(model: Any, data: dict[str, Any] | None) -> list[CheckResult]:
    """The schema's declared checks on one document's data; a check that crashes is recorded as failed."""
    declared = getattr(model, "checks", None)
    if data is None or not callable(declared):
        return []
    out: list[CheckResult] = []
    for check in declared():
        try:
            out.extend(check(data))
        except Exception as e:  # a user's check must not lose a document
            out.append(CheckResult(getattr(check, "__name__", "check"), False, f"check crashed: {e}", ()))
    return out
