"""A plugin engine for tests: implements docpipe's Engine interface and reads the text layer, no model.

Registered by tests through the ``docpipe.engines`` entry-point group (as a third-party package would be), never
by patching. It answers from lines such as ``Invoice no: INV-1`` and ``Total: 10.50``; a document whose text says
``CRASH`` raises inside the engine (recorded as failed), one whose total is not a number validates as invalid.
Its settings (``engines.fake`` in docpipe's Settings) may say ``interrupt_after``: that many documents, then Ctrl-C.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import ClassVar

from docpipe.engines import DocJob, Engine, mark_unreadable
from docpipe.models import EngineOutput
from docpipe.schemas import SchemaInfo


class FakeEngine(Engine):
    kind: ClassVar[str] = "fake"
    seen: ClassVar[list[str]] = []  # names of the documents every FakeEngine was given, in order

    @property
    def model_name(self) -> str | None:
        return "fake-1"

    def run(self, jobs: Iterable[DocJob], schema: SchemaInfo) -> Iterator[EngineOutput]:
        interrupt_after = self.options.settings.get("fake", {}).get("interrupt_after")
        for n, job in enumerate(jobs):
            if interrupt_after is not None and n == interrupt_after:
                raise KeyboardInterrupt
            FakeEngine.seen.append(job.source.path.name)
            out = EngineOutput(source=job.source, model="fake-1", method="text-lines")
            try:
                with job.open() as doc:
                    out.pages = [page.info for page in doc.pages()]
                text = "\n".join(p.text for p in out.pages)
                if "CRASH" in text:
                    raise RuntimeError("the fake engine crashed")
                number = re.search(r"Invoice no: (\S+)", text)
                total = re.search(r"Total: (\S+)", text)
                out.data = {"invoice_number": number and number[1], "total": total and total[1]}
            except Exception as e:  # one document's failure is its status, never the batch's
                mark_unreadable(out, e)
            yield out
