"""EngineOutput + schema -> DocResult: validated data, or the raw data kept with its validation errors.

An invalid result is never dropped and never fatal: it is stored with status ``invalid`` and the errors, so a
person can see what the engine produced and why it was refused.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from .models import DocResult, EngineOutput, ErrorItem, Status
from .schemas import SchemaInfo


def validate(output: EngineOutput, schema: SchemaInfo) -> DocResult:
    """Validate an engine's data against the schema; non-ok engine outputs pass through unchanged."""
    if output.status is not Status.OK:
        return DocResult(output, output.status, None)
    if output.data is None:
        if not output.errors:
            output.errors.append(ErrorItem("engine", "engine returned no data"))
        return DocResult(output, Status.FAILED, None)
    try:
        obj = schema.model.model_validate(output.data)
    except ValidationError as e:
        return DocResult(output, Status.INVALID, _json_safe(output.data), _errors(e))
    return DocResult(output, Status.OK, obj.model_dump(mode="json"))


def _errors(e: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors, trimmed to what a person reads (location, message, offending input)."""
    out = []
    for err in e.errors(include_url=False, include_context=False):
        out.append({"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "input": _short(err.get("input"))})
    return out


def _short(v: Any) -> Any:
    s = json.dumps(v, default=str, ensure_ascii=False)
    return v if len(s) <= 200 else s[:200] + "…"


def _json_safe(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str, ensure_ascii=False))
