"""Conversational stand-ins for upstreams that cannot be reached from here, speaking their documented wire formats:
Anthropic's Messages API (`POST /v1/messages`, whole or streamed as server-sent events in the documented order) and
Ollama's native API (`POST /api/chat`, whole or streamed as NDJSON; `GET /api/tags`).

Unlike `standins.py` (which answers every chat with a tool call), these hold a conversation:

- the last message carries a tool result → a text answer that quotes the result (`RESULT_PREFIX` + its content),
  so a test can see that the result made the whole round trip;
- the request offers tools and the last message is the user's → one call of the first tool offered, with
  `CALL_ARGUMENTS` (Anthropic: after a short text block, as Claude often answers);
- otherwise → `TEXT`, streamed in several pieces.

Requests are checked as the real services check them (400 with the service's error shape when they would refuse
one), and every request is recorded in `requests` (path, body, headers, the usage answered) so that tests can
assert what arrived.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEXT = "Hello from the stand-in"
TEXT_PIECES = ["Hello", " from", " the", " stand-in"]
RESULT_PREFIX = "The tool answered: "
CALL_ARGUMENTS = {"city": "Paris"}
ARGUMENT_TEXT = json.dumps(CALL_ARGUMENTS)
# Streams send the arguments in pieces cut inside the JSON, as the real services do.
ARGUMENT_PIECES = ["", ARGUMENT_TEXT[:5], ARGUMENT_TEXT[5:11], ARGUMENT_TEXT[11:]]
PREAMBLE = "Let me check."
ANTHROPIC_CALL_ID = "toolu_01StandInCall"
MODEL_TAG = "standin:latest"


def _words(value) -> int:
    """A rough token count of anything JSON: its words."""
    return max(1, len(json.dumps(value).split()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    # MARK: plumbing

    def _json(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, content_type: str, pieces: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for p in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _body(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def do_GET(self):
        if self.path == "/api/tags":
            self._json(200, {"models": [{"name": MODEL_TAG, "model": MODEL_TAG, "modified_at": "2026-01-01T00:00:00Z",
                                         "size": 1000, "digest": "0" * 64,
                                         "details": {"format": "gguf", "family": "standin", "parameter_size": "1M",
                                                     "quantization_level": "Q4_0"}}]})
        elif self.path == "/v1/models":
            self._json(200, {"data": [{"type": "model", "id": "claude-standin", "display_name": "Stand-in"}],
                             "has_more": False, "first_id": "claude-standin", "last_id": "claude-standin"})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self):
        body = self._body()
        self.record = {"path": self.path, "body": body, "headers": {k.lower(): v for k, v in self.headers.items()},
                       "usage": None}
        with self.server.lock:
            self.server.requests.append(self.record)
        if self.path == "/v1/messages":
            self._anthropic(body)
        elif self.path == "/api/chat":
            self._ollama(body)
        else:
            self._json(404, {"error": "not found"})

    # MARK: Anthropic Messages

    def _anthropic_error(self, message: str) -> None:
        self._json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})

    def _anthropic_check(self, body) -> str | None:
        """What Anthropic's API would refuse in this body (a subset of its checks), or None."""
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        if self.headers.get("anthropic-version") is None:
            return "anthropic-version: header is required"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: Field required"
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            return "max_tokens: Field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        if "system" in body and not isinstance(body["system"], (str, list)):
            return "system: Input should be a valid string or list"
        if any(m.get("role") == "system" for m in messages if isinstance(m, dict)):
            return "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter"
        previous_calls: set[str] = set()
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
            if i == 0 and m["role"] != "user":
                return "messages: first message must use the \"user\" role"
            if i > 0 and messages[i - 1].get("role") == m["role"]:
                return "messages: roles must alternate between \"user\" and \"assistant\""
            content = m.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(blocks, list):
                return f"messages.{i}.content: Input should be a valid list"
            calls_here: set[str] = set()
            for j, b in enumerate(blocks):
                kind = b.get("type") if isinstance(b, dict) else None
                if kind == "text":
                    if not isinstance(b.get("text"), str) or not b["text"]:
                        return f"messages.{i}.content.{j}.text: text content blocks must be non-empty"
                elif kind == "tool_use":
                    if m["role"] != "assistant":
                        return f"messages.{i}.content.{j}: tool_use blocks are only allowed in assistant messages"
                    if not isinstance(b.get("input"), dict) or not b.get("id") or not b.get("name"):
                        return f"messages.{i}.content.{j}: tool_use needs id, name and an input object"
                    calls_here.add(b["id"])
                elif kind == "tool_result":
                    if m["role"] != "user":
                        return f"messages.{i}.content.{j}: tool_result blocks are only allowed in user messages"
                    if b.get("tool_use_id") not in previous_calls:
                        return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                                f"{b.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` "
                                "block in the previous message.")
                else:
                    return f"messages.{i}.content.{j}.type: unknown block type {kind!r}"
            kinds = [b.get("type") for b in blocks]
            results_at = [k for k, v in enumerate(kinds) if v == "tool_result"]
            if results_at and "text" in kinds and kinds.index("text") < results_at[-1]:
                return f"messages.{i}: tool_result blocks must come first in the content, before any text"
            answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if previous_calls - answered:
                return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                        f"{', '.join(sorted(previous_calls - answered))}")
            previous_calls = calls_here
            if any(isinstance(b, dict) and b.get("type") == "tool_use" for b in blocks) and not body.get("tools"):
                return "Requests which include `tool_use` or `tool_result` blocks must define tools."
        for k, t in enumerate(body.get("tools") or []):
            if not isinstance(t, dict) or not t.get("name") or not isinstance(t.get("input_schema"), dict):
                return f"tools.{k}: name and input_schema are required"
        choice = body.get("tool_choice")
        if choice is not None and (not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")):
            return "tool_choice: Input should be auto, any, tool or none"
        return None

    def _anthropic(self, body) -> None:
        problem = self._anthropic_check(body)
        if problem:
            self._anthropic_error(problem)
            return
        last = body["messages"][-1]
        last_blocks = last["content"] if isinstance(last["content"], list) else []
        results = [b for b in last_blocks if b.get("type") == "tool_result"]
        choice = (body.get("tool_choice") or {}).get("type")
        if results:
            content = results[0].get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content)
            blocks = [{"type": "text", "text": RESULT_PREFIX + str(content)}]
            stop = "end_turn"
        elif body.get("tools") and last["role"] == "user" and choice != "none":
            tool = body["tools"][0]["name"]
            if choice == "tool":
                tool = body["tool_choice"]["name"]
            blocks = [{"type": "text", "text": PREAMBLE},
                      {"type": "tool_use", "id": ANTHROPIC_CALL_ID, "name": tool, "input": CALL_ARGUMENTS}]
            stop = "tool_use"
        else:
            blocks = [{"type": "text", "text": TEXT}]
            stop = "end_turn"
        input_tokens = _words(body["messages"]) + _words(body.get("system", ""))
        output_tokens = sum(_words(b) for b in blocks)
        self.record["usage"] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        message = {"id": "msg_01StandIn", "type": "message", "role": "assistant", "model": body["model"],
                   "content": blocks, "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        if not body.get("stream"):
            self._json(200, message)
            return

        def event(kind: str, data: dict) -> bytes:
            return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

        # The documented sequence: message_start, then per block content_block_start / _delta… / _stop (a ping
        # among them), message_delta with the stop reason and the final usage, message_stop.
        start = {**message, "content": [], "stop_reason": None,
                 "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
        out = [event("message_start", {"type": "message_start", "message": start})]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                out.append(event("content_block_start", {"type": "content_block_start", "index": index,
                                                         "content_block": {"type": "text", "text": ""}}))
                if index == 0:
                    out.append(event("ping", {"type": "ping"}))
                text = block["text"]
                pieces = TEXT_PIECES if text == TEXT else [text[:len(text) // 2], text[len(text) // 2:]]
                for p in pieces:
                    out.append(event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                             "delta": {"type": "text_delta", "text": p}}))
            else:
                out.append(event("content_block_start", {"type": "content_block_start", "index": index,
                                                         "content_block": {"type": "tool_use", "id": block["id"],
                                                                           "name": block["name"], "input": {}}}))
                for p in ARGUMENT_PIECES:
                    out.append(event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                             "delta": {"type": "input_json_delta", "partial_json": p}}))
            out.append(event("content_block_stop", {"type": "content_block_stop", "index": index}))
        out.append(event("message_delta", {"type": "message_delta",
                                           "delta": {"stop_reason": stop, "stop_sequence": None},
                                           "usage": {"output_tokens": output_tokens}}))
        out.append(event("message_stop", {"type": "message_stop"}))
        self._stream("text/event-stream", out)

    # MARK: Ollama

    def _ollama_check(self, body) -> str | None:
        if not isinstance(body, dict):
            return "invalid request body"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model is required"
        if body["model"] not in (MODEL_TAG, MODEL_TAG.split(":")[0]):
            return f"model '{body['model']}' not found"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages are required"
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
                return f"messages[{i}]: invalid role"
            if not isinstance(m.get("content", ""), str):
                return f"messages[{i}].content: must be a string"
            for call in m.get("tool_calls") or []:
                if not isinstance(call.get("function", {}).get("arguments"), dict):
                    return f"messages[{i}].tool_calls: arguments must be an object"
        if "options" in body and not isinstance(body["options"], dict):
            return "options must be an object"
        return None

    def _ollama(self, body) -> None:
        problem = self._ollama_check(body)
        if problem:
            self._json(400, {"error": problem})
            return
        last = body["messages"][-1]
        model = body["model"]
        calls = None
        if last["role"] == "tool":
            text = RESULT_PREFIX + last.get("content", "")
            pieces = [text[:len(text) // 2], text[len(text) // 2:]]
        elif body.get("tools") and last["role"] == "user":
            text, pieces = "", []
            calls = [{"function": {"name": body["tools"][0]["function"]["name"], "arguments": CALL_ARGUMENTS}}]
        else:
            text, pieces = TEXT, TEXT_PIECES
        counts = {"total_duration": 5_000_000, "load_duration": 1_000, "prompt_eval_count": _words(body["messages"]),
                  "prompt_eval_duration": 1_000_000, "eval_count": max(1, len(pieces)) + (3 if calls else 0),
                  "eval_duration": 3_000_000}
        self.record["usage"] = {"prompt_eval_count": counts["prompt_eval_count"], "eval_count": counts["eval_count"]}
        created = "2026-01-01T00:00:00.000000Z"
        if not body.get("stream", True):
            message = {"role": "assistant", "content": text}
            if calls:
                message["tool_calls"] = calls
            self._json(200, {"model": model, "created_at": created, "message": message, "done": True,
                             "done_reason": "stop", **counts})
            return
        lines = [{"model": model, "created_at": created, "message": {"role": "assistant", "content": p}, "done": False}
                 for p in pieces]
        if calls:
            lines.append({"model": model, "created_at": created,
                          "message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": False})
        lines.append({"model": model, "created_at": created, "message": {"role": "assistant", "content": ""},
                      "done": True, "done_reason": "stop", **counts})
        self._stream("application/x-ndjson", [json.dumps(l).encode() + b"\n" for l in lines])


class ConversationalStandIn:
    """A stand-in on a free loopback port, in a thread, answering both `/v1/messages` and `/api/chat`; `requests`
    lists each POST in arrival order as {"path", "body", "headers" (names in lower case), "usage" (the token counts
    it answered with; None for a refused request)}."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.requests = []
        self.server.lock = threading.Lock()
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def requests(self) -> list:
        with self.server.lock:
            return list(self.server.requests)

    def bodies(self, path: str) -> list[dict]:
        """The bodies of the POSTs to `path` so far."""
        return [r["body"] for r in self.requests if r["path"] == path]

    def __enter__(self) -> "ConversationalStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
