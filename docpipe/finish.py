"""An engine's output -> the row the store writes: validated against the schema, with evidence and checks.

Runs where the engine ran when it can (the offline engine's worker processes, Ray actors), so the process that
lands results does only the landing; what an engine yields unfinished the pipeline finishes itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .evidence import attach as attach_evidence
from .models import DocResult, EngineOutput, Outcome
from .rasterize import DEFAULT_MAX_PAGES
from .validate import validate

if TYPE_CHECKING:
    from .engines.base import DocJob
    from .schemas import SchemaInfo


def finish(out: EngineOutput, schema: SchemaInfo, password: str | None = None,
           max_pages: int = DEFAULT_MAX_PAGES) -> DocResult:
    """Validate, then ground every value on the page and run the schema's checks. Never raises for a document."""
    result = validate(out, schema)
    attach_evidence(result, schema, password, max_pages)
    return result


def finished(item: Outcome, schema: SchemaInfo, password: str | None = None,
             max_pages: int = DEFAULT_MAX_PAGES) -> DocResult:
    """``item`` as a finished result: as it is when its engine finished it, else finished here."""
    return item if isinstance(item, DocResult) else finish(item, schema, password, max_pages)


def finish_job(job: DocJob, out: EngineOutput, schema: SchemaInfo | None = None) -> DocResult:
    """``finish`` with the job's own schema, password and page limit (what a worker process has in hand)."""
    from .schemas import resolve

    return finish(out, schema or resolve(job.schema_ref), job.password, job.max_pages)
