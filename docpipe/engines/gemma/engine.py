"""The in-process Gemma 4 engine: page images (and their text layer) -> schema-valid JSON and summaries.

How a run flows, and why:
- A background thread opens documents, renders each page at its native aspect ratio straight at the size the image
  processor wants for the token budget (sides in multiples of 48 px, so it never resizes), keeps the page's patches
  as bytes (``gemma_inputs``) and groups a document's pages into contexts that fit the
  model's window. It holds at most ``max_pages_in_memory`` pages (a semaphore), so a 2,000-page PDF or a folder of
  100k files never piles up in RAM, and the GPU is fed while the CPU rasterizes the next pages.
- The main thread batches requests across documents (sorted by length, left-padded; as many as the GPU's memory
  holds, ``gemma_memory``) and decodes each batch greedily in docpipe's loop (``gemma_generate``: one CUDA graph
  per batch), with xgrammar constraining each JSON row to the schema (``gemma_decoding``). Thinking, when on,
  happens in the same call: the thought channel is free text, the grammar starts when it closes.
- A document that fits one context is answered in one request. A longer one is map-reduced: one request per page
  group, then the group answers are merged in Python (lists concatenated, scalars first non-null, totals from the
  last group that has them) and the group summaries summarised again in a text-only request.
- Answers are parsed and validated with the schema's pydantic model; an invalid one gets one repair request (its
  own answer plus the problem). What still fails is handed on as ``invalid`` with the raw text and the errors.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ...errors import DocpipeError, EngineUnavailable
from ...models import EngineOutput, ErrorItem, PageInfo, Status
from ...schemas import SchemaInfo
from ..base import DocJob, Engine, EngineOptions, unreadable
from .models import ModelChoice, canonical, choose_model
from .settings import engine_settings, vision_overlap_on
from ..vlm.prompting import (SUMMARY_INSTRUCTIONS, SYSTEM_PROMPT, extraction_instructions, parse_json_object,
                        repair_instructions, split_thinking)

log = logging.getLogger(__name__)

_STOP = object()
#: batches in a row that must go through after an out-of-memory split before the batch size doubles back
GROW_AFTER = 4


@dataclass(eq=False)
class _Doc:
    """A document in flight: its pages, group answers and summaries until every request is back."""

    job: DocJob
    t0: float
    pages: list[PageInfo] = field(default_factory=list)
    n_groups: int | None = None
    data: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    raw: dict[int, str] = field(default_factory=dict)
    thoughts: dict[int, str] = field(default_factory=dict)
    summaries: dict[int, str] = field(default_factory=dict)
    summary: str | None = None
    reduce_asked: bool = False
    done: bool = False
    errors: list[ErrorItem] = field(default_factory=list)
    open_requests: int = 0
    repairs: int = 0
    gpu_s: float = 0.0
    render_ms: float = 0.0


@dataclass(eq=False)
class _Group:
    doc: _Doc
    index: int
    pages: list[Any]  # PagePixels
    texts: list[str]
    open: int = 0  # requests of this group not answered yet; its pages are freed at 0


@dataclass(eq=False)
class _Request:
    kind: str  # "extract" | "summary" | "reduce"
    doc: _Doc
    group: _Group | None
    ids: list[int]
    images: list[Any]
    mode: str
    max_new: int
    think_budget: int = 0
    repaired: bool = False
    seq: int = 0
    # the answer so far, when an earlier batch stopped the request at answer_segment tokens (its ids end with it)
    prefix: list[int] = field(default_factory=list)


class GemmaEngine(Engine):
    """Gemma 4 through transformers, in this process (see the module doc)."""

    kind = "gemma"

    def __init__(self, options: EngineOptions) -> None:
        super().__init__(options)
        self.cfg = engine_settings(options.extra)
        self._choice: ModelChoice | None = None
        self._device = ""
        self.model: Any = None
        self.processor: Any = None
        self._seq = itertools.count()
        self._pool: Any = None

    # -- availability and loading --------------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls, options: EngineOptions) -> str | None:
        choice, _, why = choose_model(options.model, str(engine_settings(options.extra)["quantize"]))
        return None if choice else why

    @property
    def model_name(self) -> str | None:
        if self._choice is not None:
            return self._choice.name
        if self.model is not None:
            return self.options.model or "gemma-4"
        choice, _, _ = choose_model(self.options.model)
        return choice.name if choice else (canonical(self.options.model) if self.options.model else None)

    @classmethod
    def from_loaded(cls, model: Any, processor: Any, options: EngineOptions) -> GemmaEngine:
        """An engine around a model and processor already in memory (benchmarks build random-weight models)."""
        eng = cls(options)
        eng.model, eng.processor = model, processor
        eng._device = model.device.type
        eng._setup()
        return eng

    def _load(self) -> None:
        if self.model is not None:
            return
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from .quantize import load_plan, quantize_model

        choice, device, why = choose_model(self.options.model, str(self.cfg["quantize"]))
        if choice is None:
            raise EngineUnavailable(f"engine 'gemma' cannot run: {why}")
        self._choice, self._device = choice, device
        mode, device_map = load_plan(choice, str(self.cfg["quantize"]), device)
        small = choice.weight_bytes < 2 * 2**30
        dtype = torch.bfloat16 if device == "cuda" or not small or mode != "none" else torch.float32
        kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": "sdpa", "local_files_only": True}
        if device_map:
            kwargs["device_map"] = device_map
        self.model = AutoModelForImageTextToText.from_pretrained(choice.folder, **kwargs).eval()
        quantize_model(self.model, mode, device)
        self.processor = AutoProcessor.from_pretrained(choice.folder, local_files_only=True, padding_side="left")
        self._setup()

    def _setup(self) -> None:
        import torch

        from .decoding import Grammars
        from .inputs import PromptBuilder

        cfg = self.model.config
        text_cfg = cfg.get_text_config()
        gen = self.model.generation_config
        stops = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
        tok = self.processor.tokenizer
        turn_end = tok.convert_tokens_to_ids("<turn|>")
        self.stops = sorted({s for s in [*stops, turn_end, tok.eos_token_id] if s is not None})
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else gen.pad_token_id
        self.prompts = PromptBuilder(self.processor)
        self.grammars = Grammars(tok, text_cfg.vocab_size, self.stops)
        self.window = int(self.cfg["max_context_tokens"] or text_cfg.max_position_embeddings)
        self.dtype = next(self.model.parameters()).dtype
        self.input_device = self.model.get_input_embeddings().weight.device
        from .kernels.memory import KVRow

        self._kv_row = KVRow.of(self.model)  # KV-cache bytes of one row at a padded length (prompt + new tokens)
        planned_rows, self.prefill_rows = self._plan()
        self.batch_size = max(1, int(self.cfg["batch_size"] or planned_rows))
        self.planned_batch, self._fits = self.batch_size, 0  # batches through since the last out-of-memory split
        self.max_pages = int(self.cfg["max_pages_in_memory"] or 2 * self.batch_size + 8)
        self.group_pages = max(1, self.max_pages // 2)  # pages per context at most: two groups in memory at once
        self.prep_workers = max(1, int(self.cfg["prep_workers"] or 1))
        self.stats: dict[str, float] = {"prefill_tokens": 0, "new_tokens": 0, "generate_s": 0.0, "batches": 0,
                                        "rows": 0, "peak_batch": 0, "oom_splits": 0, "wait_s": 0.0, "continued": 0,
                                        "planned_rows": planned_rows, "prefill_rows": self.prefill_rows}
        vision = None
        if self.cfg["vision_chunk"]:  # on a CPU too (tests, small models), compiled on CUDA only
            from .kernels.vision import install as install_vision

            vision = install_vision(self.model, int(self.cfg["vision_chunk"]),
                                    self.cfg["vision_compile"] if self._device == "cuda" else False,
                                    self.cfg["vision_sdpa_backend"])
        self.vision = vision
        # vision_overlap's stream: the next batch's pages are encoded there during a decode (none on a CPU)
        self._side = torch.cuda.Stream() if self._device == "cuda" and vision is not None else None
        # used while vision_ahead stays on (out of memory encoding ahead turns both off)
        self._overlap = vision is not None and vision_overlap_on(
            self.cfg["vision_overlap"], bool(getattr(text_cfg, "enable_moe_block", False)), self._device)
        if self._device == "cuda" and self.cfg["moe_grouped"]:
            from .kernels.moe import install

            install(self.model)
        if self._device == "cuda" and self.cfg["text_compile"]:
            from .kernels.fusion import install as install_fusion

            install_fusion(self.model)
        self.decoder = None
        if self.cfg["decode"] == "loop":
            from .kernels.generate import Decoder

            compile_step = self.cfg["decode_compile"]
            layers = compile_step == "layers"
            self.decoder = Decoder(self.model, graphs=self._device == "cuda",
                                   compile=compile_step if isinstance(compile_step, str) and not layers else
                                   bool(compile_step) and self._device == "cuda",
                                   compile_scope="layers" if layers else "model",
                                   prefill_rows=self.prefill_rows,
                                   prefill_tokens=self.prefill_rows * self._planned_prompt(),
                                   prefill_attention=self._prefill_attention(),
                                   decode_kernel=str(self.cfg["decode_attention"]))
            if vision is not None:
                vision.clock = self.decoder.clock
        torch.set_grad_enabled(False)

    def _prefill_attention(self) -> str:
        mode = str(self.cfg["prefill_attention"])
        if mode == "auto":
            return "flex" if self._device == "cuda" else "sdpa"
        return mode

    def _plan(self) -> tuple[int, int]:
        """(default batch size, rows per prefill forward): on CPU 4 and 16 (or the setting); on CUDA as many
        requests of one page as the free memory holds beside a prefill forward (gemma_memory.plan)."""
        rows = self.cfg["prefill_rows"]
        if self._device != "cuda":
            return 4, 16 if rows is None else int(rows)
        from .kernels.memory import SLACK, SLACK_EXPANDABLE, expandable_segments, plan, usable_bytes

        free = usable_bytes(self.input_device)
        slack = SLACK_EXPANDABLE if expandable_segments(self.input_device) else SLACK
        return plan(self.model, free, self._planned_prompt(), self._answer_cap(int(self.cfg["max_new_tokens"])),
                    None if rows is None else int(rows), slack)

    def _answer_cap(self, budget: int) -> int:
        """New tokens one batch decodes for a request with ``budget`` left: at most answer_segment, plus the thought
        budget with --thinking. Why the thoughts too: a request cut off goes on with its page prefilled again, a
        whole prefill, while the sliding layers' window caps what longer answers add to a row's KV cache (a row of
        26B-A4B or 31B at 1,536 new tokens holds ~8% more than at 512, from the configs)."""
        seg = int(self.cfg["answer_segment"] or 0)
        if seg and self.options.thinking:
            seg += int(self.cfg["thinking_tokens"])
        return budget if not seg else min(budget, seg)

    def _planned_prompt(self) -> int:
        """Prompt tokens of a typical request, which batch and prefill sizes are planned for: one page at the
        budget, instructions and schema."""
        return self.options.image_tokens + 700

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.model = None
        self.processor = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    # -- the run -------------------------------------------------------------------------------------------------
    def run(self, jobs: Iterable[DocJob], schema: SchemaInfo) -> Iterator[EngineOutput]:
        from .decoding import bounded_schema

        self._load()
        self.schema = schema
        self.grammar = self.grammars.compile(bounded_schema(schema.json_schema)) if self.cfg["grammar"] else None
        budget = self._group_budget(schema)
        q: queue.Queue[Any] = queue.Queue()
        # items taken from q during a decode (vision_overlap), handled before q's next ones
        self._q, self._inbox, self._pending = q, deque(), []
        slots = threading.Semaphore(self.max_pages)
        stop = threading.Event()
        producer = threading.Thread(target=self._produce, args=(iter(jobs), q, slots, stop, budget),
                                    name="gemma-rasterize", daemon=True)
        producer.start()
        pending: list[_Request] = self._pending  # changed in place only, so the decode-time hook sees it
        try:
            finished = False
            wait_s = float(self.cfg["batch_wait_s"])
            while not finished or pending:
                deadline = time.perf_counter() + wait_s
                while True:
                    # block when idle; wait up to batch_wait_s for a fuller batch; else take what is there
                    if not pending:
                        timeout: float | None = None
                        # the wait for a fuller batch starts with its first request, not while none was there
                        deadline = float("inf")
                    elif len(pending) < self.batch_size and not finished:
                        if deadline == float("inf"):
                            deadline = time.perf_counter() + wait_s
                        timeout = max(0.0, deadline - time.perf_counter())
                    else:
                        timeout = 0.0
                    ahead = self._ahead_pages() if timeout else []
                    waited = time.perf_counter()
                    try:
                        item = self._inbox.popleft() if self._inbox else \
                            q.get(block=timeout != 0.0 and not ahead, timeout=timeout)
                    except queue.Empty:
                        item = None
                    # the GPU idles meanwhile: pages not ready yet, or a partial batch waiting to fill
                    self.stats["wait_s"] += time.perf_counter() - waited
                    if item is None:
                        if not ahead:
                            break
                        # nothing new yet: the GPU encodes waiting pages instead of idling, and only idle time
                        # counts against batch_wait_s (a full first batch, not the pages of its first second)
                        began = time.perf_counter()
                        self._encode_ahead(ahead, wait=True)
                        deadline += time.perf_counter() - began
                        continue
                    if item is _STOP:
                        finished = True
                        break
                    if isinstance(item, BaseException):
                        raise item
                    kind, doc, payload = item
                    if kind == "group":
                        pending += self._group_requests(payload)
                    elif kind == "end":
                        doc.n_groups = payload
                        more, outs = self._after(doc)
                        pending += more
                        yield from outs
                    elif kind == "failed":
                        yield self._output(doc, *payload)
                if not pending:
                    continue
                batch = self._pick(pending)
                for req in batch:
                    pending.remove(req)
                for req, text in self._generate(batch):
                    if text is None:  # not done at answer_segment tokens: on in a later batch
                        pending.append(req)
                        continue
                    pending += self._handle(req, text, slots)
                    more, outs = self._after(req.doc)
                    pending += more
                    yield from outs
        finally:
            stop.set()
            producer.join(timeout=5)
            self._inbox.clear()
            if self.vision is not None:  # features of pages no batch took (a failed run)
                self.vision.ahead.clear()
                self.vision.keys = None

    def _ahead_pages(self) -> list[Any]:
        """Up to vision_chunk pages not encoded yet, of the waiting requests (oldest first) and then of the groups
        taken during a decode, while at most a batch's pages are held; none when off or without the runner."""
        if self.vision is None or not self.cfg["vision_ahead"]:
            return []
        room = min(self.vision.chunk, max(self.batch_size, self.vision.chunk) - len(self.vision.ahead))
        lists = [r.images for r in sorted(self._pending, key=lambda r: r.seq)]
        lists += [item[2].pages for item in self._inbox if isinstance(item, tuple) and item[0] == "group"]
        out: dict[int, Any] = {}  # by id: pages compare by value (tensors), and a page can be in two requests
        for pages in lists:
            for page in pages:
                if len(out) >= room:
                    return list(out.values())
                if id(page) not in self.vision.ahead:
                    out[id(page)] = page
        return list(out.values())

    def _during_decode(self) -> None:
        """vision_overlap, between decode steps: take what the rasterizing thread has ready (handled after the
        batch, in order) and queue one chunk of the next batch's pages on the side stream, unless one still runs."""
        while True:
            try:
                self._inbox.append(self._q.get_nowait())
            except queue.Empty:
                break
        if self.vision.busy():
            return
        pages = self._ahead_pages()
        if pages:
            self._encode_ahead(pages, self._side)

    def _encode_ahead(self, pages: list[Any], stream: Any = None, wait: bool = False) -> None:
        """The vision tower on pages of the batch being gathered (``wait``: until the GPU is done with them). Out of
        GPU memory, the features made so far are dropped and vision_ahead is off for this engine: each batch's
        prefill encodes its pages itself."""
        import torch

        try:
            self.vision.encode_ahead(pages, self.input_device, self.dtype, stream)
            if wait and self._device == "cuda":
                torch.cuda.current_stream(self.input_device).synchronize()
            return
        except torch.OutOfMemoryError:
            pass  # handled outside the except block, whose traceback holds the failed call's tensors
        self.vision.ahead.clear()
        torch.cuda.empty_cache()
        self.cfg["vision_ahead"] = False
        log.warning("GPU out of memory encoding %d pages ahead of their batch; vision_ahead is off from now on",
                    len(pages))

    # -- producer: documents -> page groups ----------------------------------------------------------------------
    def _group_budget(self, schema: SchemaInfo) -> int:
        """Prompt tokens left for pages in one context: window - instructions - answer (and thought) budget."""
        base = self.prompts.encode(self._messages(schema, 0, []), [], [], self.options.thinking)
        out = int(self.cfg["max_new_tokens"]) + (int(self.cfg["thinking_tokens"]) if self.options.thinking else 0)
        return self.window - len(base) - out - 64

    def _produce(self, jobs: Iterator[DocJob], q: queue.Queue[Any], slots: threading.Semaphore,
                 stop: threading.Event, budget: int) -> None:
        try:
            if self.prep_workers > 1:
                self._produce_pool(jobs, q, slots, stop, budget)
            else:
                self._produce_here(jobs, q, slots, stop, budget)
        except BaseException as e:  # a bug: surface it in the consumer
            q.put(e)

    def _builders(self, jobs: Iterator[DocJob], q: queue.Queue[Any], slots: threading.Semaphore,
                  stop: threading.Event, budget: int) -> Iterator[_Builder]:
        """A builder for each document in turn, until ``stop`` is set."""
        for job in jobs:
            if stop.is_set():
                return
            yield _Builder(self, _Doc(job, time.perf_counter()), q, slots, budget)

    def _produce_here(self, jobs: Iterator[DocJob], q: queue.Queue[Any], slots: threading.Semaphore,
                      stop: threading.Event, budget: int) -> None:
        """One document after another in this thread (prep_workers=1)."""
        spec = self.prompts.render_spec(self.options.image_tokens)
        for b in self._builders(jobs, q, slots, stop, budget):
            try:
                with b.doc.job.open() as d:
                    for page in d.pages():
                        while not slots.acquire(timeout=0.2):
                            if stop.is_set():
                                return
                        try:
                            img = page.render(spec)
                            px = self.prompts.pixels(img, self.options.image_tokens, self.dtype)
                        except BaseException:
                            slots.release()
                            raise
                        del img
                        b.add(page.info, px, page.text_usable)
                b.end()
            except (DocpipeError, MemoryError) as e:
                b.fail(*unreadable(e))
        if not stop.is_set():
            q.put(_STOP)

    def _produce_pool(self, jobs: Iterator[DocJob], q: queue.Queue[Any], slots: threading.Semaphore,
                      stop: threading.Event, budget: int) -> None:
        """Page ranges of the next documents prepared in ``prep_workers`` processes (gemma_prep), results taken
        back strictly in submission order, so each document's groups and its end reach the consumer in order.
        A chunk holds its pages' slots from submission until its groups are answered (or it is dropped)."""
        from .prep import prepare_pages

        spec = self.prompts.render_spec(self.options.image_tokens)
        # a chunk never needs more slots than a document's unflushed group leaves free (no wait on ourselves)
        chunk = max(1, min(4, self.max_pages - self.group_pages))
        window: deque[list[Any]] = deque()  # ["chunk", builder, future, n_pages, args] | ["end", b] | ["fail", b, e]
        try:
            for b in self._builders(jobs, q, slots, stop, budget):
                job = b.doc.job
                try:
                    with job.open() as d:
                        count = d.page_count
                except (DocpipeError, MemoryError) as e:
                    window.append(["fail", b, e])
                    self._drain(window, stop, block=False)
                    continue
                for first in range(0, count, chunk):
                    m = min(chunk, count - first)
                    for _ in range(m):
                        while not slots.acquire(timeout=0.02):
                            if stop.is_set():
                                return
                            self._drain(window, stop, block=False)
                    args = (job.source, job.password, job.max_pages, first, first + m, spec,
                            self.options.image_tokens)
                    window.append(["chunk", b, self._prep_pool().submit(prepare_pages, *args), m, args])
                    self._drain(window, stop, block=False)
                window.append(["end", b])
                self._drain(window, stop, block=False)
            self._drain(window, stop, block=True)
            if not stop.is_set():
                q.put(_STOP)
        finally:
            for e in window:
                if e[0] == "chunk":
                    e[2].cancel()

    def _prep_pool(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            from .prep import init_worker

            self._pool = ProcessPoolExecutor(self.prep_workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=init_worker, initargs=(self.processor.image_processor,))
        return self._pool

    def _drain(self, window: deque[list[Any]], stop: threading.Event, block: bool) -> None:
        """Hand on, in order, every entry at the head of the window whose work is done (all of them if block)."""
        from concurrent.futures import wait
        from concurrent.futures.process import BrokenProcessPool

        while window and not stop.is_set():
            e = window[0]
            if e[0] == "end":
                window.popleft()
                e[1].end()
                continue
            if e[0] == "fail":
                window.popleft()
                e[1].fail(*unreadable(e[2]))
                continue
            _, b, fut, m, args = e
            if not fut.done():
                if not block:
                    return
                wait([fut], timeout=0.2)
                continue
            window.popleft()
            try:
                pages = [] if b.failed else fut.result()
            except BrokenProcessPool:
                # a worker died (a crash in MuPDF on this or a neighbouring chunk): blame the head, restart the
                # pool and send the rest of the window again
                b.release(m)
                b.fail(Status.FAILED, ErrorItem("rasterize", "page preparation worker crashed on this document"))
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                from .prep import prepare_pages

                for later in window:
                    if later[0] == "chunk":
                        later[2] = self._prep_pool().submit(prepare_pages, *later[4])
                continue
            except (DocpipeError, MemoryError) as err:
                b.release(m)
                b.fail(*unreadable(err))
                continue
            except Exception as err:  # e.g. the image processor refusing a degenerate page: this document only
                b.release(m)
                b.fail(Status.FAILED, ErrorItem("engine", f"page preparation failed: {type(err).__name__}: {err}"))
                continue
            b.release(m - len(pages))
            for info, pv, pos, n, usable in pages:
                b.add(info, self.prompts.page(pv, pos, n, self.options.image_tokens, self.dtype), usable)

    # -- requests ------------------------------------------------------------------------------------------------
    def _messages(self, schema: SchemaInfo, n_pages: int, texts: list[str], instructions: str | None = None,
                  history: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        from .inputs import untrusted

        if instructions is None:
            marks = [untrusted(i) if t else "" for i, t in enumerate(texts)]
            instructions = extraction_instructions(schema, marks, max(n_pages, 1))
        content = [{"type": "image"} for _ in range(n_pages)] + [{"type": "text", "text": instructions}]
        msgs = [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
                {"role": "user", "content": content}]
        return msgs + (history or [])

    def _group_requests(self, g: _Group) -> list[_Request]:
        from .decoding import FREE, JSON, THINK_JSON

        reqs = []
        think = self.options.thinking and self.grammar is not None
        ids = self.prompts.encode(self._messages(self.schema, len(g.pages), g.texts), g.texts, g.pages, think)
        mode = (THINK_JSON if think else JSON) if self.grammar is not None else FREE
        budget = int(self.cfg["max_new_tokens"])
        tb = int(self.cfg["thinking_tokens"]) if think else 0
        reqs.append(_Request("extract", g.doc, g, ids, g.pages, mode, budget + tb, tb, seq=next(self._seq)))
        if g.doc.job.summarize:
            words = int(self.cfg["summary_words"])
            text = SUMMARY_INSTRUCTIONS.format(words=words)
            sids = self.prompts.encode(self._messages(self.schema, len(g.pages), [], text), [], g.pages)
            reqs.append(_Request("summary", g.doc, g, sids, g.pages, FREE, int(self.cfg["summary_tokens"]),
                                 seq=next(self._seq)))
        g.doc.open_requests += len(reqs)
        g.open = len(reqs)
        return reqs

    def _repair_request(self, req: _Request, answer: str, problem: str) -> _Request:
        from .decoding import JSON
        from .inputs import untrusted

        g = req.group
        assert g is not None
        history = [{"role": "assistant", "content": [{"type": "text", "text": untrusted(len(g.texts))}]},
                   {"role": "user", "content": [{"type": "text", "text": repair_instructions(
                       untrusted(len(g.texts) + 1), problem)}]}]
        texts = [*g.texts, answer, answer[:4000]]
        ids = self.prompts.encode(self._messages(self.schema, len(g.pages), g.texts, history=history),
                                  texts, g.pages)
        return _Request("extract", req.doc, g, ids, g.pages, JSON, int(self.cfg["max_new_tokens"]), repaired=True,
                        seq=next(self._seq))

    def _pick(self, pending: list[_Request]) -> list[_Request]:
        """The oldest request plus the ones nearest to it in length (little padding, nothing starves), as many as
        the batch size allows and as the planned KV cache holds: the batch size is planned for one-page requests,
        and a many-page request pads every row of its batch to its length."""
        oldest = min(pending, key=lambda r: r.seq)
        others = sorted((r for r in pending if r is not oldest), key=lambda r: abs(len(r.ids) - len(oldest.ids)))
        cap = self._answer_cap
        budget = self.planned_batch * self._kv_row(self._planned_prompt() + cap(int(self.cfg["max_new_tokens"])))
        batch, longest, new = [oldest], len(oldest.ids), cap(oldest.max_new)
        for r in others:
            if len(batch) >= self.batch_size:
                break
            length, most = max(longest, len(r.ids)), max(new, cap(r.max_new))
            if (len(batch) + 1) * self._kv_row(length + most) <= budget:
                batch.append(r)
                longest, new = length, most
        return batch

    # -- generation ----------------------------------------------------------------------------------------------
    def _generate(self, batch: list[_Request]) -> list[tuple[_Request, str | None]]:
        """One padded generate() for the batch. On GPU out-of-memory its two halves run one after the other and
        later batches are half as big, until ``GROW_AFTER`` batches in a row went through: then the batch size
        doubles back towards the planned one (what runs out is usually one batch's long rows, not every batch)."""
        import torch

        try:
            results = self._generate_once(batch)
        except torch.OutOfMemoryError:
            # retried below, outside this block: the exception's traceback holds the failed attempt's frames and
            # with them its GPU tensors (the cache, activations) until the block is left
            results = None
        if results is not None:
            self._fits += 1
            if self.batch_size < self.planned_batch and self._fits >= GROW_AFTER:
                self.batch_size, self._fits = min(self.planned_batch, 2 * self.batch_size), 0
            return results
        torch.cuda.empty_cache()
        self.stats["oom_splits"] += 1
        if len(batch) == 1:
            req = batch[0]
            req.doc.errors.append(ErrorItem("engine", "GPU out of memory for this document's pages"))
            return [(req, "")]
        half = len(batch) // 2
        log.warning("GPU out of memory with %d requests in a batch; running them as %d + %d", len(batch), half,
                    len(batch) - half)
        self.batch_size, self._fits = max(1, min(self.batch_size, half)), 0
        return self._generate(batch[:half]) + self._generate(batch[half:])

    def _generate_once(self, batch: list[_Request]) -> list[tuple[_Request, str | None]]:
        """The batch's answers (request, text); (continuation, None) for a request stopped at answer_segment."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        from .decoding import FREE, BatchProcessor, RowSpec
        from .inputs import collate

        batch.sort(key=lambda r: len(r.ids))
        inputs = collate([(r.ids, r.images) for r in batch], self.pad_id, self.prompts.image_id,
                         self.input_device, self.dtype)
        max_new = self._answer_cap(max(r.max_new for r in batch))  # what this batch decodes at most
        # each row's own budget (what is left of it): the grammar's wrap-up is timed by it, not by the segment
        rows = [RowSpec(r.mode, self.grammar if r.mode != FREE else None, r.max_new, r.think_budget) for r in batch]
        processors = LogitsProcessorList()
        if self.grammar is not None or any(r.mode == FREE and r.max_new < max_new for r in batch):
            processors.append(BatchProcessor(rows, self.grammars.tokens, [r.prefix for r in batch]))
        min_new = int(self.cfg["min_new_tokens"])
        t = time.perf_counter()
        if self.vision is not None:  # the tower's calls take these pages' features if encoded ahead
            self.vision.keys = [p for r in batch for p in r.images]
        try:
            if self.decoder is not None:
                new = self.decoder.generate(inputs, max_new, None if min_new else self.stops, self.pad_id,
                                            processor=processors or None,
                                            row_pages=[len(r.images) for r in batch],
                                            between=self._during_decode if self._overlap and
                                            self.cfg["vision_ahead"] else None).tolist()
            else:
                gen = GenerationConfig(max_new_tokens=max_new, min_new_tokens=min_new or None, do_sample=False,
                                       eos_token_id=None if min_new else self.stops, pad_token_id=self.pad_id)
                out = self.model.generate(**inputs, generation_config=gen, logits_processor=processors)
                new = out[:, inputs["input_ids"].shape[1]:].tolist()
        finally:
            if self.vision is not None:
                self.vision.keys = None
        if self._device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        if self.decoder is not None:
            # GPU seconds by stage: vision_s, prefill_s (vision_s included), decode_s, vision_ahead_s (outside)
            self.stats.update({f"{k}_s": v for k, v in self.decoder.clock.settle().items()})
        results: list[tuple[_Request, str | None]] = []
        stops = set(self.stops)
        for r, toks in zip(batch, new):
            cut = next((k for k, x in enumerate(toks) if x in stops), len(toks))
            self.stats["new_tokens"] += cut
            r.doc.gpu_s += dt / len(batch)
            if cut == len(toks) == max_new < r.max_new:  # stopped by the segment, not by itself: a later batch
                self.stats["continued"] += 1           # goes on from its prompt and answer so far
                results.append((replace(r, ids=r.ids + toks, max_new=r.max_new - cut, prefix=r.prefix + toks), None))
                continue
            answer = r.prefix + toks[:cut]
            results.append((r, self.processor.tokenizer.decode(answer, skip_special_tokens=False)))
        self.stats["prefill_tokens"] += int(inputs["attention_mask"].sum())
        self.stats["generate_s"] += dt
        self.stats["batches"] += 1
        self.stats["rows"] += len(batch)
        self.stats["peak_batch"] = max(self.stats["peak_batch"], len(batch))
        return results

    # -- answers -------------------------------------------------------------------------------------------------
    def _handle(self, req: _Request, text: str, slots: threading.Semaphore) -> list[_Request]:
        """Store one answer; return follow-up requests (a repair, a summary reduce)."""
        doc, g = req.doc, req.group
        follow: list[_Request] = []
        if req.kind == "extract" and g is not None:
            thought, answer = split_thinking(text)
            if thought:
                doc.thoughts[g.index] = thought
            try:
                obj = _parse(answer)
                self.schema.model.model_validate(obj)
                doc.data[g.index] = obj
            except Exception as e:  # ValueError from parsing, ValidationError from pydantic
                problem = _problem(e)
                if self.cfg["repair"] and not req.repaired and self.grammar is not None:
                    doc.repairs += 1
                    follow.append(self._repair_request(req, answer, problem))
                else:
                    try:
                        doc.data[g.index] = _parse(answer)
                    except ValueError:
                        doc.data[g.index] = None
                        doc.raw[g.index] = text
                        doc.errors.append(ErrorItem("engine", f"page group {g.index + 1}: {problem}"))
        elif req.kind == "summary" and g is not None:
            doc.summaries[g.index] = split_thinking(text)[1]
        elif req.kind == "reduce":
            doc.summary = split_thinking(text)[1] or None
        doc.open_requests += len(follow) - 1
        if g is not None and req.kind != "reduce":
            g.open += len(follow) - 1
            if g.open == 0:
                for _ in g.pages:
                    slots.release()
                g.pages = []
        return follow

    def _after(self, doc: _Doc) -> tuple[list[_Request], list[EngineOutput]]:
        """(follow-up requests, finished outputs) once a document has no request in flight."""
        if doc.n_groups is None or doc.open_requests or doc.done:
            return [], []
        if doc.job.summarize and not doc.reduce_asked and len(doc.summaries) > 1:
            return [self._reduce_summary(doc)], []
        doc.done = True
        return [], [self._finish(doc)]

    def _reduce_summary(self, doc: _Doc) -> _Request:
        """Map-reduce's last step for summaries: one text-only request over the group summaries."""
        from .decoding import FREE
        from .inputs import untrusted

        parts = [doc.summaries[k] for k in sorted(doc.summaries)]
        text = ("These are summaries of consecutive parts of one document:\n"
                + "\n".join(f"Part {i}: {untrusted(i - 1)}" for i in range(1, len(parts) + 1))
                + "\n" + SUMMARY_INSTRUCTIONS.format(words=int(self.cfg["summary_words"])))
        ids = self.prompts.encode(self._messages(self.schema, 0, [], text), parts, [])
        doc.open_requests += 1
        doc.reduce_asked = True
        return _Request("reduce", doc, None, ids, [], FREE, int(self.cfg["summary_tokens"]), seq=next(self._seq))

    def _finish(self, doc: _Doc) -> EngineOutput:
        n_groups = doc.n_groups or 0
        parts = [doc.data.get(k) for k in range(n_groups)]
        good = [p for p in parts if p is not None]
        out = EngineOutput(source=doc.job.source, engine=self.kind, model=self.model_name, pages=doc.pages,
                           errors=doc.errors, method="constrained-json" if self.grammar is not None else "json")
        if doc.raw:
            out.raw_text = "\n\n".join(doc.raw[k] for k in sorted(doc.raw))
        if not good:
            out.status = Status.INVALID if doc.raw else Status.FAILED
            if not out.errors:
                out.errors.append(ErrorItem("engine", "no answer from the model"))
        else:
            out.data = merge_answers(good) if len(good) > 1 else good[0]
        if doc.thoughts:
            out.thinking = "\n\n".join((f"[page group {k + 1}]\n" if n_groups > 1 else "") + doc.thoughts[k]
                                        for k in sorted(doc.thoughts))
        if doc.job.summarize:
            out.summary = doc.summary or (doc.summaries.get(0) if n_groups == 1 else None) or None
        out.timings = {"render_ms": round(doc.render_ms, 2), "gpu_ms": round(doc.gpu_s * 1000, 2),
                       "total_ms": round((time.perf_counter() - doc.t0) * 1000, 2), "page_groups": float(n_groups),
                       "repairs": float(doc.repairs)}
        return out

    def _output(self, doc: _Doc, status: Status, err: ErrorItem) -> EngineOutput:
        return EngineOutput(source=doc.job.source, status=status, engine=self.kind, model=self.model_name,
                            pages=doc.pages, errors=[err])


class _Builder:
    """Groups one document's prepared pages, in page order, into contexts that fit the window and hands them to
    the consumer: ("group", doc, _Group) ..., then ("end", doc, n_groups) or ("failed", doc, (status, error))."""

    def __init__(self, eng: GemmaEngine, doc: _Doc, q: queue.Queue[Any], slots: threading.Semaphore,
                 budget: int) -> None:
        self.eng, self.doc, self.q, self.slots, self.budget = eng, doc, q, slots, budget
        self.cur: list[Any] = []
        self.texts: list[str] = []
        self.used = 0
        self.n = 0
        self.failed = False

    def add(self, info: PageInfo, px: Any, text_usable: bool) -> None:
        """One page whose slot is already held."""
        cfg = self.eng.cfg
        text = info.text if (cfg["page_text"] and text_usable) else ""
        text = text.strip()[: int(cfg["page_text_chars"])]
        cost = px.n_tokens + 8 + (self.eng.prompts.count(text) + 12 if text else 0)
        if self.cur and (self.used + cost > self.budget or len(self.cur) >= self.eng.group_pages):
            self._flush()
        self.doc.pages.append(info)
        self.cur.append(px)
        self.texts.append(text)
        self.used += cost

    def _flush(self) -> None:
        self.q.put(("group", self.doc, _Group(self.doc, self.n, self.cur, self.texts)))
        self.n, self.cur, self.texts, self.used = self.n + 1, [], [], 0

    def end(self) -> None:
        if self.failed:
            return
        if self.cur:
            self._flush()
        self.doc.render_ms = sum(p.render_ms for p in self.doc.pages)
        self.q.put(("end", self.doc, self.n))

    def release(self, n: int) -> None:
        """Give back the slots of n pages that will not be added (dropped or failed)."""
        for _ in range(n):
            self.slots.release()

    def fail(self, status: Status, err: ErrorItem) -> None:
        """The document failed: its unsent pages give their slots back; groups already sent finish as usual."""
        if self.failed:
            return
        self.failed = True
        self.release(len(self.cur))
        self.cur, self.texts = [], []
        self.q.put(("failed", self.doc, (status, err)))


# -- helpers ----------------------------------------------------------------------------------------------------
_TOTALS = ("total", "subtotal", "tax", "amount_due", "balance", "vat", "net", "gross")


def merge_answers(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge answers of consecutive page groups: lists concatenated, nested objects merged, scalars first
    non-null, except totals (read from the last group that states them: totals are printed at the end)."""
    out: dict[str, Any] = {}
    keys = list(dict.fromkeys(k for p in parts for k in p))
    for k in keys:
        vals = [p.get(k) for p in parts if p.get(k) is not None]
        if not vals:
            out[k] = parts[0].get(k)
        elif all(isinstance(v, list) for v in vals):
            out[k] = [x for v in vals for x in v]
        elif all(isinstance(v, dict) for v in vals):
            out[k] = merge_answers(vals)
        elif any(t in k.lower() for t in _TOTALS):
            out[k] = vals[-1]
        else:
            out[k] = vals[0]
    return out


def _parse(answer: str) -> dict[str, Any]:
    """The answer's JSON object. The grammar admits raw control characters (byte tokens) inside strings, which
    strict JSON refuses; they are read as the characters they are."""
    try:
        return parse_json_object(answer)
    except ValueError:
        obj = json.loads(answer.strip(), strict=False)
        if not isinstance(obj, dict):
            raise ValueError("answer is JSON but not an object") from None
        return obj


def _problem(e: Exception) -> str:
    """One line describing why an answer was refused (first pydantic errors or the JSON error)."""
    errs = getattr(e, "errors", None)
    if callable(errs):
        items = errs(include_url=False)[:3]
        return "; ".join(f"{'.'.join(str(p) for p in i.get('loc', ()))}: {i.get('msg', '')}" for i in items)
    return str(e)
