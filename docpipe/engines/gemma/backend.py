"""Gemma 4 in this process through transformers: loading, planning a batch for the GPU's memory, and generating one
padded batch (docpipe's decode loop, one CUDA graph per batch, with xgrammar constraining JSON rows to the schema).

Thinking, when on, happens in the same call: the thought channel is free text, the grammar starts when it closes.
A request still writing after ``answer_segment`` new tokens comes back unfinished (its state holds the answer so
far) and goes on in a later batch. Which requests form a batch, and what happens when one runs out of GPU memory,
is ``scheduler``'s job.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ...errors import EngineUnavailable
from ...schemas import SchemaInfo
from ..base import EngineOptions
from ..vlm import messages
from ..vlm.backend import Plan
from ..vlm.types import Reply, Request
from .models import ModelChoice, canonical, choose_model
from .settings import engine_settings, vision_overlap_on


@dataclass
class GemmaStats:
    """What a run did, for benchmarks and tests; the ``*_s`` stages are GPU seconds (vision inside prefill)."""

    prefill_tokens: int = 0
    new_tokens: int = 0
    generate_s: float = 0.0
    batches: int = 0
    rows: int = 0
    peak_batch: int = 0
    oom_splits: int = 0
    wait_s: float = 0.0  # the GPU idle: pages not ready yet, or a partial batch waiting to fill
    continued: int = 0  # requests stopped at answer_segment and sent on in a later batch
    planned_rows: int = 0
    prefill_rows: int = 0
    prefix_tokens: int = 0  # prompt tokens taken from a batch's shared prefix instead of prefilled again
    kv_cache: str = "bf16"  # how the decode loop keeps keys and values (kernels/kv_fp8.py)
    stages: dict[str, float] = field(default_factory=dict)  # vision, prefill, decode, vision_ahead

    def as_dict(self) -> dict[str, float]:
        d = asdict(self)
        return {**{k: v for k, v in d.items() if k != "stages"}, **{f"{k}_s": v for k, v in self.stages.items()}}


@dataclass
class Row:
    """A request as the batch sees it: prompt ids (with its answer so far), pages, decoding mode, budget left."""

    ids: list[int]
    images: list[Any]
    mode: str
    max_new: int
    think_budget: int = 0
    prefix: list[int] = field(default_factory=list)  # the answer so far, when a batch stopped it at answer_segment


class GemmaBackend:
    """Gemma 4 through transformers, in this process."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.cfg = engine_settings(options)
        self._choice: ModelChoice | None = None
        self.device = ""
        self.model: Any = None
        self.processor: Any = None
        self.pool: Any = None  # page-preparation processes (prep.py), kept across runs
        self.grammar: Any = None
        self.between: Any = None  # called between decode steps (the scheduler's vision overlap)

    # -- availability and loading --------------------------------------------------------------------------------
    def check(self) -> str | None:
        choice, _, why = choose_model(self.options.model, str(self.cfg["quantize"]))
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
    def from_loaded(cls, model: Any, processor: Any, options: EngineOptions) -> GemmaBackend:
        """A backend around a model and processor already in memory (benchmarks build random-weight models)."""
        b = cls(options)
        b.model, b.processor = model, processor
        b.device = model.device.type
        b.setup()
        return b

    def load(self) -> None:
        if self.model is not None:
            return
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from .quantize import load_plan, quantize_model

        choice, device, why = choose_model(self.options.model, str(self.cfg["quantize"]))
        if choice is None:
            raise EngineUnavailable(f"engine 'gemma' cannot run: {why}")
        self._choice, self.device = choice, device
        self._kv_cache(device)  # an fp8 cache this GPU cannot keep: refused before minutes of loading weights
        mode, device_map = load_plan(choice, str(self.cfg["quantize"]), device)
        small = choice.weight_bytes < 2 * 2**30
        dtype = torch.bfloat16 if device == "cuda" or not small or mode != "none" else torch.float32
        kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": "sdpa", "local_files_only": True}
        if device_map:
            kwargs["device_map"] = device_map
        self.model = AutoModelForImageTextToText.from_pretrained(choice.folder, **kwargs).eval()
        quantize_model(self.model, mode, device)
        self.processor = AutoProcessor.from_pretrained(choice.folder, local_files_only=True, padding_side="left")
        self.setup()

    def setup(self) -> None:
        import torch

        from .decoding import Grammars
        from .inputs import PromptBuilder
        from .kernels.memory import KVRow

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
        self.kv_row = KVRow.of(self.model)  # KV-cache bytes of one row at a padded length (prompt + new tokens)
        self.kv_cache = self._kv_cache(self.device)
        planned_rows, prefill_rows = self.plan_rows()
        self.planned_batch = max(1, int(self.cfg["batch_size"] or planned_rows))
        self.max_pages = int(self.cfg["max_pages_in_memory"] or 2 * self.planned_batch + 8)
        self.group_pages = max(1, self.max_pages // 2)  # pages per context at most: two groups in memory at once
        self.prep_workers = max(1, int(self.cfg["prep_workers"] or 1))
        self.stats = GemmaStats(planned_rows=planned_rows, prefill_rows=prefill_rows, kv_cache=self.kv_cache)
        vision = None
        if self.cfg["vision_chunk"]:  # on a CPU too (tests, small models), compiled on CUDA only
            from .kernels.vision import install as install_vision

            vision = install_vision(self.model, int(self.cfg["vision_chunk"]),
                                    self.cfg["vision_compile"] if self.device == "cuda" else False,
                                    self.cfg["vision_sdpa_backend"])
        self.vision = vision
        # vision_overlap's stream: the next batch's pages are encoded there during a decode (none on a CPU)
        self.side = torch.cuda.Stream() if self.device == "cuda" and vision is not None else None
        # used while vision_ahead stays on (out of memory encoding ahead turns both off)
        self.overlap = vision is not None and vision_overlap_on(
            self.cfg["vision_overlap"], bool(getattr(text_cfg, "enable_moe_block", False)), self.device)
        from .quantize import active_mode

        if (mode := active_mode(self.model)) != "none":
            from .kernels.quantized import bf16_for_many_rows

            bf16_for_many_rows(self.model, mode, bool(self.cfg["prefill_bf16"]))
        if self.device == "cuda" and self.cfg["moe_grouped"]:
            from .kernels.moe import install

            install(self.model)
        if self.device == "cuda" and self.cfg["text_compile"]:
            from .kernels.fusion import install as install_fusion

            install_fusion(self.model)
        self.decoder = None
        if self.cfg["decode"] == "loop":
            from .kernels.generate import Decoder

            compile_step = self.cfg["decode_compile"]
            layers = compile_step == "layers"
            self.decoder = Decoder(self.model, graphs=self.device == "cuda",
                                   compile=compile_step if isinstance(compile_step, str) and not layers else
                                   bool(compile_step) and self.device == "cuda",
                                   compile_scope="layers" if layers else "model",
                                   prefill_rows=prefill_rows,
                                   prefill_tokens=prefill_rows * self.planned_prompt(),
                                   prefill_attention=self._prefill_attention(),
                                   decode_kernel=str(self.cfg["decode_attention"]),
                                   shared_prefix=bool(self.cfg["shared_prefix"]), kv_cache=self.kv_cache)
            if vision is not None:
                vision.clock = self.decoder.clock
        torch.set_grad_enabled(False)

    def _kv_cache(self, device: str) -> str:
        """The decode loop's cache, "bf16" or "fp8" (kv_fp8.choose; EngineUnavailable where fp8 cannot run)."""
        from .kernels.kv_fp8 import choose

        capability = None
        if device == "cuda":
            import torch

            capability = tuple(torch.cuda.get_device_capability(self.input_device if self.model is not None else 0))
        return choose(str(self.cfg["kv_cache"]), device, capability, str(self.cfg["decode"]))

    def _prefill_attention(self) -> str:
        mode = str(self.cfg["prefill_attention"])
        if mode == "auto":
            return "flex" if self.device == "cuda" else "sdpa"
        return mode

    def plan_rows(self) -> tuple[int, int]:
        """(default batch size, rows per prefill forward): on CPU 4 and 16 (or the setting); on CUDA as many
        requests of one page as the free memory holds beside a prefill forward (kernels.memory.plan)."""
        rows = self.cfg["prefill_rows"]
        if self.device != "cuda":
            return 4, 16 if rows is None else int(rows)
        from .kernels.memory import SLACK, SLACK_EXPANDABLE, expandable_segments, plan, usable_bytes

        free = usable_bytes(self.input_device)
        slack = SLACK_EXPANDABLE if expandable_segments(self.input_device) else SLACK
        return plan(self.model, free, self.planned_prompt(), self.answer_cap(int(self.cfg["max_new_tokens"])),
                    None if rows is None else int(rows), slack, self.options.image_tokens,
                    int(self.cfg["vision_chunk"]) or 16, 1 if self.kv_cache == "fp8" else 2)

    def answer_cap(self, budget: int) -> int:
        """New tokens one batch decodes for a request with ``budget`` left: at most answer_segment, plus the thought
        budget with --thinking. Why the thoughts too: a request cut off goes on with its page prefilled again, a
        whole prefill, while the sliding layers' window caps what longer answers add to a row's KV cache."""
        seg = int(self.cfg["answer_segment"] or 0)
        if seg and self.options.thinking:
            seg += int(self.cfg["thinking_tokens"])
        return budget if not seg else min(budget, seg)

    def planned_prompt(self) -> int:
        """Prompt tokens of a typical request, which batch and prefill sizes are planned for: one page at the
        budget, instructions and schema."""
        return self.options.image_tokens + 700

    # -- a run ---------------------------------------------------------------------------------------------------
    def start(self, schema: SchemaInfo, thinking: bool) -> Plan:
        from .decoding import bounded_schema

        self.load()
        self.grammar = self.grammars.compile(bounded_schema(schema.json_schema)) if self.cfg["grammar"] else None
        prompts, tokens, dtype = self.prompts, self.options.image_tokens, self.dtype

        def prepare(img: Any) -> tuple[Any, int]:
            px = prompts.pixels(img, tokens, dtype)
            return px, px.n_tokens

        return Plan(spec=prompts.render_spec(tokens), prepare=prepare, count=prompts.count,
                    group_tokens=self._group_budget(schema, thinking), group_pages=self.group_pages,
                    pages_in_memory=self.max_pages, answer_tokens=int(self.cfg["max_new_tokens"]),
                    summary_tokens=int(self.cfg["summary_tokens"]), summary_words=int(self.cfg["summary_words"]),
                    page_text=bool(self.cfg["page_text"]), page_text_chars=int(self.cfg["page_text_chars"]),
                    repair=bool(self.cfg["repair"]) and self.grammar is not None, batch=self.planned_batch,
                    shared_first=bool(self.cfg["shared_prefix"]))

    def _group_budget(self, schema: SchemaInfo, thinking: bool) -> int:
        """Prompt tokens left for pages in one context: window - instructions - answer (and thought) budget."""
        prompt = messages.extraction_of(schema, [], [], shared_first=bool(self.cfg["shared_prefix"]))
        base = self.prompts.encode(prompt.messages, [], [], thinking)
        out = int(self.cfg["max_new_tokens"]) + (int(self.cfg["thinking_tokens"]) if thinking else 0)
        return self.window - len(base) - out - 64

    def encode(self, req: Request) -> Row:
        """The request's prompt as token ids, its decoding mode and budget (thought budget included)."""
        from .decoding import FREE, JSON, THINK_JSON

        think = req.think and req.json and self.grammar is not None
        mode = (THINK_JSON if think else JSON) if req.json and self.grammar is not None else FREE
        tb = int(self.cfg["thinking_tokens"]) if think else 0
        ids = self.prompts.encode(req.prompt.messages, req.prompt.texts, req.prompt.images, think)
        return Row(ids, req.prompt.images, mode, req.max_new + tb, tb)

    def generate(self, requests: list[Request]) -> list[Reply]:
        """One padded batch. A request stopped at answer_segment comes back with text None, its state advanced."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        from .decoding import FREE, BatchProcessor, RowSpec
        from .inputs import collate

        for r in requests:
            if r.state is None:
                r.state = self.encode(r)
        batch = sorted(requests, key=lambda r: len(r.state.ids))
        prefix, sharing = 0, None
        if self.decoder is not None and self.decoder.shared is not None:
            from .kernels.prefix import sharing_rows

            # the rows that share a prompt prefix go first, the decoder prefills it once for them
            prefix, members = sharing_rows([r.state.ids for r in batch], {self.prompts.boi_id, self.prompts.image_id})
            keep = set(members)
            batch = [batch[i] for i in members] + [r for i, r in enumerate(batch) if i not in keep]
            sharing = len(members)
        rows: list[Row] = [r.state for r in batch]
        inputs = collate([(r.ids, r.images) for r in rows], self.pad_id, self.prompts.image_id,
                         self.input_device, self.dtype)
        max_new = self.answer_cap(max(r.max_new for r in rows))  # what this batch decodes at most
        # each row's own budget (what is left of it): the grammar's wrap-up is timed by it, not by the segment
        specs = [RowSpec(r.mode, self.grammar if r.mode != FREE else None, r.max_new, r.think_budget) for r in rows]
        processors = LogitsProcessorList()
        if self.grammar is not None or any(r.mode == FREE and r.max_new < max_new for r in rows):
            processors.append(BatchProcessor(specs, self.grammars.tokens, [r.prefix for r in rows]))
        min_new = int(self.cfg["min_new_tokens"])
        t = time.perf_counter()
        if self.vision is not None:  # the tower's calls take these pages' features if encoded ahead
            self.vision.keys = [p for r in rows for p in r.images]
        try:
            if self.decoder is not None:
                new = self.decoder.generate(inputs, max_new, None if min_new else self.stops, self.pad_id,
                                            processor=processors or None, row_pages=[len(r.images) for r in rows],
                                            between=self.between, prefix=prefix,
                                            prefix_rows=sharing).tolist()
            else:
                gen = GenerationConfig(max_new_tokens=max_new, min_new_tokens=min_new or None, do_sample=False,
                                       eos_token_id=None if min_new else self.stops, pad_token_id=self.pad_id)
                out = self.model.generate(**inputs, generation_config=gen, logits_processor=processors)
                new = out[:, inputs["input_ids"].shape[1]:].tolist()
        finally:
            if self.vision is not None:
                self.vision.keys = None
        if self.device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        st = self.stats
        if self.decoder is not None:
            st.stages.update(self.decoder.clock.settle())
            if self.decoder.shared is not None:
                st.prefix_tokens = self.decoder.shared.reused
        replies: list[Reply] = []
        stops = set(self.stops)
        for req, row, toks in zip(batch, rows, new):
            cut = next((k for k, x in enumerate(toks) if x in stops), len(toks))
            st.new_tokens += cut
            if cut == len(toks) == max_new < row.max_new:  # stopped by the segment, not by itself: a later batch
                st.continued += 1                          # goes on from its prompt and answer so far
                req.state = replace(row, ids=row.ids + toks, max_new=row.max_new - cut, prefix=row.prefix + toks)
                replies.append(Reply(req, None, seconds=dt / len(batch)))
                continue
            text = self.processor.tokenizer.decode(row.prefix + toks[:cut], skip_special_tokens=False)
            mode = "constrained-json" if self.grammar is not None else "json"
            replies.append(Reply(req, text, mode=mode, seconds=dt / len(batch)))
        st.prefill_tokens += int(inputs["attention_mask"].sum())
        st.generate_s += dt
        st.batches += 1
        st.rows += len(batch)
        st.peak_batch = max(st.peak_batch, len(batch))
        return replies

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        self.model = None
        self.processor = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
