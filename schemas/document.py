"""Document: a generic description of any document (letters, contracts, reports)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class Document(BaseModel):
    """What a document is, who it involves and what it says."""

    model_config = ConfigDict(title="document")

    title: str | None = Field(None, description="The document's title or subject line.")
    document_type: str | None = Field(
        None, description="Kind of document in a few words, e.g. 'invoice', 'contract', 'letter', 'annual report'.")
    date: dt.date | None = Field(None, description="The document's main date (issue or signature), ISO YYYY-MM-DD.")
    parties: list[str] = Field(default_factory=list,
                               description="Companies, organisations or people the document is from, to or about.")
    language: str | None = Field(None, description="Main language as an ISO 639-1 code, e.g. 'en', 'de', 'fr'.")
    key_facts: list[str] = Field(default_factory=list,
                                 description="The most important facts, amounts, dates and obligations, one per item.")


SCHEMA = Document
