"""Per-field accuracy of stored extractions against a truth.jsonl (the devset format).

Matching rules (the ones used elsewhere to judge docpipe): numbers within 0.01, ISO dates exactly, names after
case-folding and dropping punctuation and spaces with containment either way accepted, addresses folded the same
way and at least 85% similar (difflib ratio), other strings folded the same way but compared whole. Every field that the
truth names and the schema has is scored, by the field's type in the schema; a document with no stored extraction
scores zero on each of its fields.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import types
import typing
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .discover import hash_file
from .errors import DocpipeError
from .evidence.rules import num as _num
from .schemas import resolve
from .store import Store

NAME_FIELDS = {"vendor_name", "customer_name", "merchant_name", "description"}
_ITEM_KEYS = {"description", "quantity", "unit_price", "amount"}
ADDRESS_SIMILAR = 0.85  # folded addresses this similar count: a dropped country or one misread letter is not a miss


@dataclass
class FieldScore:
    correct: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class EvalResult:
    fields: dict[str, FieldScore] = field(default_factory=OrderedDict)
    documents: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unscored: set[str] = field(default_factory=set)  # truth fields the schema does not have
    mismatches: list[tuple[str, str, Any, Any]] = field(default_factory=list)  # file, field, truth, predicted

    @property
    def correct(self) -> int:
        return sum(s.correct for s in self.fields.values())

    @property
    def total(self) -> int:
        return sum(s.total for s in self.fields.values())

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def fold(s: Any) -> str:
    """Case-, accent-width- and punctuation-insensitive form of a string."""
    s = unicodedata.normalize("NFKC", str(s)).casefold()
    return re.sub(r"[\W_]+", "", s)



def field_kind(name: str, annotation: Any = None) -> str:
    """How a field is compared: 'number', 'date', 'name', 'address', 'list', 'object' or 'text'."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
        origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return field_kind(name, typing.get_args(annotation)[0])
    if origin in (list, tuple, set):
        return "list"
    if annotation in (int, float, Decimal):
        return "number"
    if annotation in (dt.date, dt.datetime):
        return "date"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    if name in NAME_FIELDS or name.endswith("_name"):
        return "name"
    if name.endswith("address"):
        return "address"
    return "text"


def match(name: str, truth: Any, pred: Any, kind: str | None = None) -> bool:
    """Whether a predicted value counts as correct for one truth value."""
    if pred is None:
        return truth is None
    if isinstance(truth, bool):
        return truth == pred
    if isinstance(truth, (int, float)) or kind == "number":
        t, p = _num(truth), _num(pred)
        return t is not None and p is not None and abs(p - t) <= Decimal("0.01")
    if isinstance(truth, list):
        if not isinstance(pred, list) or len(pred) != len(truth):
            return False
        return all(_match_item(t, p) for t, p in zip(truth, pred))
    if isinstance(truth, dict):
        return isinstance(pred, dict) and _match_item(truth, pred)
    if kind == "date":
        return str(truth)[:10] == str(pred)[:10]
    t, p = fold(truth), fold(pred)
    kind = kind or field_kind(name)
    if kind == "name":
        return bool(t) and bool(p) and (t in p or p in t)
    if kind == "address":
        return bool(t) and bool(p) and SequenceMatcher(None, t, p, autojunk=False).ratio() >= ADDRESS_SIMILAR
    return t == p


def _match_item(truth: Any, pred: Any) -> bool:
    if isinstance(truth, dict):
        if not isinstance(pred, dict):
            return False
        # the item keys the schemas share, plus any the extraction has: a truth key no schema has is not scored
        return all(match(k, v, pred.get(k)) for k, v in truth.items() if k in _ITEM_KEYS or k in pred)
    return match("", truth, pred)


def load_truth(path: Path) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                raise DocpipeError(f"{path}:{i}: not JSON: {e}") from e
    return rows


def score_document(result: EvalResult, file: str, truth_fields: dict[str, Any], data: dict[str, Any],
                   kinds: dict[str, str]) -> None:
    """Add one document's fields to RESULT: every truth field the schema has, compared by its kind."""
    for name, tv in truth_fields.items():
        if name not in kinds:
            result.unscored.add(name)
            continue
        s = result.fields.setdefault(name, FieldScore())
        s.total += 1
        pv = data.get(name)
        if match(name, tv, pv, kinds[name]):
            s.correct += 1
        else:
            result.mismatches.append((file, name, tv, pv))


def stored_data(store: Store, path: Path, schema_name: str, engine: str) -> dict[str, Any] | None:
    """The stored extraction of one file (ok or invalid), or None when it was not ingested."""
    if not path.exists():
        return None
    sha, _, _ = hash_file(path)
    row = store.con.execute(
        "SELECT data FROM extractions WHERE doc_id = ? AND schema_name = ? AND engine = ? "
        "AND status IN ('ok', 'invalid')", [sha, schema_name, engine]).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def schema_kinds(schema_name: str) -> dict[str, str]:
    """Field name -> comparison kind, for the fields of a schema."""
    model = resolve(schema_name).model
    return {n: field_kind(n, f.annotation) for n, f in model.model_fields.items()}


def evaluate(db: Path, folder: Path, truth_path: Path, schema_name: str, engine: str) -> EvalResult:
    """Score the stored extractions of FOLDER's files against truth_path."""
    kinds = schema_kinds(schema_name)
    result = EvalResult()
    with Store.open(db, read_only=True) as store:
        for entry in load_truth(truth_path):
            data = stored_data(store, folder / entry["file"], schema_name, engine)
            if data is None:
                result.missing.append(entry["file"])
                data = {}
            result.documents.append(entry["file"])
            score_document(result, entry["file"], entry.get("fields", {}), data, kinds)
    return result
