"""User schemas: 'Label: value' cells whose label matches a field's name or description, coerced by its type."""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from collections.abc import Callable
from decimal import Decimal
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from .concepts import concept_map, map_items
from .custom import field_label_patterns, name_words, shape_value, table_rows
from .invoice import extract_invoice
from .layout import Doc
from .lookup import cell_below, leading_date
from .numbers import find_amounts
from .text import fold
from .totals import amount_candidates, pick_totals


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
    """For user schemas: a labelled value (the field's name, aliases or description, in six languages), else a
    value of the field's shape (e-mail, IBAN, phone, URL; a total by the document's arithmetic), coerced by the
    field's type; list-of-object fields from a table whose header names the item's fields."""
    builtin = _from_builtin(doc, model)
    out: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        kind = _scalar_kind(f.annotation)
        if name in builtin and (kind is None or kind[0] in ("decimal", "float", "int")):
            out[name] = builtin[name]  # amounts and items: the document's arithmetic beats a label
            continue
        item = _list_item_model(f.annotation)
        if item is not None:
            rows = table_rows(doc, item, lambda t, ann: _coerce_as(doc, ann, t))
            if rows:
                out[name] = rows
            continue
        if kind is None:
            continue
        parse = (lambda t, k=kind: _coerce(doc, k[0], k[1], t))
        value = next((v for lab in field_label_patterns(name, f) if (v := _generic_value(doc, lab, parse)) is not None),
                     None)
        if value is None:
            value = _fuzzy_value(doc, " ".join(name_words(name)), parse)
        if value is None and kind[0] == "str":
            value = shape_value(doc, name)
        if value is None and kind[0] in ("decimal", "float") and set(name_words(name)) & {"total", "gross", "due"}:
            total = pick_totals(amount_candidates(doc), doc.money_values()).get("total")
            value = None if total is None else (str(total.value) if kind[0] == "decimal" else float(total.value))
        if value is None:
            value = builtin.get(name)  # names, numbers, dates: a label naming the field first, then the rules
        if value is not None:
            out[name] = value
    return out


def _from_builtin(doc: Doc, model: type[BaseModel]) -> dict[str, Any]:
    """The fields that ask for what the invoice rules find (vendor, number, dates, totals, line items)."""
    cmap = concept_map(model)
    if not cmap:
        return {}
    found = extract_invoice(doc)
    out: dict[str, Any] = {}
    for name, builtin in cmap.items():
        if builtin == "line_items":
            item = _list_item_model(model.model_fields[name].annotation)
            rows = map_items(found.get("line_items") or [], item) if item is not None else []
            if rows:
                out[name] = rows
        elif found.get(builtin) not in (None, "", []):
            out[name] = found[builtin]
    return out


def _list_item_model(ann: Any) -> type[BaseModel] | None:
    """The item model of a list[Model] field (optional or not), else None."""
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return _list_item_model(args[0]) if len(args) == 1 else None
    if origin is list:
        (arg,) = typing.get_args(ann) or (None,)
        return arg if isinstance(arg, type) and issubclass(arg, BaseModel) else None
    return None


def _coerce_as(doc: Doc, ann: Any, text: str) -> Any:
    kind = _scalar_kind(ann)
    return _coerce(doc, kind[0], kind[1], text) if kind else None


@lru_cache(maxsize=4096)
def _label_rx(label: str) -> re.Pattern[str]:
    return re.compile(rf"^[^\w#°]*(?:{label})(?<![^\w#°])(?![^\W\d_])(?:[^:=\n]{{0,25}}?\s*[:=]|\s*$)\s*(?P<value>.*)$")


def _generic_value(doc: Doc, label: str, parse: Callable[[str], Any]) -> Any:
    """First 'Label[ a few words]: value' cell (or a label cell with its value in the next cell or below)."""
    rx = _label_rx(label)
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


FUZZY = 0.85  # a 'Label:' cell this similar to a field's name (folded) names it: OCR and spelling slips


def _fuzzy_value(doc: Doc, name: str, parse: Callable[[str], Any]) -> Any:
    """The value after a 'Label:' whose label is nearly the field's name ('Invoce No:', 'Purchse order')."""
    want = name.replace(" ", "")
    if len(want) < 5:
        return None  # short names are too close to too many words
    for ln in doc.nonempty():
        for seg in ln.segs:
            label, sep, rest = seg.folded.partition(":")
            label = re.sub(r"[^a-z0-9]+", "", label)
            if not sep or not label or abs(len(label) - len(want)) > 3:
                continue
            if SequenceMatcher(None, label, want, autojunk=False).ratio() >= FUZZY:
                after = seg.text[len(seg.folded) - len(rest):] if rest.strip() else \
                    next((s.text for s in ln.segs if s.col > seg.col), "")
                value = parse(after) if after.strip() else None
                if value is not None:
                    return value
    return None
