"""Fit extracted fields to the schema's model: a field the model rejects is dropped, never the document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError


def conform(result: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Keep only the model's fields, drop empties, and drop any field the model rejects (never fail the document)."""
    out = {k: v for k, v in result.items() if k in model.model_fields and v not in (None, "", [])}
    for _ in range(len(out) + 1):
        try:
            model.model_validate(out)
            return out
        except ValidationError as e:
            bad = {err["loc"][0] for err in e.errors() if err.get("loc") and err.get("type") != "missing"}
            if not bad & out.keys():
                return out  # only required fields are missing: validation reports them, the rest is kept
            for k in bad:
                out.pop(k, None)  # type: ignore[arg-type]
    return out
