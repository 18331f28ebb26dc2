"""The VLM layer with a fake backend that implements the Backend Protocol: what every vision-language engine does
alike (page groups, the one merge, repair, summaries, errors per document, bounded concurrency), checked without
a model. The same layer runs Gemma in-process, OpenAI-compatible servers and vLLM."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from docpipe.discover import discover
from docpipe.engines import DocJob, EngineOptions
from docpipe.engines.vlm.answers import check, merge_groups, parse_answer
from docpipe.engines.vlm.backend import Backend, Plan
from docpipe.engines.vlm.engine import VlmEngine
from docpipe.engines.vlm.types import Reply, Request
from docpipe.models import DocResult, EngineOutput, Status, describe_errors
from docpipe.rasterize import RenderSpec
from docpipe.schemas import resolve

sys.path.insert(0, str(Path(__file__).parent))
from conftest import make_pdf  # noqa: E402


class FakeBackend:
    """Answers from a function of the request; records every call and how many ran at once."""

    def __init__(self, answer, **plan) -> None:
        self.answer, self.plan = answer, plan
        self.requests: list[Request] = []
        self.calls = 0
        self.running = self.most_running = 0
        self.lock = threading.Lock()
        self.closed = False

    @property
    def model_name(self) -> str | None:
        return "fake-1"

    def check(self) -> str | None:
        return None

    def start(self, schema, thinking: bool) -> Plan:
        return Plan(spec=RenderSpec(max_pixels=120 * 170, max_dpi=72), prepare=lambda img: (img.size, 10),
                    **self.plan)

    def generate(self, requests: list[Request]) -> list[Reply]:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.requests += requests
        try:
            time.sleep(0.02)
            out = []
            for r in requests:
                a = self.answer(r)
                out.append(a if isinstance(a, Reply) else Reply(r, a, mode="fake-json"))
            return out
        finally:
            with self.lock:
                self.running -= 1

    def close(self) -> None:
        self.closed = True


class FakeEngine(VlmEngine):
    kind = "fake"


def page_text(r: Request) -> str:
    return "\n".join(r.prompt.texts)


def run(tmp_path: Path, backend: FakeBackend, docs: dict[str, list[str]], summarize: bool = False
        ) -> dict[str, EngineOutput]:
    paths = [make_pdf(tmp_path / name, pages) for name, pages in docs.items()]
    jobs = [DocJob(s, "invoice", summarize=summarize) for s in discover(paths)]
    with FakeEngine(EngineOptions(), backend) as eng:
        return {o.source.path.name: o for o in eng.run(jobs, resolve("invoice"))}


def by_page(answers: dict[int, dict]) -> callable:
    """Extraction answers by the first page of the group; summaries name the pages they saw."""
    def answer(r: Request) -> str:
        if r.kind == "extract":
            return json.dumps(answers[r.group.first_page])
        if r.kind == "summary":
            return f"pages from {r.group.first_page}"
        return "reduced: " + " | ".join(r.prompt.texts)
    return answer


def test_the_backend_protocol_is_what_a_backend_implements() -> None:
    assert isinstance(FakeBackend(lambda r: "{}"), Backend)
    from docpipe.engines.openai.backend import OpenAIBackend

    assert isinstance(OpenAIBackend(EngineOptions()), Backend)


def test_merge_rule_headers_first_totals_last_lists_concatenated() -> None:
    a = {"invoice_number": "A-1", "total": None, "line_items": [{"description": "x"}], "vendor_name": "ACME",
         "vendor": {"name": "ACME", "vat_id": None}}
    b = {"invoice_number": "A-1 (cont.)", "total": 30.35, "line_items": [{"description": "y"}], "vendor_name": None,
         "vendor": {"name": None, "vat_id": "DE1"}}
    c = {"invoice_number": None, "total": 12.0, "subtotal": 10.0, "line_items": [], "vendor_name": "Other"}
    m = merge_groups([a, b, c])
    assert m["invoice_number"] == "A-1" and m["vendor_name"] == "ACME"  # headers: the first group that has them
    assert m["total"] == 12.0 and m["subtotal"] == 10.0  # totals: the last group that states one
    assert [li["description"] for li in m["line_items"]] == ["x", "y"]
    assert m["vendor"] == {"name": "ACME", "vat_id": "DE1"}  # nested objects: the same rule inside


def test_a_multi_group_document_is_merged_by_the_one_rule(tmp_path: Path) -> None:
    answers = {1: {"invoice_number": "M-7", "vendor_name": "ACME", "total": 10.0,
                   "line_items": [{"description": "bolts", "amount": 4.0}]},
               2: {"invoice_number": None, "total": None, "line_items": [{"description": "nuts", "amount": 6.0}]},
               3: {"invoice_number": "M-7-3", "vendor_name": "Carrier", "total": 99.0, "line_items": []}}
    backend = FakeBackend(by_page(answers), group_pages=1)
    out = run(tmp_path, backend, {"long.pdf": ["Invoice no: M-7", "more lines", "Total: 99.00"]})["long.pdf"]
    assert out.status is Status.OK and out.timings["page_groups"] == 3
    assert out.data["invoice_number"] == "M-7" and out.data["vendor_name"] == "ACME"
    assert out.data["total"] == 99.0
    assert [li["description"] for li in out.data["line_items"]] == ["bolts", "nuts"]
    notes = [r.prompt.messages[-1]["content"][-1]["text"] for r in backend.requests]
    assert all(f"These are pages {k}-{k} of 3" in n for k, n in zip((1, 2, 3), notes))
    assert backend.closed


def test_page_groups_keep_page_order_within_the_page_limit(tmp_path: Path) -> None:
    backend = FakeBackend(lambda r: json.dumps({"invoice_number": page_text(r)}), group_pages=2)
    text = [f"Page {i} of the delivery note: bolts, nuts and washers as ordered." for i in range(1, 6)]
    out = run(tmp_path, backend, {"five.pdf": text})["five.pdf"]
    groups = sorted((r.group.first_page, len(r.prompt.images), r.prompt.texts) for r in backend.requests)
    assert groups == [(1, 2, text[0:2]), (3, 2, text[2:4]), (5, 1, text[4:])]
    assert [p.page_no for p in out.pages] == [1, 2, 3, 4, 5]
    assert out.data["invoice_number"] == "\n".join(text[0:2])  # a header field: the first group's


def test_an_invalid_answer_gets_one_repair_with_the_problem(tmp_path: Path) -> None:
    def answer(r: Request) -> str:
        if not r.repaired:
            return "Sure! {\"invoice_number\": \"A\", "  # cut off: not JSON
        assert "not valid JSON" in r.prompt.messages[-1]["content"][-1]["text"]  # what was wrong
        assert r.prompt.texts[-1].startswith("Sure!")  # and its own answer, as untrusted text
        return json.dumps({"invoice_number": "A-1", "invoice_date": "2025-03-05"})

    out = run(tmp_path, FakeBackend(answer), {"a.pdf": ["Invoice no: A-1"]})["a.pdf"]
    assert out.status is Status.OK and out.data["invoice_number"] == "A-1"
    assert out.method == "fake-json+repair" and out.timings["repairs"] == 1 and out.timings["requests"] == 2
    assert out.raw_text is None


def test_still_invalid_after_the_repair_is_stored_invalid_with_the_raw_answer(tmp_path: Path) -> None:
    backend = FakeBackend(lambda r: "no json here", repair=True)
    out = run(tmp_path, backend, {"a.pdf": ["x"]})["a.pdf"]
    assert out.status is Status.INVALID and out.data is None and out.raw_text == "no json here"
    assert "no JSON object" in out.errors[0].message and "still after one repair request" in out.errors[0].message
    assert len(backend.requests) == 2
    schema_breaker = FakeBackend(lambda r: json.dumps({"invoice_date": "yesterday"}), repair=False)
    out = run(tmp_path, schema_breaker, {"b.pdf": ["x"]})["b.pdf"]
    assert len(schema_breaker.requests) == 1  # repair off: no second request
    assert out.status is Status.OK and out.raw_text  # the pipeline's validation stores it invalid, with the raw
    assert "invoice_date" in check(out.raw_text, resolve("invoice").model)[1]


def test_summaries_one_group_as_is_and_many_groups_reduced(tmp_path: Path) -> None:
    answers = {k: {"invoice_number": f"N{k}"} for k in (1, 2, 3)}
    backend = FakeBackend(by_page(answers), group_pages=2)
    outs = run(tmp_path, backend, {"one.pdf": ["a"], "three.pdf": ["a", "b", "c"]}, summarize=True)
    assert outs["one.pdf"].summary == "pages from 1"
    assert outs["three.pdf"].summary == "reduced: pages from 1 | pages from 3"
    kinds = sorted(r.kind for r in backend.requests if r.doc.job.source.path.name == "three.pdf")
    assert kinds == ["extract", "extract", "reduce", "summary", "summary"]


def test_errors_stay_with_their_document(tmp_path: Path) -> None:
    def answer(r: Request):
        if "server says no" in page_text(r) and r.kind == "extract":
            return Reply(r, None, error="http://x/v1: HTTP 500: boom (gave up after 3 attempts)")
        if "backend bug" in page_text(r):
            raise RuntimeError("unexpected")
        return json.dumps({"invoice_number": page_text(r)})

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nnot really")
    docs = {"ok.pdf": ["fine words on this page"], "refused.pdf": ["the server says no to this page"],
            "bug.pdf": ["a backend bug on this page"]}
    outs = run(tmp_path, FakeBackend(answer), docs)
    assert outs["ok.pdf"].status is Status.OK and outs["ok.pdf"].data["invoice_number"] == "fine words on this page"
    assert outs["refused.pdf"].status is Status.FAILED and "HTTP 500: boom" in outs["refused.pdf"].errors[0].message
    bug = outs["bug.pdf"]
    assert bug.status is Status.FAILED and "internal error: RuntimeError" in bug.errors[0].message
    jobs = [DocJob(s, "invoice") for s in discover([broken, tmp_path / "ok.pdf"])]
    with FakeEngine(EngineOptions(), FakeBackend(answer)) as eng:
        got = {o.source.path.name: o.status for o in eng.run(jobs, resolve("invoice"))}
    assert got["ok.pdf"] is Status.OK and got["broken.pdf"] in (Status.FAILED, Status.EMPTY)


@pytest.mark.parametrize("lanes", [1, 3])
def test_fan_out_is_bounded_by_the_lanes(tmp_path: Path, lanes: int) -> None:
    backend = FakeBackend(lambda r: json.dumps({"invoice_number": page_text(r)}), lanes=lanes, group_pages=1)
    outs = run(tmp_path, backend, {f"d{i}.pdf": [f"document {i}, one of six in this run"] * 2 for i in range(6)})
    assert len(outs) == 6 and all(o.status is Status.OK for o in outs.values())
    assert backend.most_running == lanes  # as many in flight as allowed, never more


def test_one_formatter_for_validation_errors() -> None:
    from pydantic import ValidationError

    model = resolve("invoice").model
    with pytest.raises(ValidationError) as e:
        model.model_validate({"invoice_date": "yesterday", "total": "lots", "currency": 5, "line_items": 3})
    errs = e.value.errors(include_url=False)
    line = describe_errors(errs)
    assert line.count(";") == 2 and f"(+{len(errs) - 3} more)" in line
    data, problem = check(json.dumps({"total": "lots"}), model)
    assert data == {"total": "lots"} and problem.startswith("does not match the schema: total: ")
    result = DocResult(EngineOutput(source=None), Status.INVALID, {}, [{"loc": ["total"], "msg": "bad"}] * 2)
    assert result.reason == "total: bad (+1 more)"
    assert parse_answer('{"a": "x\ty"}') == {"a": "x\ty"}  # a raw tab, as constrained decoding may write


def test_the_vllm_engine_is_registered_and_says_how_to_install_vllm() -> None:
    import importlib.util

    from docpipe.engines import choose, engine_class
    from docpipe.engines.vllm.engine import VllmBackend, VllmEngine
    from docpipe.errors import EngineUnavailable

    assert engine_class("vllm") is VllmEngine
    assert isinstance(VllmBackend(EngineOptions()), Backend)
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    assert VllmEngine.unavailable_reason(EngineOptions(model="m")) == "vllm is not installed (pip install vllm)"
    with pytest.raises(EngineUnavailable, match=r"engine 'vllm' cannot run: .*pip install vllm"):
        choose("vllm", EngineOptions(model="m"))
