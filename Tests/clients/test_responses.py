"""OpenAI's Responses API on Switchyard, driven by the official `openai` SDK (`client.responses.create`,
`client.responses.stream()` with `get_final_response()`, `retrieve`, `delete`, `input_items.list`): the response
object, the semantic stream events in order, `max_output_tokens` giving `incomplete`, function tools with a round
trip both through `previous_response_id` and by sending the items again, `text.format` JSON Schema, refusals of what
cannot be expressed, and the state: stored responses read back, paged input items, deletion, keys that see only
their own responses, and a conversation that continues after the server restarts.
"""

from __future__ import annotations

import json
import os
import tempfile

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI
from support import create_keys, free_port, serve, stop, switchyard_binary

MODEL = "smollm2"
WEATHER = {"type": "function", "name": "get_weather", "description": "The current weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}


@pytest.fixture(scope="module")
def client() -> OpenAI:
    url = os.environ.get("SWITCHYARD_URL", "").strip()
    if not url:
        pytest.fail("SWITCHYARD_URL is not set: run these tests through Tests/clients/run.sh")
    return OpenAI(base_url=url.rstrip("/") + "/v1", api_key="unused", max_retries=0, timeout=300)


def test_whole_response(client):
    r = client.responses.create(model=MODEL, instructions="Be terse.", input="Name a color.", max_output_tokens=24,
                                temperature=0)
    assert r.id.startswith("resp_") and r.object == "response" and r.model == MODEL
    assert r.status in {"completed", "incomplete"} and r.error is None
    assert [o.type for o in r.output] == ["message"]
    message = r.output[0]
    assert message.role == "assistant" and message.status == "completed" and message.id.startswith("msg_")
    assert [c.type for c in message.content] == ["output_text"] and r.output_text == message.content[0].text != ""
    assert r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 24
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.instructions == "Be terse." and r.store is True and r.max_output_tokens == 24
    # Stored: read back as it was returned.
    assert client.responses.retrieve(r.id).model_dump() == r.model_dump()


def test_stream_events_in_order_and_final_equals_whole(client):
    kwargs = dict(model=MODEL, input="Name a color.", max_output_tokens=40, temperature=0)
    whole = client.responses.create(**kwargs)
    with client.responses.stream(**kwargs) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert deltas and types[4:4 + len(deltas)] == ["response.output_text.delta"] * len(deltas)
    end = "response.completed" if whole.status == "completed" else "response.incomplete"
    assert types[4 + len(deltas):] == ["response.output_text.done", "response.content_part.done",
                                       "response.output_item.done", end]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(d.delta for d in deltas) == final.output_text == whole.output_text, "greedy: streamed equals whole"
    assert events[0].response.status == "in_progress" and events[0].response.id == final.id
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_cut_by_max_output_tokens_is_incomplete(client):
    r = client.responses.create(model=MODEL, input="Tell me a long story about a lighthouse.", max_output_tokens=3,
                                temperature=0)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 3
    with client.responses.create(model=MODEL, input="Tell me a long story about a lighthouse.", max_output_tokens=3,
                                 temperature=0, stream=True) as stream:
        last = list(stream)[-1]
    assert last.type == "response.incomplete" and last.response.incomplete_details.reason == "max_output_tokens"


def _call(r):
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1, r.output
    return calls[0]


def test_tool_round_trip_through_previous_response_id(client):
    first = client.responses.create(model=MODEL, input="What is the weather in Paris?", tools=[WEATHER],
                                    tool_choice="required", parallel_tool_calls=False, max_output_tokens=60, temperature=0)
    call = _call(first)
    assert call.name == "get_weather" and call.id.startswith("fc_") and call.call_id and call.status == "completed"
    assert isinstance(json.loads(call.arguments)["city"], str)
    second = client.responses.create(model=MODEL, previous_response_id=first.id, tools=[WEATHER], tool_choice="none",
                                     input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}],
                                     max_output_tokens=24, temperature=0)
    assert second.previous_response_id == first.id and second.output_text
    items = client.responses.input_items.list(second.id, order="asc").data
    assert [i.type for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1].call_id == items[2].call_id == call.call_id and items[2].output == "Sunny, 21 C"


def test_tool_round_trip_without_storing(client):
    """The stateless way: `store: false`, and the client sends the whole conversation again; it reaches the model as
    the same conversation as through `previous_response_id` (greedy: the same answer)."""
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    unstored = client.responses.create(model=MODEL, input=question, tools=[WEATHER], tool_choice="required",
                                       parallel_tool_calls=False, store=False, max_output_tokens=60, temperature=0)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    first = client.responses.create(model=MODEL, input=question, tools=[WEATHER], tool_choice="required",
                                    parallel_tool_calls=False, max_output_tokens=60, temperature=0)
    result = {"type": "function_call_output", "call_id": _call(first).call_id, "output": "Sunny, 21 C"}
    again = question + [o.model_dump(exclude_none=True) for o in first.output] + [result]
    resent = client.responses.create(model=MODEL, input=again, tools=[WEATHER], tool_choice="none", store=False,
                                     max_output_tokens=24, temperature=0)
    chained = client.responses.create(model=MODEL, previous_response_id=first.id, tools=[WEATHER], tool_choice="none",
                                      input=[result], max_output_tokens=24, temperature=0)
    assert resent.output_text == chained.output_text != ""


def test_streamed_function_call(client):
    with client.responses.stream(model=MODEL, input="What is the weather in Paris?", tools=[WEATHER],
                                 tool_choice="required", parallel_tool_calls=False, max_output_tokens=60,
                                 temperature=0) as stream:
        events = list(stream)
        final = stream.get_final_response()
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [a.item.type for a in added] == ["function_call"] and added[0].item.name == "get_weather"
    pieces = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and done[0].arguments == pieces == _call(final).arguments
    assert json.loads(pieces)["city"]


def test_text_format_json_schema(client):
    schema = {"type": "object", "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]},
                                               "hex": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}},
              "required": ["color", "hex"], "additionalProperties": False}
    r = client.responses.create(model=MODEL, input="Pick a color and give its hex code.", max_output_tokens=60,
                                temperature=0, text={"format": {"type": "json_schema", "name": "color", "schema": schema,
                                                                "strict": True}})
    jsonschema.validate(json.loads(r.output_text), schema)
    assert r.text.format.type == "json_schema"


def test_input_items_pages_and_instructions_are_not_carried(client):
    first = client.responses.create(model=MODEL, instructions="Answer in French.", input="Name a color.",
                                    max_output_tokens=8, temperature=0)
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input="Another one?",
                                     max_output_tokens=8, temperature=0)
    assert second.instructions is None
    everything = client.responses.input_items.list(second.id, order="asc").data
    assert [(i.type, i.role) for i in everything] == [("message", "user"), ("message", "assistant"), ("message", "user")]
    assert everything[1].id == first.output[0].id
    newest = client.responses.input_items.list(second.id, limit=1)
    assert [i.id for i in newest.data] == [everything[-1].id] and newest.has_more
    rest = client.responses.input_items.list(second.id, limit=5, after=newest.data[0].id)
    assert [i.id for i in rest.data] == [i.id for i in reversed(everything[:-1])] and not rest.has_more
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, previous_response_id=first.id, input="More?", max_output_tokens=4)
    assert e.value.code == "previous_response_not_found" and e.value.param == "previous_response_id"
    # The second response keeps what it saw.
    assert len(client.responses.input_items.list(second.id).data) == 3


@pytest.mark.parametrize("extra, param", [
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}]}]},
     "input[0].content[0].type"),
    ({"input": "Hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": "Hi", "background": True}, "background"),
    ({"input": "Hi", "reasoning": {"effort": "high"}}, "reasoning.effort"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ({"input": "Hi", "tool_choice": {"type": "function", "name": "nope"}, "tools": [WEATHER]}, "tool_choice.name"),
])
def test_what_cannot_be_expressed_is_a_400_naming_it(client, extra, param):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, max_output_tokens=4, **extra)
    assert e.value.param == param, e.value.body


# --- keys and restarts: a server of this module's own, with keys, over a database that outlives it ---

@pytest.fixture(scope="module")
def keyed():
    binary = switchyard_binary()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "db.sqlite"))
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        keys = create_keys(binary, env, "alice", "bob")
        port = free_port()
        state = {"binary": binary, "env": env, "port": port, "log": os.path.join(tmp, "serve.log"), "keys": keys,
                 "url": f"http://127.0.0.1:{port}"}
        state["proc"] = serve(binary, env, port, state["log"], "--require-auth")
        try:
            yield state
        finally:
            stop(state["proc"])


def _as(keyed, name: str) -> OpenAI:
    return OpenAI(base_url=keyed["url"] + "/v1", api_key=keyed["keys"][name], max_retries=0, timeout=300)


def test_keys_see_only_their_own_responses(keyed):
    alice, bob = _as(keyed, "alice"), _as(keyed, "bob")
    headers = {"Authorization": f"Bearer {keyed['keys']['alice']}"}
    before = httpx.get(keyed["url"] + "/api/v1/usage", headers=headers, timeout=30).json()["totals"]["requests"]
    r = alice.responses.create(model=MODEL, input="Name a color.", max_output_tokens=4, temperature=0)
    assert alice.responses.retrieve(r.id).id == r.id
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.input_items.list(r.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(r.id)
    with pytest.raises(openai.BadRequestError) as e:
        bob.responses.create(model=MODEL, previous_response_id=r.id, input="More?", max_output_tokens=4)
    assert e.value.code == "previous_response_not_found"
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=keyed["url"] + "/v1", api_key="sk-sy-not-a-key", max_retries=0).responses.retrieve(r.id)
    assert alice.responses.retrieve(r.id).id == r.id, "bob's delete did not touch it"
    after = httpx.get(keyed["url"] + "/api/v1/usage", headers=headers, timeout=30).json()["totals"]["requests"]
    assert after == before + 1, "the response counts in the key's usage; reading it back does not"


def test_a_conversation_continues_after_a_restart(keyed):
    alice = _as(keyed, "alice")
    first = alice.responses.create(model=MODEL, input="My name is Ada. Say hello.", max_output_tokens=12, temperature=0)
    stop(keyed["proc"])
    keyed["proc"] = serve(keyed["binary"], keyed["env"], keyed["port"], keyed["log"], "--require-auth")
    assert alice.responses.retrieve(first.id).model_dump() == first.model_dump()
    second = alice.responses.create(model=MODEL, previous_response_id=first.id, input="What is my name?",
                                    max_output_tokens=12, temperature=0)
    items = alice.responses.input_items.list(second.id, order="asc").data
    assert items[0].content[0].text == "My name is Ada. Say hello."
    assert items[1].content[0].text == first.output_text
    assert second.output_text
