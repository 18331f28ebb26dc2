"""Constrained decoding for batched ``generate()``: xgrammar JSON per row, an optional thought channel first.

Why our own logits processor rather than ``xgr.contrib.hf.LogitsProcessor``: a docpipe batch mixes rows that must
answer in the schema's JSON, rows that first think (Gemma 4's ``<|channel>thought ...<channel|>``) and then answer
in JSON, and free-text summary rows, each with its own token budget. One processor keeps a small state machine per
row (open thought -> thought -> answer -> done) and an ``xgr.GrammarMatcher`` per JSON row, and fills one token
bitmask for the whole batch (applied on the logits' device with ``xgr.apply_token_bitmask_inplace``).

"Schema-valid, always" needs the answer to end inside its budget: strings and lists get caps in the grammar, and in
the last ``WRAP_UP`` tokens of a row's budget the allowed tokens that close the JSON are favoured, so a looping model
still closes its object instead of being cut off. Which tokens close depends on where the row is: inside a string
only a closing quote does (a ``}`` there is just more string: a GPU run at a 256-token budget spent its last 48
tokens writing ``}}}}`` into a string and was cut off unterminated), outside one ``]``, ``}`` and ``null`` do. The
processor follows each row's string/escape state from the bytes of the tokens it accepted.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

#: per-row modes
FREE, JSON, THINK_JSON = "free", "json", "think+json"
#: tokens before the end of a row's budget at which closing the JSON is favoured
WRAP_UP = 48
_OPEN, _THOUGHT, _ANSWER, _DONE = range(4)


def bounded_schema(schema: dict[str, Any], max_string: int = 2000, max_items: int = 500) -> dict[str, Any]:
    """The JSON Schema with caps on free strings and lists, so every grammar path has an end."""
    out = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            t = node.get("type")
            if t == "string" and not ({"maxLength", "enum", "const", "format", "pattern"} & node.keys()):
                node["maxLength"] = max_string
            if t == "array" and "maxItems" not in node:
                node["maxItems"] = max_items
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)
    return out


@dataclass(frozen=True)
class TokenSet:
    """Token ids the processor needs, read from the tokenizer (never hard-coded)."""

    stops: tuple[int, ...]  # end of answer: <eos>, <turn|>
    channel_open: int  # <|channel>
    channel_close: int  # <channel|>
    control: tuple[int, ...]  # every special token: banned inside thoughts (except channel_close)
    closers: tuple[int, ...]  # outside a string: tokens made only of ']' and '}', or exactly 'null'
    quote_closers: tuple[int, ...]  # inside a string: '"' followed only by ']' and '}'
    vocab_size: int
    decoded: tuple[bytes, ...] = ()  # each token's bytes (to follow the string state of JSON rows)


class Grammars:
    """One xgrammar compiler per tokenizer; each schema compiled once and reused for every batch."""

    def __init__(self, tokenizer: Any, vocab_size: int, stops: list[int]) -> None:
        import xgrammar as xgr

        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stops)
        self.compiler = xgr.GrammarCompiler(self.info)
        self._cache: dict[str, Any] = {}
        ids = tokenizer.convert_tokens_to_ids
        decoded = self.info.decoded_vocab
        closers = [i for i, b in enumerate(decoded) if (b and all(c in b"]}" for c in b)) or b == b"null"]
        quote_closers = [i for i, b in enumerate(decoded) if b[:1] == b'"' and all(c in b"]}" for c in b[1:])]
        special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items()
                                                     if getattr(t, "special", False)}
        self.tokens = TokenSet(stops=tuple(stops), channel_open=ids("<|channel>"), channel_close=ids("<channel|>"),
                               control=tuple(sorted(i for i in special if i < vocab_size)),
                               closers=tuple(i for i in closers if i not in special),
                               quote_closers=tuple(i for i in quote_closers if i not in special),
                               vocab_size=vocab_size, decoded=tuple(decoded))

    def compile(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._cache:
            self._cache[key] = self.compiler.compile_json_schema(key, any_whitespace=False, separators=(",", ":"))
        return self._cache[key]


@dataclass
class RowSpec:
    """What one batch row may produce: its mode, compiled grammar (JSON rows) and token budgets."""

    mode: str
    grammar: Any = None
    max_new: int = 1024
    think_budget: int = 0


class BatchProcessor:
    """A ``generate()`` logits processor for a batch of rows with different modes (see module doc)."""

    def __init__(self, rows: list[RowSpec], tokens: TokenSet, prefixes: list[list[int]] | None = None) -> None:
        """``prefixes``: per row, the answer tokens an earlier batch already produced (the row's prompt ends with
        them); the row's state (thought, grammar, string) is replayed through them, and its budget is what is
        left."""
        import torch
        import xgrammar as xgr

        self.rows = rows
        self.t = tokens
        self.matchers = [xgr.GrammarMatcher(r.grammar) if r.mode != FREE else None for r in rows]
        self.state = [_OPEN if r.mode == THINK_JSON else (_ANSWER if r.mode == JSON else _DONE) for r in rows]
        self.thought = [0] * len(rows)
        self.steps = 0
        self.prompt_len: int | None = None
        self.bitmask = xgr.allocate_token_bitmask(len(rows), tokens.vocab_size)
        self._control = torch.tensor([c for c in tokens.control if c != tokens.channel_close], dtype=torch.long)
        self._free_ban = torch.tensor([c for c in tokens.control if c not in tokens.stops], dtype=torch.long)
        self._closers = torch.tensor(tokens.closers, dtype=torch.long)
        self._quote_closers = torch.tensor(tokens.quote_closers, dtype=torch.long)
        self.failed = [False] * len(rows)
        self.in_string = [False] * len(rows)  # JSON rows: inside a string literal / right after its backslash
        self.escape = [False] * len(rows)
        for i, prefix in enumerate(prefixes or []):
            for tok in prefix:
                self._advance(i, tok)

    def _advance(self, i: int, tok: int) -> None:
        st = self.state[i]
        if st == _OPEN:
            self.state[i] = _THOUGHT
        elif st == _THOUGHT:
            if tok == self.t.channel_close:
                self.state[i] = _ANSWER
            else:
                self.thought[i] += 1
        elif st == _ANSWER:
            m = self.matchers[i]
            if not m.accept_token(tok):
                self.failed[i] = True
                self.state[i] = _DONE
            elif m.is_terminated():
                self.state[i] = _DONE
            else:
                self._track_string(i, tok)

    def _track_string(self, i: int, tok: int) -> None:
        if tok >= len(self.t.decoded):
            return
        in_string, escape = self.in_string[i], self.escape[i]
        for c in self.t.decoded[tok]:
            if escape:
                escape = False
            elif in_string:
                if c == 0x5C:  # backslash
                    escape = True
                elif c == 0x22:  # '"'
                    in_string = False
            elif c == 0x22:
                in_string = True
        self.in_string[i], self.escape[i] = in_string, escape

    def _on(self, device: Any) -> dict[str, Any]:
        """The processor's token-id tensors on the scores' device (moved once, not every step)."""
        if getattr(self, "_dev", None) is None or self._dev[0] != device:
            self._dev = (device, {k: getattr(self, k).to(device) for k in
                                  ("_control", "_free_ban", "_closers", "_quote_closers")})
        return self._dev[1]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Row masks for this step. Rows are sorted into a few groups and each group is edited with one indexed
        write, so a step costs a handful of kernels whatever the batch size; the JSON rows' grammar masks are
        filled by xgrammar's batch matcher (threads) and applied in one call."""
        import torch
        import xgrammar as xgr

        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        else:
            for i, tok in enumerate(input_ids[:, -1].tolist()):
                self._advance(i, tok)
        self.steps = input_ids.shape[1] - self.prompt_len
        self.bitmask.fill_(-1)  # all tokens allowed unless a JSON row says otherwise
        neg = torch.finfo(scores.dtype).min
        dev = self._on(scores.device)
        force: dict[int, list[int]] = {}  # token -> rows that must take exactly that token
        ban: dict[str, list[int]] = {"_free_ban": [], "_control": []}
        boost: dict[str, list[int]] = {"_closers": [], "_quote_closers": []}
        grammar_rows: list[int] = []
        for i, row in enumerate(self.rows):
            st = self.state[i]
            left = row.max_new - self.steps
            if row.mode == FREE:  # plain prose: no control tokens, ends at its own budget, not the batch's
                if left <= 1:
                    force.setdefault(self.t.stops[-1], []).append(i)
                else:
                    ban["_free_ban"].append(i)
            elif st == _OPEN:
                force.setdefault(self.t.channel_open, []).append(i)
            elif st == _THOUGHT:
                if self.thought[i] >= row.think_budget:
                    force.setdefault(self.t.channel_close, []).append(i)
                else:
                    ban["_control"].append(i)
            elif st == _ANSWER:
                grammar_rows.append(i)
                # xgrammar lets a control token's text (e.g. "<|turn>") inside a JSON string: never in an answer
                ban["_free_ban"].append(i)
                if left <= WRAP_UP and not self.escape[i]:
                    boost["_quote_closers" if self.in_string[i] else "_closers"].append(i)
        if grammar_rows:
            self._batch_matcher().batch_fill_next_token_bitmask(
                [self.matchers[i] for i in grammar_rows], self.bitmask, indices=grammar_rows)
        for key, rows in ban.items():
            if rows:
                scores[torch.tensor(rows, device=scores.device)[:, None], dev[key][None, :]] = neg
        for key, rows in boost.items():
            if rows:
                scores[torch.tensor(rows, device=scores.device)[:, None], dev[key][None, :]] += 1e4
        for tok, rows in force.items():
            idx = torch.tensor(rows, device=scores.device)
            scores[idx] = neg
            scores[idx, tok] = 0
        xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device, non_blocking=True))
        return scores

    def _batch_matcher(self) -> Any:
        import xgrammar as xgr

        if getattr(self, "_batch", None) is None:
            self._batch = xgr.BatchGrammarMatcher(max_threads="auto")
        return self._batch
