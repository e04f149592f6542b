"""Local stand-ins for upstreams that cannot be reached from here, speaking their documented wire formats: an
OpenAI-compatible server (also serves as OpenRouter, with its priced `/models`), Anthropic's Messages API and
Ollama's `/api/chat`. Each answers every chat with one tool call (`get_weather`, arguments `CALL_ARGUMENTS`), whole or
streamed; streamed answers send the call's arguments in several pieces, as the real services do."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CALL_NAME = "get_weather"
CALL_ARGUMENTS = {"city": "Paris", "unit": "celsius"}
ARGUMENT_TEXT = json.dumps(CALL_ARGUMENTS)
# The arguments in three pieces, cut inside strings as streams cut them.
PIECES = [ARGUMENT_TEXT[:9], ARGUMENT_TEXT[9:21], ARGUMENT_TEXT[21:]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

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

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        if self.path.endswith("/models"):
            self._json(200, {"object": "list", "data": [
                {"id": "tooler", "object": "model", "pricing": {"prompt": "0", "completion": "0"}}]})
        elif self.path == "/api/tags":
            self._json(200, {"models": [{"name": "tooler", "model": "tooler", "size": 1}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        body = self._body()
        self.server.requests.append((self.path, body))
        stream = bool(body.get("stream"))
        if self.path.endswith("/chat/completions"):
            self._openai(body, stream)
        elif self.path.endswith("/v1/messages"):
            self._anthropic(stream)
        elif self.path == "/api/chat":
            self._ollama(stream)
        else:
            self._json(404, {"error": {"message": "not found"}})

    def _openai(self, body: dict, stream: bool) -> None:
        base = {"id": "chatcmpl-standin", "created": 1, "model": body.get("model", "tooler")}
        if not stream:
            self._json(200, {**base, "object": "chat.completion", "choices": [{
                "index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_standin1", "type": "function", "function": {"name": CALL_NAME, "arguments": ARGUMENT_TEXT}}]}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}})
            return

        def chunk(delta: dict, finish=None) -> bytes:
            c = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return b"data: " + json.dumps(c).encode() + b"\n\n"

        pieces = [chunk({"role": "assistant", "content": None}),
                  chunk({"tool_calls": [{"index": 0, "id": "call_standin1", "type": "function",
                                         "function": {"name": CALL_NAME, "arguments": ""}}]})]
        pieces += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in PIECES]
        pieces.append(chunk({}, "tool_calls"))
        pieces.append(b"data: " + json.dumps({**base, "object": "chat.completion.chunk", "choices": [],
                                              "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}).encode() + b"\n\n")
        pieces.append(b"data: [DONE]\n\n")
        self._stream("text/event-stream", pieces)

    def _anthropic(self, stream: bool) -> None:
        if not stream:
            self._json(200, {"id": "msg_standin", "type": "message", "role": "assistant", "model": "tooler",
                             "content": [{"type": "tool_use", "id": "toolu_standin1", "name": CALL_NAME, "input": CALL_ARGUMENTS}],
                             "stop_reason": "tool_use", "stop_sequence": None,
                             "usage": {"input_tokens": 12, "output_tokens": 7}})
            return

        def event(kind: str, data: dict) -> bytes:
            return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

        pieces = [
            event("message_start", {"type": "message_start", "message": {"id": "msg_standin", "type": "message", "role": "assistant",
                                                                        "content": [], "model": "tooler", "usage": {"input_tokens": 12, "output_tokens": 1}}}),
            event("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "tool_use", "id": "toolu_standin1", "name": CALL_NAME, "input": {}}}),
        ]
        pieces += [event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "input_json_delta", "partial_json": p}}) for p in PIECES]
        pieces += [
            event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                                    "usage": {"output_tokens": 7}}),
            event("message_stop", {"type": "message_stop"}),
        ]
        self._stream("text/event-stream", pieces)

    def _ollama(self, stream: bool) -> None:
        call = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": CALL_NAME, "arguments": CALL_ARGUMENTS}}]}
        done = {"model": "tooler", "created_at": "2026-01-01T00:00:00Z", "done": True, "done_reason": "stop",
                "prompt_eval_count": 12, "eval_count": 7}
        if not stream:
            self._json(200, {**done, "message": call})
            return
        lines = [json.dumps({"model": "tooler", "created_at": "2026-01-01T00:00:00Z", "message": call, "done": False}).encode() + b"\n",
                 json.dumps({**done, "message": {"role": "assistant", "content": ""}}).encode() + b"\n"]
        self._stream("application/x-ndjson", lines)


class StandIn:
    """The stand-in on a free loopback port, in a thread; `requests` lists (path, body) of each POST."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.requests = []
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def requests(self) -> list:
        return self.server.requests

    def __enter__(self) -> "StandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
