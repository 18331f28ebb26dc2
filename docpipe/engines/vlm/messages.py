"""The chats every vision-language backend sends, built once: extraction, repair, summaries and their reduce.

Document text never goes into a message as is: the message carries a marker (``untrusted(i)``) and the text stays
in ``Prompt.texts``, so each backend puts it in its own safe way (Gemma tokenizes it apart from the template, servers
get it neutralised by ``prompting.neutralise``).
"""

from __future__ import annotations

import re
from typing import Any

from ...schemas import SchemaInfo
from .prompting import (
    SUMMARY_INSTRUCTIONS,
    SYSTEM_PROMPT,
    extraction_instructions,
    neutralise,
    repair_instructions,
    shared_instructions,
)
from .types import Group, Prompt

#: private-use markers standing in for untrusted text while a chat is built
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
_MARK = re.compile(f"{MARK_OPEN}(\\d+){MARK_CLOSE}")


def untrusted(i: int) -> str:
    """The marker for the i-th untrusted text of a prompt."""
    return f"{MARK_OPEN}{i}{MARK_CLOSE}"


def _user(n_images: int, text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]}


def extraction(schema: SchemaInfo, group: Group, shared_first: bool = False) -> Prompt:
    """System + one user turn: the page images first (as Gemma prefers), then the instructions and page text.
    ``shared_first``: what every page group's prompt says alike (fields, rules, JSON Schema) goes in the system turn,
    before any page, so a backend can compute it once for many requests (Gemma's shared_prefix)."""
    return extraction_of(schema, group.pages, group.texts, group.first_page, group.doc.total_pages, shared_first)


def extraction_of(schema: SchemaInfo, pages: list[Any], texts: list[str], first_page: int = 1,
                  total_pages: int = 0, shared_first: bool = False) -> Prompt:
    """``extraction`` for pages given one by one (with none: the prompt a group's pages are added to)."""
    marks = [untrusted(i) if t else "" for i, t in enumerate(texts)]
    text = extraction_instructions(schema, marks, max(len(pages), 1), shared=not shared_first)
    if 0 < len(pages) < total_pages:
        last = first_page + len(pages) - 1
        text += (f"\nThese are pages {first_page}-{last} of {total_pages}; extract what these pages show "
                 "(null for fields that are on other pages).")
    head = SYSTEM_PROMPT
    if shared_first:
        head += (f"\n\nEach request shows pages of one {schema.name}; extract its fields into one JSON object.\n"
                 + shared_instructions(schema))
    system = {"role": "system", "content": [{"type": "text", "text": head}]}
    return Prompt([system, _user(len(pages), text)], list(texts), list(pages))


def repair(prompt: Prompt, answer: str, problem: str) -> Prompt:
    """The extraction chat again, with the model's answer and what was wrong with it (one second chance)."""
    n = len(prompt.texts)
    history = [{"role": "assistant", "content": [{"type": "text", "text": untrusted(n)}]},
               {"role": "user", "content": [{"type": "text", "text": repair_instructions(untrusted(n + 1), problem)}]}]
    return Prompt(prompt.messages + history, [*prompt.texts, answer or "(empty answer)", answer[:4000]],
                  prompt.images)


def summary(group: Group, words: int) -> Prompt:
    """A plain-prose summary of one page group: its images and text layer; no system prompt (it asks for JSON)."""
    text = SUMMARY_INSTRUCTIONS.format(words=words)
    marks = [f"--- page {group.first_page + i} ---\n{untrusted(i)}" for i, t in enumerate(group.texts) if t.strip()]
    if marks:
        text += "\nText found on the pages (the images are authoritative):\n" + "\n\n".join(marks)
    return Prompt([_user(len(group.pages), text)], list(group.texts), list(group.pages))


def reduce(summaries: list[str], words: int) -> Prompt:
    """Map-reduce's last step for summaries: one text-only request over the page groups' summaries."""
    text = ("These are summaries of consecutive parts of one document:\n"
            + "\n".join(f"Part {i}: {untrusted(i - 1)}" for i in range(1, len(summaries) + 1))
            + "\n" + SUMMARY_INSTRUCTIONS.format(words=words))
    return Prompt([_user(0, text)], list(summaries), [])


def fill(text: str, texts: list[str]) -> str:
    """A message text with each marker replaced by its untrusted text, neutralised."""
    return _MARK.sub(lambda m: neutralise(texts[int(m.group(1))]), text)


def chat_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """The prompt as OpenAI chat messages: images (data URLs in ``prompt.images``) as image_url parts, markers
    filled; a text-only message as a plain string."""
    images = iter(prompt.images)
    out = []
    for msg in prompt.messages:
        parts: list[dict[str, Any]] = []
        for p in msg["content"]:
            if p["type"] == "image":
                parts.append({"type": "image_url", "image_url": {"url": next(images)}})
            else:
                parts.append({"type": "text", "text": fill(p["text"], prompt.texts)})
        only_text = all(p["type"] == "text" for p in parts)
        out.append({"role": msg["role"],
                    "content": "\n".join(p["text"] for p in parts) if only_text else parts})
    return out


def data_url(img: Any, fmt: str = "jpeg", quality: int = 90) -> str:
    """A PIL image as a data URL. JPEG by default: ~12 ms for a 2.6 MP page where PNG takes ~60 ms."""
    import base64
    import io

    buf = io.BytesIO()
    if fmt == "jpeg":
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        img.save(buf, format="JPEG", quality=quality)
    elif fmt == "webp":
        img.save(buf, format="WEBP", quality=quality, method=0)
    else:
        img.save(buf, format="PNG", compress_level=1)
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")
