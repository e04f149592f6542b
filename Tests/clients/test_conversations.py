"""Conversations kept on the server, driven by the official `openai` SDK (`client.conversations`, its `items`, and
`client.responses.create(conversation=…)`) and by the native `/api/v1/chat` with `session`: items in order with
paging, metadata, deletion; a response that reads the conversation and adds its turn to it; `truncation: "auto"`
dropping the oldest turns to fit the model's context (and saying how many), `disabled` refusing; keys that see only
their own; and everything still there after the server restarts. One server of this module's own, with keys, a
small context (512 tokens) so that a conversation outgrows it, over a database that outlives it.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai import OpenAI
from support import keyed_server, serve, stop

MODEL = "smollm2"
CONTEXT = 512


@pytest.fixture(scope="module")
def server():
    # No registry (the repository's declares smollm2's context, which would override --ctx).
    with keyed_server("--ctx", str(CONTEXT), "--conversation-retention", "30d", empty_config=True) as state:
        yield state


def client(server, name: str = "alice") -> OpenAI:
    return OpenAI(base_url=server["url"] + "/v1", api_key=server["keys"][name], max_retries=0, timeout=300)


def native_chat(server, body: dict, name: str = "alice") -> dict | list[dict]:
    r = httpx.post(server["url"] + "/api/v1/chat", json=body, timeout=300,
                   headers={"Authorization": f"Bearer {server['keys'][name]}"})
    assert r.status_code == 200, r.text
    if body.get("stream"):
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]
    return r.json()


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant(text: str) -> dict:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def test_items_in_order_with_paging_metadata_and_deletion(server):
    c = client(server)
    conv = c.conversations.create(items=[user("first"), assistant("second")], metadata={"topic": "order"})
    assert conv.id.startswith("conv_") and conv.object == "conversation" and conv.metadata == {"topic": "order"}
    added = c.conversations.items.create(conv.id, items=[user(f"item {i}") for i in range(3, 26)][:20])
    assert [i.content[0].text for i in added.data] == [f"item {i}" for i in range(3, 23)]
    assert all(i.id and i.status == "completed" for i in added.data)
    texts = [i.content[0].text for i in c.conversations.items.list(conv.id, order="asc", limit=7)]   # the SDK pages
    assert texts == ["first", "second"] + [f"item {i}" for i in range(3, 23)]
    newest = c.conversations.items.list(conv.id, limit=3)
    assert [i.content[0].text for i in newest.data] == ["item 22", "item 21", "item 20"] and newest.has_more
    one = added.data[5]
    assert c.conversations.items.retrieve(one.id, conversation_id=conv.id).content[0].text == one.content[0].text
    after_delete = c.conversations.items.delete(one.id, conversation_id=conv.id)
    assert after_delete.id == conv.id
    with pytest.raises(openai.NotFoundError):
        c.conversations.items.retrieve(one.id, conversation_id=conv.id)
    assert len(list(c.conversations.items.list(conv.id, limit=100))) == 21
    assert c.conversations.update(conv.id, metadata={"topic": "changed"}).metadata == {"topic": "changed"}
    assert c.conversations.retrieve(conv.id).metadata == {"topic": "changed"}
    with pytest.raises(openai.BadRequestError):
        c.conversations.items.create(conv.id, items=[user(str(i)) for i in range(21)])
    with pytest.raises(openai.BadRequestError):
        c.conversations.create(metadata={f"k{i}": "v" for i in range(17)})
    deleted = c.conversations.delete(conv.id)
    assert deleted.deleted and deleted.id == conv.id
    with pytest.raises(openai.NotFoundError):
        c.conversations.retrieve(conv.id)


def test_a_response_reads_the_conversation_and_adds_its_turn(server):
    c = client(server)
    conv = c.conversations.create(items=[{"type": "message", "role": "system", "content": "Answer in one short sentence."}])
    first = c.responses.create(model=MODEL, conversation=conv.id, input="My name is Ada.", max_output_tokens=12,
                               temperature=0)
    assert first.conversation.id == conv.id
    second = c.responses.create(model=MODEL, conversation={"id": conv.id}, input="What is my name?",
                                max_output_tokens=12, temperature=0)
    # The second prompt holds the first turn: its question and its answer.
    assert second.usage.input_tokens >= first.usage.input_tokens + first.usage.output_tokens
    items = list(c.conversations.items.list(conv.id, order="asc"))
    assert [(i.type, i.role) for i in items] == [("message", "system"), ("message", "user"), ("message", "assistant"),
                                                 ("message", "user"), ("message", "assistant")]
    assert items[1].content[0].text == "My name is Ada."
    assert items[2].content[0].text == first.output_text and items[4].content[0].text == second.output_text
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model=MODEL, conversation=conv.id, previous_response_id=first.id, input="x", max_output_tokens=2)
    assert e.value.param == "conversation"
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model=MODEL, conversation="conv_missing", input="x", max_output_tokens=2)


def test_truncation_auto_drops_the_oldest_turns_and_says_so(server):
    c = client(server)
    turns = []
    for i in range(8):    # about 8 × 150 tokens: more than the 512-token context
        turns += [user(f"Turn {i}: " + "tell me about the sea and the sky and the ships. " * 6),
                  assistant(f"Answer {i}: " + "the sea is wide and the sky is high and ships sail. " * 6)]
    conv = c.conversations.create(items=turns[:20])
    # As OpenAI does, without truncation a conversation past the context is refused, not cut.
    with pytest.raises(openai.APIStatusError) as e:
        c.responses.create(model=MODEL, conversation=conv.id, input="Which turn was last?", max_output_tokens=8)
    assert e.value.status_code in (400, 413) and e.value.code == "context_length_exceeded"
    raw = c.responses.with_raw_response.create(model=MODEL, conversation=conv.id, input="Which turn was last?",
                                               max_output_tokens=8, truncation="auto", temperature=0)
    trimmed = int(raw.headers["x-switchyard-trimmed-messages"])
    r = raw.parse()
    assert r.truncation == "auto" and r.status in ("completed", "incomplete")
    assert trimmed > 0 and trimmed % 2 == 0, "whole turns (a question and its answer) go"
    assert r.usage.input_tokens <= CONTEXT - 8, "the prompt fits, with the answer's room kept"
    # Nothing is deleted from the conversation itself: only the prompt was fitted.
    assert len(list(c.conversations.items.list(conv.id, limit=100))) == 16 + 2


def test_native_sessions_remember_trim_and_report(server):
    first = native_chat(server, {"model": MODEL, "session": "support-1", "max_tokens": 8, "temperature": 0,
                                 "messages": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "My name is Ada."}]})
    s = first["session"]
    assert s["id"] == "support-1" and s["stored"] and s["history_messages"] == 0 and s["trimmed_messages"] == 0
    streamed = native_chat(server, {"model": MODEL, "session": "support-1", "max_tokens": 8, "temperature": 0,
                                    "stream": True, "messages": [{"role": "user", "content": "What is my name?"}]})
    last = streamed[-1]
    assert last["done"] and last["session"]["history_messages"] == 3 and last["session"]["stored"]
    assert last["prompt_tokens"] > first["prompt_tokens"] + first["completion_tokens"]
    # The session is a conversation of this key: its turns are there in order, the streamed answer whole.
    c = client(server)
    items = list(c.conversations.items.list(s["conversation_id"], order="asc"))
    assert [i.role for i in items] == ["system", "user", "assistant", "user", "assistant"]
    assert items[2].content[0].text == first["response"]
    assert items[4].content[0].text == "".join(p["response"] for p in streamed[:-1])
    # Grown past the context, it is fitted: the oldest turns go, the system message stays, and the answer says so.
    long = []
    for i in range(6):
        long += [user(f"Note {i}: " + "remember the lighthouse and the harbour and the boats. " * 7),
                 assistant(f"Noted {i}: " + "the lighthouse stands by the harbour where the boats are. " * 7)]
    c.conversations.items.create(s["conversation_id"], items=long)
    third = native_chat(server, {"model": MODEL, "session": "support-1", "max_tokens": 8, "temperature": 0,
                                 "messages": [{"role": "user", "content": "Which note came last?"}]})
    t = third["session"]
    assert t["trimmed_messages"] > 0 and t["trimmed_messages"] == 2 * t["trimmed_turns"]
    assert t["history_messages"] + t["trimmed_messages"] == 5 + 12
    assert third["prompt_tokens"] <= CONTEXT - 8
    # Bob's session of the same name is another conversation, and he cannot read Alice's.
    bobs = native_chat(server, {"model": MODEL, "session": "support-1", "max_tokens": 4,
                                "messages": [{"role": "user", "content": "Hi"}]}, name="bob")
    assert bobs["session"]["conversation_id"] != s["conversation_id"] and bobs["session"]["history_messages"] == 0
    with pytest.raises(openai.NotFoundError):
        client(server, "bob").conversations.items.list(s["conversation_id"])
    bad = httpx.post(server["url"] + "/api/v1/chat", timeout=60, headers={"Authorization": f"Bearer {server['keys']['bob']}"},
                     json={"model": MODEL, "session": "no spaces/or slashes", "messages": [{"role": "user", "content": "x"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "session"


def test_keys_see_only_their_own_and_all_of_it_outlives_a_restart(server):
    alice, bob = client(server, "alice"), client(server, "bob")
    conv = alice.conversations.create(items=[user("kept across restarts")], metadata={"owner": "alice"})
    r = alice.responses.create(model=MODEL, conversation=conv.id, input="Say yes.", max_output_tokens=4, temperature=0)
    for call in (lambda: bob.conversations.retrieve(conv.id), lambda: bob.conversations.items.list(conv.id),
                 lambda: bob.conversations.delete(conv.id),
                 lambda: bob.conversations.items.create(conv.id, items=[user("intruder")]),
                 lambda: bob.responses.create(model=MODEL, conversation=conv.id, input="x", max_output_tokens=2)):
        with pytest.raises(openai.NotFoundError):
            call()
    native_chat(server, {"model": MODEL, "session": "restart-1", "max_tokens": 4,
                         "messages": [{"role": "user", "content": "Remember me."}]})
    before = [i.model_dump() for i in alice.conversations.items.list(conv.id, order="asc")]
    assert len(before) == 3 and before[2]["content"][0]["text"] == r.output_text
    stop(server["proc"])
    server["proc"] = serve(server["binary"], server["env"], server["port"], server["log"], *server["args"])
    assert alice.conversations.retrieve(conv.id).metadata == {"owner": "alice"}
    assert [i.model_dump() for i in alice.conversations.items.list(conv.id, order="asc")] == before
    again = native_chat(server, {"model": MODEL, "session": "restart-1", "max_tokens": 4,
                                 "messages": [{"role": "user", "content": "Still there?"}]})
    assert again["session"]["history_messages"] == 2 and again["session"]["trimmed_messages"] == 0
