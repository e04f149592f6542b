"""Tool calls from local models, with the official `openai` SDK as the client: a full agent loop (the model calls a
function, the client answers with `role: tool`, the model answers) with `tool_choice: required`, then `auto`;
a named function is the one called; `tool_choice: none` gives text; streamed calls arrive as
`delta.tool_calls` pieces with one id, and join into the same call as the whole answer.

The models are small (`smollm2`, `gemma3-270m`): their templates have no tool syntax of their own, so the
generic format applies (the answer is one JSON object, constrained). One call per turn (`parallel_tool_calls: false`): offered a list, these
small models keep adding calls until the token limit. Content is never checked, only structure:
a forced call names an offered function and its arguments validate against its schema.
"""

from __future__ import annotations

import json
import os

import jsonschema
import pytest
from openai import OpenAI

MODELS = ["smollm2", "gemma3-270m"]

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 40}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Adds two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
    },
}
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, ADD)}


@pytest.fixture(scope="module")
def client() -> OpenAI:
    url = os.environ.get("SWITCHYARD_URL", "").strip()
    if not url:
        pytest.fail("SWITCHYARD_URL is not set: run these tests through Tests/clients/run.sh")
    return OpenAI(base_url=url.rstrip("/") + "/v1", api_key="unused", max_retries=0, timeout=300)


def check_call(call, names=None) -> dict:
    assert call.type == "function"
    assert call.id and call.id.startswith("call_")
    assert call.function.name in (names or SCHEMAS)
    args = json.loads(call.function.arguments)
    jsonschema.validate(args, SCHEMAS[call.function.name])
    return args


@pytest.mark.parametrize("model", MODELS)
def test_agent_loop_required_then_auto(client: OpenAI, model: str):
    messages = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
    # One call per turn: these small models, offered a list, keep adding calls until the token limit.
    first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER, ADD],
                                           tool_choice="required", parallel_tool_calls=False, temperature=0, max_tokens=120)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    assert choice.message.tool_calls, choice.message
    for call in choice.message.tool_calls:
        check_call(call)
    # The client runs the function and answers; the model continues with the result in its context.
    messages.append(choice.message.model_dump(exclude_none=True))
    for call in choice.message.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 18, "sky": "clear"})})
    second = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER, ADD],
                                            tool_choice="auto", parallel_tool_calls=False, temperature=0, max_tokens=120)
    c2 = second.choices[0]
    # `auto`: either an answer or another call, well formed either way.
    if c2.finish_reason == "tool_calls":
        for call in c2.message.tool_calls:
            check_call(call)
    else:
        assert c2.finish_reason == "stop", c2
        assert c2.message.tool_calls is None
        assert isinstance(c2.message.content, str) and c2.message.content.strip()
        assert '"response"' not in c2.message.content and '"tool_call' not in c2.message.content


def test_named_function_is_the_one_called(client: OpenAI):
    r = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "What is the weather in Oslo?"}],
                                       tools=[WEATHER, ADD], tool_choice={"type": "function", "function": {"name": "add"}},
                                       parallel_tool_calls=False, temperature=0, max_tokens=80)
    calls = r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "tool_calls" and len(calls) == 1
    check_call(calls[0], names={"add"})


def test_tool_choice_none_gives_text(client: OpenAI):
    r = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Say hello."}],
                                       tools=[WEATHER], tool_choice="none", temperature=0, max_tokens=20)
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].finish_reason in {"stop", "length"}
    assert r.choices[0].message.content


def test_streamed_call_matches_the_whole_answer(client: OpenAI):
    kwargs = dict(model="smollm2", messages=[{"role": "user", "content": "Add 2 and 3."}], tools=[WEATHER, ADD],
                  tool_choice="required", parallel_tool_calls=False, temperature=0, max_tokens=100, seed=7)
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls
    pieces: dict[int, dict] = {}
    finish = None
    chunks = 0
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        assert not delta.content, f"call markup leaked into content: {delta.content!r}"
        for tc in delta.tool_calls or []:
            chunks += 1
            p = pieces.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            if tc.id:
                assert p["id"] in (None, tc.id), "the id changed within the stream"
                p["id"] = tc.id
            if tc.function and tc.function.name:
                p["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                p["arguments"] += tc.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert chunks > len(pieces), "the arguments did not stream in pieces"
    streamed = [pieces[i] for i in sorted(pieces)]
    assert [(p["name"], json.loads(p["arguments"])) for p in streamed] == \
           [(c.function.name, json.loads(c.function.arguments)) for c in whole]
    assert all(p["id"] and p["id"].startswith("call_") for p in streamed)


def test_unknown_named_function_is_refused(client: OpenAI):
    import openai
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Hi"}], tools=[WEATHER],
                                       tool_choice={"type": "function", "function": {"name": "nope"}})
    assert "nope" in str(e.value)


def test_native_api_takes_a_grammar_and_tools():
    import httpx
    url = os.environ["SWITCHYARD_URL"].rstrip("/")
    r = httpx.post(f"{url}/api/v1/chat", timeout=300, json={
        "model": "smollm2", "messages": [{"role": "user", "content": "Is water wet?"}], "temperature": 0,
        "grammar": 'root ::= ("yes" | "no") "."'})
    assert r.status_code == 200, r.text
    assert r.json()["response"] in {"yes.", "no."}
    r = httpx.post(f"{url}/api/v1/chat", timeout=300, json={
        "model": "smollm2", "messages": [{"role": "user", "content": "Add 1 and 2."}], "temperature": 0,
        "tools": [ADD], "tool_choice": "required", "parallel_tool_calls": False})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["finish_reason"] == "tool_calls" and len(body["tool_calls"]) == 1
    jsonschema.validate(json.loads(body["tool_calls"][0]["function"]["arguments"]), SCHEMAS["add"])
    bad = httpx.post(f"{url}/api/v1/generate", timeout=60, json={"model": "smollm2", "prompt": "x", "grammar": "root ::= nothing"})
    assert bad.status_code == 400 and "nothing" in bad.text
