"""Anthropic's Messages API on Switchyard, driven by the official `anthropic` Python SDK (what Claude Code and tools
written for Anthropic use): whole and streamed messages with the exact event sequence, `client.messages.stream()` and
`get_final_message()`, system as a string and as blocks, stop sequences, a tool round trip (tool_use →
tool_result), errors in Anthropic's shape, `count_tokens`, and the key as `x-api-key`.
"""

from __future__ import annotations

import json
import os

import anthropic
import httpx
import pytest

MODEL = "smollm2"
TOOLS = [{
    "name": "add", "description": "Adds two integers.",
    "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                     "required": ["a", "b"], "additionalProperties": False},
}]


@pytest.fixture(scope="module")
def url() -> str:
    value = os.environ.get("SWITCHYARD_URL", "").strip()
    if not value:
        pytest.fail("SWITCHYARD_URL is not set: run these tests through Tests/clients/run.sh")
    return value.rstrip("/")


@pytest.fixture(scope="module")
def client(url) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0, timeout=300)


def test_whole_message(client):
    m = client.messages.create(model=MODEL, max_tokens=12, temperature=0, system="You are terse.",
                               messages=[{"role": "user", "content": "Name a color."}])
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_")
    assert m.stop_reason in {"end_turn", "max_tokens"}
    assert [b.type for b in m.content] == ["text"] and m.content[0].text
    assert 0 < m.usage.output_tokens <= 12 and m.usage.input_tokens > 0


def test_stream_event_sequence_and_final_message(client):
    kwargs = dict(model=MODEL, max_tokens=12, temperature=0, messages=[{"role": "user", "content": "Name a color."}],
                  system=[{"type": "text", "text": "You are terse."}])
    whole = client.messages.create(**kwargs)
    with client.messages.stream(**kwargs) as stream:
        types = [e.type for e in stream]
        final = stream.get_final_message()
    # message_start, one text block, then the end (the SDK does not pass `ping` on; the raw stream has it).
    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    blocks = [t for t in types if t.startswith("content_block")]
    assert blocks[0] == "content_block_start" and blocks[-1] == "content_block_stop"
    assert set(blocks[1:-1]) <= {"content_block_delta"} and len(blocks) >= 3
    assert final.content[0].text == whole.content[0].text, "greedy: streamed equals whole"
    assert final.stop_reason == whole.stop_reason and final.usage.output_tokens == whole.usage.output_tokens


def test_raw_event_stream(url):
    with httpx.stream("POST", f"{url}/v1/messages", headers={"x-api-key": "unused", "anthropic-version": "2023-06-01"},
                      json={"model": MODEL, "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
                      timeout=300) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        names = [line[7:] for line in r.iter_lines() if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]


def test_stop_sequences(client):
    m = client.messages.create(model=MODEL, max_tokens=40, temperature=0, stop_sequences=["."],
                               messages=[{"role": "user", "content": "Say two sentences about cats."}])
    assert "." not in m.content[0].text


def test_tool_round_trip(client):
    messages = [{"role": "user", "content": "What is 2 plus 3?"}]
    m = client.messages.create(model=MODEL, max_tokens=100, temperature=0, tools=TOOLS,
                               tool_choice={"type": "tool", "name": "add", "disable_parallel_tool_use": True},
                               messages=messages)
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "add" and set(uses[0].input) == {"a", "b"}
    messages.append({"role": "assistant", "content": [b.model_dump() for b in m.content]})
    messages.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": uses[0].id, "content": str(uses[0].input["a"] + uses[0].input["b"])}]})
    reply = client.messages.create(model=MODEL, max_tokens=30, temperature=0, tools=TOOLS,
                                   tool_choice={"type": "none"}, messages=messages)
    assert reply.stop_reason in {"end_turn", "max_tokens"} and reply.content[0].type == "text"


def test_streamed_tool_use_json_deltas(client):
    with client.messages.stream(model=MODEL, max_tokens=100, temperature=0, tools=TOOLS,
                                tool_choice={"type": "any", "disable_parallel_tool_use": True},
                                messages=[{"role": "user", "content": "Add 4 and 5."}]) as stream:
        deltas = [e for e in stream if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
        final = stream.get_final_message()
    assert len(deltas) > 1, "the input streams in pieces"
    use = [b for b in final.content if b.type == "tool_use"][0]
    assert json.loads("".join(d.delta.partial_json for d in deltas)) == use.input


def test_errors_are_anthropic_shaped(client, url):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="}}]}])
    assert e.value.body["error"]["type"] == "invalid_request_error" and "image" in e.value.body["error"]["message"]
    r = httpx.post(f"{url}/v1/messages", json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
                   headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("max_tokens")


def test_count_tokens(client):
    short = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    longer = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hi there, how are you today?"}])
    assert 0 < short.input_tokens < longer.input_tokens
    m = client.messages.create(model=MODEL, max_tokens=1, messages=[{"role": "user", "content": "Hi"}])
    assert m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0) == short.input_tokens
