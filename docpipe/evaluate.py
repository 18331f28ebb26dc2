"""Per-field accuracy of stored extractions against a truth.jsonl (the devset format).

Matching rules (the ones used elsewhere to judge docpipe): numbers within 0.01, ISO dates exactly, names after
case-folding and dropping punctuation and spaces with containment either way accepted, other strings folded the
same way but compared whole. Only fields present in the truth and known to the schema are scored; a document with
no stored extraction scores zero on each of its fields.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .discover import hash_file
from .errors import DocpipeError
from .evidence.rules import num as _num
from .schemas import resolve
from .store import Store

NAME_FIELDS = {"vendor_name", "customer_name", "merchant_name", "description"}


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



def match(name: str, truth: Any, pred: Any) -> bool:
    """Whether a predicted value counts as correct for one truth value."""
    if pred is None:
        return truth is None
    if isinstance(truth, bool):
        return truth == pred
    if isinstance(truth, (int, float)):
        p = _num(pred)
        return p is not None and abs(p - Decimal(str(truth))) <= Decimal("0.01")
    if isinstance(truth, list):
        if not isinstance(pred, list) or len(pred) != len(truth):
            return False
        return all(_match_item(t, p) for t, p in zip(truth, pred))
    if isinstance(truth, dict):
        return isinstance(pred, dict) and _match_item(truth, pred)
    t, p = fold(truth), fold(pred)
    if name in NAME_FIELDS:
        return bool(t) and bool(p) and (t in p or p in t)
    return t == p


def _match_item(truth: Any, pred: Any) -> bool:
    if isinstance(truth, dict):
        if not isinstance(pred, dict):
            return False
        return all(match(k, v, pred.get(k)) for k, v in truth.items() if k in ("description", "quantity",
                                                                                   "unit_price", "amount"))
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


def evaluate(db: Path, folder: Path, truth_path: Path, schema_name: str, engine: str) -> EvalResult:
    """Score the stored extractions of FOLDER's files against truth_path."""
    known = set(resolve(schema_name).model.model_fields)
    result = EvalResult()
    with Store.open(db, read_only=True) as store:
        for entry in load_truth(truth_path):
            f = folder / entry["file"]
            data = None
            if f.exists():
                sha, _, _ = hash_file(f)
                row = store.con.execute(
                    "SELECT data FROM extractions WHERE doc_id = ? AND schema_name = ? AND engine = ? "
                    "AND status IN ('ok', 'invalid')", [sha, schema_name, engine]).fetchone()
                data = json.loads(row[0]) if row and row[0] else None
            if data is None:
                result.missing.append(entry["file"])
                data = {}
            result.documents.append(entry["file"])
            for name, tv in entry.get("fields", {}).items():
                if name not in known:
                    continue
                s = result.fields.setdefault(name, FieldScore())
                s.total += 1
                pv = data.get(name)
                if match(name, tv, pv):
                    s.correct += 1
                else:
                    result.mismatches.append((entry["file"], name, tv, pv))
    return result
