"""What model engines say to a model and how they read its answer; shared by the Gemma and server engines.

One place for: the extraction and summary instructions (built from the schema's field descriptions), the pixel
budget that matches an image-token budget, neutralising control tokens in document text (a document must never
be able to inject ``<turn|>`` or ``<|image|>``), splitting thought text from the answer, and pulling one JSON
object out of a reply (with one repair round described by ``repair_instructions``).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from ...rasterize import RenderSpec
from ...schemas import SchemaInfo

#: Gemma 4's allowed image budgets; each soft token covers 3x3 patches of 16x16 px.
IMAGE_TOKEN_BUDGETS = (70, 140, 280, 560, 1120)

SYSTEM_PROMPT = (
    "You read business documents (invoices, receipts, contracts, letters, scans and photos of them) the way a "
    "careful accountant would, and you answer only with the JSON that is asked for."
)

SUMMARY_INSTRUCTIONS = (
    "Summarise this document for someone who will not read it: what it is, who it is from and to, the key "
    "amounts, dates, obligations and anything unusual. Use at most {words} words of plain prose. "
    "Write in the document's language."
)

_CONTROL = re.compile(r"<\|[^<>|]{0,40}\|?>|<[^<>|]{0,40}\|>|<(?:bos|eos|pad|unk|mask)>"
                      # Gemma 1-3 turns and image markers, Llama 2 / Mistral instructions and system blocks
                      r"|</?(?:start_of_turn|end_of_turn|start_of_image|end_of_image|image_soft_token|s)>"
                      r"|\[/?INST\]|<</?SYS>>")


def render_spec_for_tokens(image_tokens: int) -> RenderSpec:
    """Render at exactly the pixels a budget uses: no upscaling by the processor, no wasted 400 dpi renders."""
    if image_tokens not in IMAGE_TOKEN_BUDGETS:
        raise ValueError(f"image token budget must be one of {IMAGE_TOKEN_BUDGETS}, not {image_tokens}")
    return RenderSpec(max_pixels=image_tokens * 9 * 16 * 16, max_dpi=300.0, gray=False)


def neutralise(text: str) -> str:
    """Break anything that looks like a chat/control token (``<|turn>``, ``<turn|>``, ``<eos>``, Gemma 3's
    ``<start_of_turn>``, ``[INST]``) so document text stays text. A zero-width space goes after the opening
    ``<`` or ``[``; readers see the same characters."""
    return _CONTROL.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)


def field_guide(schema: SchemaInfo) -> str:
    """One line per field with its description: what the model is told to look for."""
    lines = []
    for name, f in schema.model.model_fields.items():
        lines.append(f"- {name}: {f.description or name.replace('_', ' ')}")
    for n in schema.nested:
        for c in n.columns:
            if c.description:
                lines.append(f"- {n.field}[].{c.name}: {c.description}")
    return "\n".join(lines)


def _guide_descriptions(schema: SchemaInfo) -> frozenset[str]:
    """The descriptions ``field_guide`` already puts in the prompt."""
    known = {f.description for f in schema.model.model_fields.values() if f.description}
    known |= {c.description for n in schema.nested for c in n.columns if c.description}
    return frozenset(known)


#: keys of a JSON Schema whose values map names to schemas (a property called "title" is not pydantic's title)
_NAMED = ("properties", "$defs", "definitions", "patternProperties")


def _trim(node: Any, known: frozenset[str]) -> Any:
    if isinstance(node, list):
        return [_trim(v, known) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in _NAMED and isinstance(v, dict):
            out[k] = {name: _trim(sub, known) for name, sub in v.items()}
        elif (k == "title" and isinstance(v, str)) or (k == "default" and v is None) \
                or (k == "description" and v in known):
            continue
        else:
            out[k] = _trim(v, known)
    return out


@lru_cache(maxsize=64)
def _prompt_schema(schema_text: str, known: frozenset[str]) -> str:
    return json.dumps(_trim(json.loads(schema_text), known), separators=(",", ":"), ensure_ascii=False)


def prompt_schema_text(schema: SchemaInfo) -> str:
    """The answer's JSON Schema as the prompt shows it, without what the prompt already says: descriptions that the
    field guide lists, pydantic's titles (each field's name again) and ``"default": null`` (the rules say null).

    Why: every page group's prompt carries it. The invoice's full schema is 3,010 characters (at 3-4 characters a
    token, ~900 tokens beside a page's 1,092 image tokens), this 1,272, with its types, nesting, enums, formats and
    every description the guide does not give. Constrained decoding and servers that enforce a schema get the full
    one."""
    return _prompt_schema(schema.json_schema_text, _guide_descriptions(schema))


RULES = ("Rules: copy names and numbers exactly as printed; dates as YYYY-MM-DD; amounts as plain numbers without "
         "currency symbols or thousands separators; currency as an ISO 4217 code; use null (or an empty list) when a "
         "field is not on the document; never invent values.")


def shared_instructions(schema: SchemaInfo) -> str:
    """What every extraction prompt of a schema says alike: the fields, the rules, the answer's JSON Schema."""
    return "\n".join(["Fields:", field_guide(schema), RULES, "JSON Schema of the answer:", prompt_schema_text(schema)])


def extraction_instructions(schema: SchemaInfo, page_texts: list[str] | None = None, n_pages: int = 1,
                            shared: bool = True) -> str:
    """The user-turn text for field extraction, optionally with the pages' own text as a reading aid. ``shared``
    False leaves out ``shared_instructions`` (a prompt that gave them before the pages, see messages.extraction)."""
    parts = [
        f"Extract the fields of this {schema.name} ({n_pages} page{'s' if n_pages != 1 else ''}) into one JSON "
        "object" + ("." if shared else ", by the fields, rules and JSON Schema given above."),
    ]
    if shared:
        parts.append(shared_instructions(schema))
    if page_texts and any(t.strip() for t in page_texts):
        joined = "\n\n".join(f"--- page {i} ---\n{neutralise(t.strip())}" for i, t in enumerate(page_texts, 1)
                             if t.strip())
        parts += ["Text found on the pages (may be incomplete or out of order; the images are authoritative):",
                  joined]
    return "\n".join(parts)


def repair_instructions(previous: str, problem: str) -> str:
    """Second chance: show the model its own answer and what was wrong with it."""
    return (f"Your previous answer was not valid: {problem}\nPrevious answer:\n{previous[:4000]}\n"
            "Answer again with only the corrected JSON object.")


_THOUGHT = re.compile(r"\s*<\|channel>(?:thought\n)?(.*?)(?:<channel\|>|$)", re.S)


def split_thinking(raw: str) -> tuple[str | None, str]:
    """(thought text, answer) from a Gemma 4 reply decoded with special tokens kept."""
    raw = raw.split("<turn|>", 1)[0]
    m = _THOUGHT.match(raw)
    if not m:
        return None, raw.strip()
    thought = m.group(1).strip()
    return (thought or None), raw[m.end():].strip()


def strip_server_thinking(text: str) -> tuple[str | None, str]:
    """Servers that do not separate reasoning may inline it as ``<think>..</think>`` or Gemma channel markers."""
    m = re.match(r"\s*<think>(.*?)</think>", text, re.S)
    if m:
        return m.group(1).strip() or None, text[m.end():].strip()
    return split_thinking(text)


def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a reply (code fences and chatter around it tolerated); ValueError if none."""
    s = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", s, re.S)
    if fence:
        s = fence.group(1).strip()
    start = s.find("{")
    if start < 0:
        raise ValueError("no JSON object in the answer")
    dec = json.JSONDecoder()
    try:
        obj, _ = dec.raw_decode(s[start:])
    except json.JSONDecodeError as e:
        raise ValueError(f"answer is not valid JSON ({e.msg} at character {e.pos})") from e
    if not isinstance(obj, dict):
        raise ValueError("answer is JSON but not an object")
    return obj
