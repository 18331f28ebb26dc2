"""What the model engines' extraction prompt says about the answer's schema."""

from __future__ import annotations

import json
from pathlib import Path

from docpipe.engines.vlm.prompting import extraction_instructions, field_guide, prompt_schema_text
from docpipe.schemas import resolve

USER_SCHEMA = '''
from typing import Literal
from pydantic import BaseModel, Field


class Party(BaseModel):
    """Someone named on the order."""
    name: str | None = Field(None, description="Name as printed.")


class Line(BaseModel):
    """One ordered line."""
    sku: str | None = Field(None, description="Article number of the line.")
    qty: int | None = None


class Order(BaseModel):
    """A purchase order."""
    title: str | None = Field(None, description="Heading of the order.")
    default: int | None = Field(None, description="Default delivery slot number.")
    kind: Literal["standard", "rush"] | None = Field(None, description="How urgent the order is.")
    buyer: Party | None = None
    lines: list[Line] = Field(default_factory=list, description="The ordered lines.")
'''


def _props(node: dict) -> dict:
    return node.get("properties") or {}


def test_prompt_schema_keeps_fields_types_and_enums_and_drops_what_the_guide_says(tmp_path: Path) -> None:
    """The prompt's schema is the full one less the field guide's descriptions, pydantic's titles and null defaults:
    fields named like those keywords, types, enums and descriptions the guide lacks are all still there."""
    path = tmp_path / "order.py"
    path.write_text(USER_SCHEMA)
    schema = resolve(f"{path}:Order")
    full, short = json.loads(schema.json_schema_text), json.loads(prompt_schema_text(schema))

    assert list(_props(short)) == list(_props(full)) == ["title", "default", "kind", "buyer", "lines"]
    assert set(short["$defs"]) == set(full["$defs"])
    assert _props(short["$defs"]["Line"]) == {"sku": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                                               "qty": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}
    kind = json.dumps(short["properties"]["kind"])
    assert '"standard"' in kind and '"rush"' in kind
    assert "title" not in short["properties"]["title"] and "default" not in short["properties"]["default"]

    guide = field_guide(schema)
    text = prompt_schema_text(schema)
    for said in ("Heading of the order.", "How urgent the order is.", "Article number of the line.",
                 "The ordered lines."):
        assert said in guide and said not in text
    # not in the guide, so kept: the models' own descriptions and a nested object's field
    for kept in ("A purchase order.", "One ordered line.", "Someone named on the order.", "Name as printed."):
        assert kept in text
    prompt = extraction_instructions(schema)
    assert text in prompt and schema.json_schema_text not in prompt


def test_invoice_prompt_schema_is_under_half_the_full_one() -> None:
    """Every page group's prompt carries the schema, so what it repeats costs tokens on every page."""
    invoice = resolve("invoice")
    assert len(prompt_schema_text(invoice)) < 0.5 * len(invoice.json_schema_text)
    assert json.loads(prompt_schema_text(invoice))["properties"]["line_items"]["type"] == "array"
