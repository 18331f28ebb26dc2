"""User schemas: 'Label: value' cells whose label matches a field's name or description, coerced by its type."""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from decimal import Decimal
from typing import Any, Callable

from pydantic import BaseModel

from .layout import Doc
from .lookup import cell_below, leading_date
from .numbers import find_amounts
from .text import fold


def _scalar_kind(ann: Any) -> tuple[str, tuple[Any, ...]] | None:
    """'date' / 'decimal' / 'float' / 'int' / 'bool' / 'str' / 'literal' for a field's type; None for lists/models."""
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return _scalar_kind(args[0]) if len(args) == 1 else None
    if origin is typing.Literal:
        return "literal", typing.get_args(ann)
    if origin is typing.Annotated:
        return _scalar_kind(typing.get_args(ann)[0])
    table = {dt.date: "date", dt.datetime: "date", Decimal: "decimal", float: "float", int: "int", bool: "bool",
             str: "str"}
    kind = table.get(ann)
    return (kind, ()) if kind else None


_STOP_LEAD = frozenset("the a an der die das le la les el los il".split())


def _field_labels(name: str, description: str | None) -> list[str]:
    """Label phrasings for a field: its name's words, and the first words of its description."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_").split("_")
    labels = [" ".join(w for w in words if w)]
    if description:
        dwords = re.split(r"[^\w']+", fold(description.split(".")[0].split(",")[0]))
        dwords = [w for w in dwords if w]
        while dwords and dwords[0] in _STOP_LEAD:
            dwords.pop(0)
        for k in (3, 2):
            if len(dwords) >= k:
                labels.append(" ".join(dwords[:k]).replace("'s", ""))
    out: list[str] = []
    for lab in labels:
        if lab and lab not in out:
            out.append(lab)
    return out


def _coerce(doc: Doc, kind: str, args: tuple[Any, ...], text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    if kind == "date":
        d = leading_date(doc)(text)
        return d.isoformat() if d else None
    if kind in ("decimal", "float"):
        found = find_amounts(text, doc.decimal)
        if not found or found[0].start > 4:
            return None
        return str(found[0].value) if kind == "decimal" else float(found[0].value)
    if kind == "int":
        m = re.match(r"[#:\s]*([-+]?\d[\d.,' ]*)", text)
        if not m:
            return None
        digits = re.sub(r"[^\d-]", "", m.group(1))
        return int(digits) if re.fullmatch(r"-?\d+", digits) else None
    if kind == "bool":
        f = fold(text).split()[0].strip(".,;")
        if f in ("yes", "true", "ja", "oui", "y", "x", "1", "si"):
            return True
        if f in ("no", "false", "nein", "non", "n", "0"):
            return False
        return None
    if kind == "literal":
        f = fold(text)
        for a in args:
            if isinstance(a, str) and fold(a) in f.split() + [f]:
                return a
        return None
    return text[:500]


def extract_generic(doc: Doc, model: type[BaseModel]) -> dict[str, Any]:
    """For user schemas: 'Label: value' lines whose label matches the field, coerced by the field's type."""
    out: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        kind = _scalar_kind(f.annotation)
        if kind is None:
            continue
        for lab in _field_labels(name, f.description):
            value = _generic_value(doc, lab, lambda t, k=kind: _coerce(doc, k[0], k[1], t))
            if value is not None:
                out[name] = value
                break
    return out


def _generic_value(doc: Doc, label: str, parse: Callable[[str], Any]) -> Any:
    """First 'Label[ a few words]: value' cell (or a label cell with its value in the next cell or below)."""
    words = r"\s*[-_ ]?\s*".join(re.escape(w) for w in label.split())
    rx = re.compile(rf"^[^\w]*{words}(?![^\W\d_])(?:[^:=\n]{{0,25}}?\s*[:=]|\s*$)\s*(?P<value>.*)$")
    for ln in doc.nonempty():
        for seg in ln.segs:
            m = rx.match(seg.folded)
            if not m:
                continue
            candidates = [seg.text[m.start("value"):]] if m.group("value").strip() else []
            candidates += [s.text for s in ln.segs if s.col > seg.col][:1]
            below = next(iter(doc.nonempty(ln.idx + 1)), None)
            cell = cell_below(below, seg.col, seg.end) if below is not None and not candidates else None
            candidates += [cell.text] if cell else []
            for text in candidates:
                value = parse(text)
                if value is not None:
                    return value
    return None
