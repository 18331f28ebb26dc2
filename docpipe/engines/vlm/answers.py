"""Reading a model's answer: the JSON object in it, whether the schema accepts it, and the one merge of page groups.

Every vision-language backend (Gemma in-process, OpenAI-compatible servers, vLLM) goes through these functions, so a
document gets the same data whichever backend read it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from ...models import describe_errors
from .prompting import parse_json_object

#: key fragments of fields read from the LAST page group that states them: totals are printed at the end
TOTAL_KEYS = ("total", "subtotal", "tax", "amount_due", "balance", "vat", "net", "gross")


def parse_answer(answer: str) -> dict[str, Any]:
    """The answer's JSON object (ValueError if there is none). Constrained decoding admits raw control characters
    (byte tokens) inside strings, which strict JSON refuses; they are read as the characters they are."""
    try:
        return parse_json_object(answer)
    except ValueError as e:
        try:
            obj = json.loads(answer.strip(), strict=False)
        except ValueError:
            raise e from None  # the first reader's words: what is wrong with the answer as JSON
        if not isinstance(obj, dict):
            raise ValueError("answer is JSON but not an object") from None
        return obj


def problem_of(e: Exception) -> str:
    """One line saying why an answer was refused: the JSON error, or the schema's first errors."""
    if isinstance(e, ValidationError):
        return "does not match the schema: " + describe_errors(e.errors(include_url=False))
    return str(e)


def check(answer: str, model: type[BaseModel]) -> tuple[dict[str, Any] | None, str | None]:
    """(data, problem): the answer's JSON object if it has one, and what is wrong with it (None if it validates)."""
    try:
        data = parse_answer(answer)
    except ValueError as e:
        return None, problem_of(e)
    try:
        model.model_validate(data)
    except ValidationError as e:
        return data, problem_of(e)
    return data, None


def merge_groups(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The one merge of page-group answers into a document's answer, the same for every backend.

    Rule, key by key in order of first appearance: lists (line items) are concatenated in page order; nested
    objects are merged by this same rule; totals (keys containing one of ``TOTAL_KEYS``) come from the LAST group
    that states them, since totals are printed at the end; every other field (number, date, parties) comes from the
    FIRST group that states it, since headers are printed at the start. null never overrides a value."""
    out: dict[str, Any] = {}
    for k in dict.fromkeys(k for p in parts for k in p):
        vals = [p[k] for p in parts if p.get(k) is not None]
        if not vals:
            out[k] = None
        elif all(isinstance(v, list) for v in vals):
            out[k] = [x for v in vals for x in v]
        elif all(isinstance(v, dict) for v in vals):
            out[k] = merge_groups(vals)
        elif any(t in k.lower() for t in TOTAL_KEYS):
            out[k] = vals[-1]
        else:
            out[k] = vals[0]
    return out
