"""Values passed between the stages: discover -> rasterize -> engine -> validate -> store.

Plain dataclasses: cheap to build, picklable across worker processes, no behaviour.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Status(str, enum.Enum):
    """Outcome of one document for one (schema, engine); stored in ``documents.status``."""

    OK = "ok"                # extracted and valid
    INVALID = "invalid"      # extracted, but failed schema validation: stored with its errors
    FAILED = "failed"        # could not be read or the engine failed; retried on the next run
    ENCRYPTED = "encrypted"  # needs --password
    EMPTY = "empty"          # zero bytes or zero pages
    TOO_LARGE = "too_large"  # over the page/pixel caps
    UNSUPPORTED = "unsupported"  # not a PDF or image docpipe can read
    SKIPPED = "skipped"      # already done for these bytes, schema and engine

    @property
    def retry(self) -> bool:
        """Whether the next run tries this document again without --force."""
        return self in (Status.FAILED, Status.ENCRYPTED)


@dataclass(frozen=True)
class SourceFile:
    """One input file; ``sha256`` of its bytes is the document's identity."""

    path: Path
    sha256: str
    size: int
    kind: str  # "pdf" | "image" | "unsupported" | "empty"
    mime: str


@dataclass
class PageInfo:
    """What is known about one page: geometry, text, and how it was read. Stored in ``pages``."""

    page_no: int  # 1-based
    width_pt: float
    height_pt: float
    rotation: int = 0  # the PDF's /Rotate (already applied to width/height and renders)
    ocr_rotation: int = 0  # extra clockwise turn OCR needed to read a sideways or upside-down page
    text: str = ""
    text_source: str = "none"  # "layer" | "ocr" | "layer+ocr" | "xml" | "none"
    render_dpi: float | None = None
    width_px: int | None = None
    height_px: int | None = None
    ocr_confidence: float | None = None
    render_ms: float = 0.0
    ocr_ms: float = 0.0
    # OCR boxes in PDF points (x0, y0, x1, y1, text, score), kept so evidence can ground values without a 2nd OCR
    words: list[tuple[float, float, float, float, str, float]] | None = None


@dataclass
class Page:
    """A page ready for an engine: metadata plus, when the engine asked for pixels, the image (PIL)."""

    info: PageInfo
    image: Any | None = None  # PIL.Image.Image at native aspect ratio


@dataclass
class ErrorItem:
    """One problem met while processing a document (docling's ErrorItem, trimmed)."""

    stage: str  # "discover" | "rasterize" | "ocr" | "engine" | "validate" | "store"
    message: str
    page_no: int | None = None


@dataclass
class EngineOutput:
    """What an engine returns for one document, before validation."""

    source: SourceFile
    status: Status = Status.OK
    data: dict[str, Any] | None = None
    pages: list[PageInfo] = field(default_factory=list)
    summary: str | None = None
    thinking: str | None = None
    raw_text: str | None = None  # the model's raw answer when it was not valid JSON
    engine: str = ""
    model: str | None = None
    errors: list[ErrorItem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    method: str | None = None  # how fields were obtained, e.g. "einvoice-xml", "rules", "constrained-json"


@dataclass
class DocResult:
    """A validated outcome, what the store writes and the CLI reports."""

    output: EngineOutput
    status: Status
    data: dict[str, Any] | None
    validation_errors: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[Any] = field(default_factory=list)  # docpipe.evidence.FieldEvidence, one per non-null field
    checks: list[Any] = field(default_factory=list)  # docpipe.evidence.CheckResult, one per check that could run

    @property
    def source(self) -> SourceFile:
        return self.output.source

    @property
    def reason(self) -> str:
        """One-line reason for a non-ok status."""
        if self.output.errors:
            return self.output.errors[0].message
        if self.validation_errors:
            return describe_errors(self.validation_errors, shown=1)
        return ""


#: What an engine yields for one document: its output, or the finished result where the engine validated it and
#: attached evidence itself, next to the work (``docpipe.finish``), so the process that lands results only lands them.
Outcome = EngineOutput | DocResult


def output_of(item: Outcome) -> EngineOutput:
    """The engine's output of a document, finished or not."""
    return item.output if isinstance(item, DocResult) else item


def describe_errors(errors: list[dict[str, Any]], shown: int = 3) -> str:
    """pydantic's errors as one line a person reads: ``loc: msg`` for the first ``shown``, then how many more.
    The one formatter for validation errors (stored reasons and the repair request's problem)."""
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ())) or '(root)'}: {e.get('msg', 'invalid')}"
             for e in errors[:shown]]
    more = f" (+{len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(parts) + more
