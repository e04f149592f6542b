"""Thinking carried both ways through Switchyard to an Anthropic upstream (a local stand-in speaking the Messages API
with extended thinking): the upstream's signed thinking reaches the client (`thinking` blocks with their signature
through the `anthropic` SDK, reasoning items with `encrypted_content` through the `openai` SDK's Responses API), and
when the client goes on with the tool loop, the upstream gets the same thinking block back, signature unchanged — what
Anthropic requires in a tool loop with thinking on, and what gateways that drop thinking blocks break.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import pytest
from openai import OpenAI
from support import free_port, serve, stop, switchyard_binary

THOUGHT = "The user asks for the weather; I should call the tool."
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgw"
TOOL = {"name": "get_weather", "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


class _Upstream(BaseHTTPRequestHandler):
    """Anthropic's Messages API with thinking on: a first turn thinks (signed) and calls the tool; a turn that brings
    a tool result answers with text. Streamed or whole, as asked."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        self.server.bodies.append(body)
        last = body["messages"][-1]
        answered = isinstance(last["content"], list) and any(b.get("type") == "tool_result" for b in last["content"])
        if answered:
            blocks = [{"type": "text", "text": "It is sunny in Paris."}]
            reason = "end_turn"
        else:
            blocks = [{"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE},
                      {"type": "tool_use", "id": "toolu_think1", "name": "get_weather", "input": {"city": "Paris"}}]
            reason = "tool_use"
        if not body.get("stream"):
            data = json.dumps({"id": "msg_up", "type": "message", "role": "assistant", "model": body["model"],
                               "content": blocks, "stop_reason": reason, "stop_sequence": None,
                               "usage": {"input_tokens": 20, "output_tokens": 10}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        events = [("message_start", {"type": "message_start", "message": {
            "id": "msg_up", "type": "message", "role": "assistant", "content": [], "model": body["model"],
            "usage": {"input_tokens": 20, "output_tokens": 1}}})]
        for i, b in enumerate(blocks):
            if b["type"] == "thinking":
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
                for piece in (THOUGHT[:20], THOUGHT[20:]):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                           "delta": {"type": "thinking_delta", "thinking": piece}}))
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "signature_delta", "signature": SIGNATURE}}))
            elif b["type"] == "tool_use":
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {**b, "input": {}}}))
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "input_json_delta", "partial_json": json.dumps(b["input"])}}))
            else:
                events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                       "content_block": {"type": "text", "text": ""}}))
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "text_delta", "text": b["text"]}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
                                         "usage": {"output_tokens": 10}}))
        events.append(("message_stop", {"type": "message_stop"}))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data in events:
            chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def gateway():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    upstream.bodies = []
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    binary = switchyard_binary()
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "config")
        os.makedirs(config)
        with open(os.path.join(config, "models.yaml"), "w") as f:
            f.write(f"""
providers:
  claude: {{ type: anthropic, base_url: "http://127.0.0.1:{upstream.server_address[1]}", api_key_env: THINK_TEST_KEY }}
models:
  thinker: {{ deployments: [ {{provider: claude, model: claude-test}} ] }}
""")
        env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "db.sqlite"), SWITCHYARD_CONFIG=config,
                   THINK_TEST_KEY="sk-ant-test")
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        port = free_port()
        proc = serve(binary, env, port, os.path.join(tmp, "serve.log"))
        try:
            yield {"url": f"http://127.0.0.1:{port}", "bodies": upstream.bodies}
        finally:
            stop(proc)
            upstream.shutdown()


def _sent_back(body) -> list:
    """The thinking blocks of the assistant turns in a request the upstream got."""
    return [b for m in body["messages"] if m["role"] == "assistant" and isinstance(m["content"], list)
            for b in m["content"] if b["type"] in {"thinking", "redacted_thinking"}]


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_anthropic_sdk_tool_loop_keeps_the_signed_thinking(gateway, streamed):
    client = anthropic.Anthropic(base_url=gateway["url"], api_key="unused", max_retries=0, timeout=60)
    question = {"role": "user", "content": "What is the weather in Paris?"}
    kwargs = dict(model="thinker", max_tokens=256, tools=[TOOL], messages=[question])
    if streamed:
        with client.messages.stream(**kwargs) as stream:
            first = stream.get_final_message()
    else:
        first = client.messages.create(**kwargs)
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert first.content[0].thinking == THOUGHT and first.content[0].signature == SIGNATURE
    call = first.content[1]
    before = len(gateway["bodies"])
    second = client.messages.create(model="thinker", max_tokens=256, tools=[TOOL], messages=[
        question, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}]}])
    assert second.content[0].text == "It is sunny in Paris."
    sent = gateway["bodies"][before]
    assert _sent_back(sent) == [{"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}]
    turn = next(m for m in sent["messages"] if m["role"] == "assistant")
    assert [b["type"] for b in turn["content"]] == ["thinking", "tool_use"], "thinking comes before the call"


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_responses_api_carries_the_signature_as_encrypted_content(gateway, streamed):
    client = OpenAI(base_url=gateway["url"] + "/v1", api_key="unused", max_retries=0, timeout=60)
    tools = [{"type": "function", "name": TOOL["name"], "description": TOOL["description"], "parameters": TOOL["input_schema"]}]
    kwargs = dict(model="thinker", input="What is the weather in Paris?", tools=tools, max_output_tokens=256)
    if streamed:
        with client.responses.stream(**kwargs) as stream:
            first = stream.get_final_response()
    else:
        first = client.responses.create(**kwargs)
    assert [o.type for o in first.output] == ["reasoning", "function_call"]
    assert first.output[0].content[0].text == THOUGHT and first.output[0].encrypted_content == SIGNATURE
    before = len(gateway["bodies"])
    second = client.responses.create(model="thinker", previous_response_id=first.id, tools=tools, max_output_tokens=256,
                                     input=[{"type": "function_call_output", "call_id": first.output[1].call_id,
                                             "output": "Sunny, 21 C"}])
    assert second.output_text == "It is sunny in Paris."
    assert _sent_back(gateway["bodies"][before]) == [{"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}]
