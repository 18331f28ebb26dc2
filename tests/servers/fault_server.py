"""A small real OpenAI-compatible server on 127.0.0.1 that misbehaves on purpose (tests and the client benchmark).

It answers ``/v1/chat/completions`` by filling the requested JSON Schema from the page text in the prompt
(``Invoice no: X`` -> invoice_number, ``Total: N`` -> total), so a correct answer proves the right document's
text reached it. Flags switch on the faults real servers have: refusing ``json_schema`` response formats,
429s with Retry-After, slowness, garbage, an invalid first answer, dying mid-batch, separate reasoning.
Every request is appended to a JSON-lines log (``--log``) that tests read. Stdlib only; starts in ~50 ms.

    python tests/servers/fault_server.py --port 0 [--refuse-json-schema] [--fail-first 2 --fail-status 429] ...
prints ``PORT <n>`` on stdout once listening.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATE = {"chat": 0, "served": 0}
LOCK = threading.Lock()


def fill(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """An instance of the schema's top-level object: values read from the text where the test put them."""
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        kinds = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", []) if isinstance(p, dict)}
        out[name] = [] if "array" in kinds else None
    m = re.search(r"Invoice no:\s*(\S+)", text)
    if m and "invoice_number" in out:
        out["invoice_number"] = m.group(1)
    m = re.search(r"Total:\s*([0-9.]+)", text)
    if m and "total" in out:
        out["total"] = float(m.group(1))
    return out


def image_sizes(content: Any) -> list[list[Any]]:
    """[format, width, height] of each data-URL image in a message (checked by decoding, when Pillow is here)."""
    sizes = []
    if not isinstance(content, list):
        return sizes
    for part in content:
        if part.get("type") != "image_url":
            continue
        url = part["image_url"]["url"]
        head, _, b64 = url.partition(",")
        fmt = head.split("/")[1].split(";")[0]
        raw = base64.b64decode(b64)
        if ARGS.decode_images:
            from PIL import Image

            with Image.open(io.BytesIO(raw)) as im:
                sizes.append([fmt, im.width, im.height])
        else:
            sizes.append([fmt, len(raw), 0])
    return sizes


def text_of(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            parts += [p.get("text", "") for p in c if p.get("type") == "text"]
    return "\n".join(parts)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": ARGS.model, "object": "model"}]})
        elif self.path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not found"}})
            return
        with LOCK:
            STATE["chat"] += 1
            n = STATE["chat"]
        if ARGS.die_after and STATE["served"] >= ARGS.die_after:
            os._exit(3)  # a crash: the connection drops, nothing more is served
        rf = body.get("response_format") or {}
        msgs = body.get("messages", [])
        entry = {"n": n, "t": time.time(), "port": ARGS.port_bound, "model": body.get("model"),
                 "response_format": rf.get("type"), "chat_template_kwargs": body.get("chat_template_kwargs"),
                 "reasoning_effort": body.get("reasoning_effort"), "max_tokens": body.get("max_tokens"),
                 "images": image_sizes(msgs[-1].get("content") if msgs else None) if msgs else [],
                 "repair": "previous answer was not valid" in text_of(msgs[-1:]),
                 "summary": "Summarise this document" in text_of(msgs), "status": 200}
        status, reply, headers = self.decide(n, rf, msgs, entry)
        entry["status"] = status
        with LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        if status == 200:
            with LOCK:
                STATE["served"] += 1
        self._send(status, reply, headers)

    def decide(self, n: int, rf: dict[str, Any], msgs: list[dict[str, Any]], entry: dict[str, Any]
               ) -> tuple[int, Any, dict[str, str]]:
        if ARGS.api_key and self.headers.get("Authorization") != f"Bearer {ARGS.api_key}":
            return 401, {"error": {"message": "invalid API key"}}, {}
        if n <= ARGS.fail_first:
            return ARGS.fail_status, {"error": {"message": f"busy ({ARGS.fail_status})"}}, {"Retry-After": "0"}
        pixels = sum(w * h for _, w, h in entry["images"])
        if ARGS.max_image_pixels and pixels > ARGS.max_image_pixels:  # vLLM's words when a prompt is too long
            return 400, {"object": "error", "type": "BadRequestError", "code": 400, "message":
                         f"The decoder prompt (length {pixels // 784 + 900}) is longer than the maximum model "
                         f"length of {ARGS.max_image_pixels // 784 + 900}. Make sure that `max_model_len` is no "
                         "smaller than the number of text tokens plus multimodal tokens."}, {}
        if rf.get("type") == "json_schema" and ARGS.refuse_json_schema:
            return 400, {"error": {"message": "response_format type 'json_schema' is not supported"}}, {}
        if rf.get("type") == "json_object" and ARGS.refuse_json_object:
            return 400, {"object": "error", "message": "Unknown response_format type json_object"}, {}
        if ARGS.delay:
            time.sleep(ARGS.delay)
        text = text_of(msgs)
        reasoning = None
        if entry["summary"]:
            answer = "A test invoice. " + " ".join(re.findall(r"Invoice no:\s*\S+", text))
        elif ARGS.garbage:
            answer = "<<garbage>> not json {{{ at all"
        elif ARGS.invalid_first and not entry["repair"]:
            answer = json.dumps({"invoice_number": "X", "invoice_date": "yesterday"})
        else:
            schema = (rf.get("json_schema") or {}).get("schema") or _schema_in_prompt(text)
            answer = json.dumps(fill(schema, text))
            if rf.get("type") is None:
                answer = "Here is the JSON you asked for:\n```json\n" + answer + "\n```"
        if ARGS.thinking:
            think = (entry["chat_template_kwargs"] or {}).get("enable_thinking")
            if think and ARGS.thinking == "field":
                reasoning = "I looked at the page carefully."
            elif think:
                answer = "<think>I looked at the page carefully.</think>" + answer
        msg: dict[str, Any] = {"role": "assistant", "content": answer}
        if reasoning:
            msg["reasoning_content"] = reasoning
        return 200, {"id": f"c{n}", "object": "chat.completion", "model": ARGS.model,
                     "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}, {}


def _schema_in_prompt(text: str) -> dict[str, Any]:
    """JSON-mode and prompt-only requests carry the schema in the instructions (a line after the header)."""
    m = re.search(r"JSON Schema of the answer:\n(\{.*)", text, re.S)
    if not m:
        return {}
    try:
        return json.JSONDecoder().raw_decode(m.group(1))[0]
    except ValueError:
        return {}


def main() -> None:
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", default=os.devnull)
    p.add_argument("--model", default="fault-model")
    p.add_argument("--api-key", default=None)
    p.add_argument("--refuse-json-schema", action="store_true")
    p.add_argument("--refuse-json-object", action="store_true")
    p.add_argument("--fail-first", type=int, default=0, help="answer the first N chat requests with --fail-status")
    p.add_argument("--fail-status", type=int, default=429)
    p.add_argument("--delay", type=float, default=0.0, help="seconds to think before answering")
    p.add_argument("--garbage", action="store_true")
    p.add_argument("--invalid-first", action="store_true", help="first answer breaks the schema; repair fixes it")
    p.add_argument("--die-after", type=int, default=0, help="exit abruptly after serving N chat completions")
    p.add_argument("--thinking", choices=["", "field", "inline"], default="")
    p.add_argument("--decode-images", action="store_true")
    p.add_argument("--max-image-pixels", type=int, default=0,
                   help="answer 400 'longer than the maximum model length' when a request's images hold more")
    ARGS = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    ARGS.port_bound = server.server_address[1]
    print(f"PORT {ARGS.port_bound}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


ARGS: Any = None

if __name__ == "__main__":
    sys.exit(main())
