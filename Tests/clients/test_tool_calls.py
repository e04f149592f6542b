"""Tool calls through the gateway, end to end, with the official `openai` SDK as the client.

One gateway (`switchyard serve --cache memory`) routes a model to each provider type — an OpenAI-compatible server,
Anthropic's Messages API, Ollama, OpenRouter (local stand-ins that speak each documented wire format and answer with a
tool call; see standins.py) — and one to a second `switchyard serve` that routes to the OpenAI-compatible stand-in.
For each, whole and streamed: the SDK gets `message.tool_calls` / `delta.tool_calls` with the call's id, name and
arguments, `finish_reason: "tool_calls"`; streamed calls arrive in pieces where the upstream sends pieces; a cached
answer replays the same calls; the native `/api/v1/chat` returns them too.
"""

from __future__ import annotations

import json
import os
import tempfile

import httpx
import pytest
from openai import OpenAI

from standins import CALL_ARGUMENTS, CALL_NAME, StandIn
from support import free_port, serve, stop, switchyard_binary

TOOLS = [{"type": "function", "function": {
    "name": CALL_NAME, "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city"]}}}]
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
# Model name → the id the upstream gave its call (Ollama gives none: the gateway numbers it).
MODELS = {
    "via-openai": "call_standin1",
    "via-anthropic": "toolu_standin1",
    "via-ollama": "call_0",
    "via-openrouter": "call_standin1",
    "via-switchyard": "call_standin1",
}
# Upstreams that stream a call's arguments in pieces (Ollama sends each call whole).
IN_PIECES = {"via-openai", "via-anthropic", "via-openrouter", "via-switchyard"}


@pytest.fixture(scope="module")
def gateway():
    binary = switchyard_binary()
    with StandIn() as standin, tempfile.TemporaryDirectory() as tmp:
        up = f"http://127.0.0.1:{standin.port}"
        inner_port, gw_port = free_port(), free_port()
        inner_config, gw_config = os.path.join(tmp, "inner"), os.path.join(tmp, "gw")
        os.makedirs(inner_config)
        os.makedirs(gw_config)
        with open(os.path.join(inner_config, "models.yaml"), "w") as f:
            f.write(f"providers:\n  stand: {{ type: openai-compatible, base_url: {up}/v1 }}\n"
                    f"models:\n  tools-b: {{ model: stand/tooler }}\n")
        with open(os.path.join(gw_config, "models.yaml"), "w") as f:
            f.write(f"""providers:
  oa: {{ type: openai-compatible, base_url: {up}/v1 }}
  an: {{ type: anthropic, base_url: {up}, api_key_env: STANDIN_KEY }}
  ol: {{ type: ollama, base_url: {up} }}
  orr: {{ type: openrouter, base_url: {up}/v1, api_key_env: STANDIN_KEY }}
  inner: {{ type: openai-compatible, base_url: http://127.0.0.1:{inner_port}/v1 }}
models:
  via-openai: {{ model: oa/tooler }}
  via-anthropic: {{ model: an/tooler }}
  via-ollama: {{ model: ol/tooler }}
  via-openrouter: {{ model: orr/tooler }}
  via-switchyard: {{ model: inner/tools-b }}
""")
        base_env = dict(os.environ, STANDIN_KEY="sk-standin")
        base_env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        inner_env = dict(base_env, SWITCHYARD_DATABASE=os.path.join(tmp, "inner.sqlite"), SWITCHYARD_CONFIG=inner_config)
        gw_env = dict(base_env, SWITCHYARD_DATABASE=os.path.join(tmp, "gw.sqlite"), SWITCHYARD_CONFIG=gw_config)
        procs = [serve(binary, inner_env, inner_port, os.path.join(tmp, "inner.log"))]
        try:
            procs.append(serve(binary, gw_env, gw_port, os.path.join(tmp, "gw.log"), "--cache", "memory"))
            yield {"url": f"http://127.0.0.1:{gw_port}", "standin": standin}
        finally:
            stop(*procs)


def _client(gateway) -> OpenAI:
    return OpenAI(base_url=gateway["url"] + "/v1", api_key="unused", max_retries=0, timeout=60)


def _check_call(call, model: str) -> None:
    assert call.id == MODELS[model], (model, call)
    assert call.type == "function"
    assert call.function.name == CALL_NAME
    assert json.loads(call.function.arguments) == CALL_ARGUMENTS


@pytest.mark.parametrize("model", list(MODELS))
def test_whole_answers_carry_the_tool_call(gateway, model):
    reply = _client(gateway).chat.completions.create(model=model, messages=MESSAGES, tools=TOOLS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content in (None, "")
    assert len(choice.message.tool_calls) == 1
    _check_call(choice.message.tool_calls[0], model)
    assert reply.usage.completion_tokens > 0


@pytest.mark.parametrize("model", list(MODELS))
def test_streamed_answers_carry_the_tool_call_in_pieces(gateway, model):
    stream = _client(gateway).chat.completions.create(model=model, messages=MESSAGES, tools=TOOLS, stream=True)
    pieces, finish, joined = 0, None, {}
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for piece in delta.tool_calls or []:
            pieces += 1
            call = joined.setdefault(piece.index, {"id": None, "name": "", "arguments": ""})
            if piece.id:
                assert call["id"] is None, "the id comes once, with the call's first piece"
                call["id"] = piece.id
                assert piece.type == "function"
            if piece.function and piece.function.name:
                call["name"] += piece.function.name
            if piece.function and piece.function.arguments:
                call["arguments"] += piece.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert list(joined) == [0]
    assert joined[0]["id"] == MODELS[model] and joined[0]["name"] == CALL_NAME
    assert json.loads(joined[0]["arguments"]) == CALL_ARGUMENTS
    if model in IN_PIECES:
        assert pieces > 2, f"{model}: {pieces} pieces; the upstream sent the arguments in three"


@pytest.mark.parametrize("model", ["via-openai", "via-anthropic"])
def test_the_sdk_stream_helper_assembles_the_call(gateway, model):
    with _client(gateway).chat.completions.stream(model=model, messages=MESSAGES, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    _check_call(final.choices[0].message.tool_calls[0], model)


def test_a_cached_answer_replays_its_tool_calls(gateway):
    client = _client(gateway)
    raws = [client.chat.completions.with_raw_response.create(model="via-anthropic", messages=MESSAGES, tools=TOOLS, temperature=0)
            for _ in range(2)]
    assert [r.headers.get("x-switchyard-cache") for r in raws] == ["miss", "hit"]
    first, second = (r.parse() for r in raws)
    assert first.id == second.id
    _check_call(second.choices[0].message.tool_calls[0], "via-anthropic")
    # Streamed: the hit replays the same events as the same chunks.
    body = {"model": "via-openai", "messages": MESSAGES, "tools": TOOLS, "temperature": 0, "stream": True}
    answers = [httpx.post(gateway["url"] + "/v1/chat/completions", json=body, timeout=60) for _ in range(2)]
    assert [a.headers.get("x-switchyard-cache") for a in answers] == ["miss", "hit"]
    assert answers[0].text == answers[1].text
    assert answers[1].text.count('"tool_calls"') > 2


def test_the_native_surface_returns_tool_calls(gateway):
    body = {"model": "via-openai", "messages": MESSAGES, "tools": TOOLS}
    whole = httpx.post(gateway["url"] + "/api/v1/chat", json=body, timeout=60)
    assert whole.status_code == 200, whole.text
    answer = whole.json()
    assert answer["finish_reason"] == "tool_calls"
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in answer["tool_calls"]] \
        == [("call_standin1", CALL_NAME, CALL_ARGUMENTS)]
    with httpx.stream("POST", gateway["url"] + "/api/v1/chat", json={**body, "stream": True}, timeout=60) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert lines[-1]["done"] is True and lines[-1]["finish_reason"] == "tool_calls"
    assert lines[-1]["tool_calls"][0]["function"]["name"] == CALL_NAME


def test_the_upstreams_received_the_tools(gateway):
    bodies = [body for _, body in gateway["standin"].requests]
    assert bodies and all(body.get("tools") for body in bodies)
