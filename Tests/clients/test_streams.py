"""Resumable streams and the WebSocket, against a real server with keys.

Streams: an official `openai` SDK stream dropped mid-way and read on from `GET /api/v1/streams/ID` with
`Last-Event-ID` (the rest equals the greedy answer, the request is charged once with every token); Anthropic's and the
Responses API's streams resumed with their own events; the native NDJSON stream resumed with `?after=N`; a stream
cancelled by id from another connection; an abandoned stream generating on through its grace period and stopped after
it; another key seeing none of it.

WebSocket (`/api/v1/ws`, the `websockets` package): refused without a key at the upgrade; two generations multiplexed
on one socket, each equal to its non-streamed answer; cancel by id; ping; bad messages answered, the socket kept; a
generation whose socket closed resumed on a new socket by its stream id; an idle socket closed by the server.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
import websockets.exceptions
from openai import OpenAI
from support import keyed_server

MODEL = "smollm2"
GRACE = 3          # --stream-grace, seconds
IDLE = 2           # --websocket-idle-timeout, seconds
PROMPT = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]


@pytest.fixture(scope="module")
def server():
    with keyed_server("--stream-grace", f"{GRACE}s", "--websocket-idle-timeout", f"{IDLE}s") as state:
        state["ws"] = f"ws://127.0.0.1:{state['port']}/api/v1/ws"
        yield state


def auth(server, name: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {server['keys'][name]}"}


def usage(server, name: str) -> dict:
    r = httpx.get(server["url"] + "/api/v1/usage", headers=auth(server, name), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["totals"]


def sse_events(text: str) -> list[dict]:
    """The events of a server-sent-events body: each with its id, event name and data."""
    events = []
    for block in text.split("\n\n"):
        e: dict = {}
        for line in block.splitlines():
            field, _, value = line.partition(": ")
            e[field] = value
        if e:
            events.append(e)
    return events


def chat_text(events: list[dict]) -> str:
    out = ""
    for e in events:
        if e.get("data", "[DONE]") != "[DONE]":
            for choice in json.loads(e["data"]).get("choices", []):
                out += choice["delta"].get("content") or ""
    return out


def resume(server, stream_id: str, after: int | None = None, name: str = "alice", **params) -> httpx.Response:
    headers = auth(server, name)
    if after is not None:
        headers["Last-Event-ID"] = str(after)
    return httpx.get(f"{server['url']}/api/v1/streams/{stream_id}", headers=headers, params=params, timeout=120)


def unattended_streams(server) -> float:
    """`switchyard_streams{state="unattended"}`: streams generating with no one reading them."""
    text = httpx.get(server["url"] + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith('switchyard_streams{state="unattended"}'):
            return float(line.split()[-1])
    pytest.fail("no switchyard_streams gauge in /metrics")


def test_a_dropped_sdk_stream_is_read_on_from_its_last_event_and_charged_once(server):
    c = OpenAI(base_url=server["url"] + "/v1", api_key=server["keys"]["bob"], max_retries=0, timeout=120)
    whole = c.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=40, temperature=0)
    before = usage(server, "bob")
    # The SDK's stream: event n is the n-th chunk, so a client that counts chunks knows its Last-Event-ID.
    with c.chat.completions.with_streaming_response.create(model=MODEL, messages=PROMPT, max_tokens=40, temperature=0,
                                                           stream=True) as response:
        stream_id = response.headers["x-switchyard-stream-id"]
        assert stream_id.startswith("strm_")
        seen, text = 0, ""
        for chunk in response.parse():
            seen += 1
            text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
            if seen == 5:
                break   # the connection closes here, mid-answer
    rest = resume(server, stream_id, after=seen, name="bob")
    assert rest.status_code == 200, rest.text
    assert rest.headers["content-type"].startswith("text/event-stream")
    events = sse_events(rest.text)
    assert [int(e["id"]) for e in events] == list(range(seen + 1, seen + 1 + len(events))), "the rest, in order, none twice"
    assert events[-1]["data"] == "[DONE]"
    assert text + chat_text(events) == whole.choices[0].message.content
    # The dropped request was charged once, with every token generated (it ran to its end for the resumed reader).
    deadline = time.time() + 10
    while time.time() < deadline:
        after = usage(server, "bob")
        if after["requests"] > before["requests"]:
            break
        time.sleep(0.2)
    assert after["requests"] - before["requests"] == 1
    assert after["completion_tokens"] - before["completion_tokens"] == whole.usage.completion_tokens
    # From the start, again: everything it kept.
    again = sse_events(resume(server, stream_id, name="bob").text)
    assert chat_text(again) == whole.choices[0].message.content


@pytest.mark.parametrize("path,body,last_events", [
    ("/v1/messages", {"model": MODEL, "max_tokens": 24, "temperature": 0, "messages": PROMPT}, {"message_stop"}),
    # Cut at max_output_tokens the response is incomplete; ended by the model, completed.
    ("/v1/responses", {"model": MODEL, "max_output_tokens": 24, "temperature": 0, "input": PROMPT[0]["content"]},
     {"response.completed", "response.incomplete"}),
])
def test_anthropic_and_responses_streams_resume_with_their_own_events(server, path, body, last_events):
    seen = 0
    with httpx.Client(base_url=server["url"], headers=auth(server), timeout=120) as h:
        with h.stream("POST", path, json={**body, "stream": True}) as r:
            assert r.status_code == 200
            stream_id = r.headers["x-switchyard-stream-id"]
            first = []
            for line in r.iter_lines():
                if line.startswith("event: "):
                    first.append(line[7:])
                if line.startswith("id: "):
                    seen = int(line[4:])
                if line.startswith("data: ") and seen >= 4:
                    break
    rest = sse_events(resume(server, stream_id, after=seen).text)
    assert int(rest[0]["id"]) == seen + 1
    assert rest[-1]["event"] in last_events
    assert all(e["event"] == json.loads(e["data"])["type"] for e in rest), "each event's name is its data's type"


def test_the_native_stream_resumes_after_a_count_of_lines(server):
    body = {"model": MODEL, "messages": PROMPT, "max_tokens": 24, "temperature": 0, "stream": True}
    lines = []
    with httpx.Client(base_url=server["url"], headers=auth(server), timeout=120) as h:
        whole = h.post("/api/v1/chat", json={**body, "stream": False}).json()
        with h.stream("POST", "/api/v1/chat", json=body) as r:
            stream_id = r.headers["x-switchyard-stream-id"]
            for line in r.iter_lines():
                lines.append(json.loads(line))
                if len(lines) == 3:
                    break
    rest = resume(server, stream_id, after=len(lines))
    assert rest.headers["content-type"].startswith("application/x-ndjson")
    rest_lines = [json.loads(line) for line in rest.text.splitlines()]
    assert rest_lines[-1]["done"] is True and rest_lines[-1]["completion_tokens"] == whole["completion_tokens"]
    assert "".join(p["response"] for p in lines + rest_lines[:-1]) == whole["response"]
    bad = resume(server, stream_id, after=-1)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "after"
    past = resume(server, stream_id, after=2**63 - 1)   # more events than were sent, at the edge of a 64-bit integer
    assert past.status_code == 400 and past.json()["error"]["code"] == "stream_position_invalid"


def test_a_stream_is_cancelled_by_id_from_another_connection_and_hidden_from_other_keys(server):
    body = {"model": MODEL, "messages": PROMPT, "max_tokens": 300, "ignore_eos": True, "stream": True}
    events = []
    with httpx.Client(base_url=server["url"], headers=auth(server), timeout=120) as h:
        with h.stream("POST", "/v1/chat/completions", json=body) as r:
            stream_id = r.headers["x-switchyard-stream-id"]
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    events.append(line[6:])
                    if len(events) == 2:
                        break
            # Another key neither sees nor cancels it.
            assert resume(server, stream_id, name="bob").status_code == 404
            refused = httpx.delete(f"{server['url']}/api/v1/streams/{stream_id}", headers=auth(server, "bob"), timeout=30)
            assert refused.status_code == 404 and refused.json()["error"]["code"] == "stream_not_found"
            cancelled = httpx.delete(f"{server['url']}/api/v1/streams/{stream_id}", headers=auth(server), timeout=30)
            assert cancelled.status_code == 200 and cancelled.json() == {"id": stream_id, "object": "stream", "status": "cancelled"}
            for line in lines:
                if line.startswith("data: "):
                    events.append(line[6:])
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "stream_cancelled"
    assert len(events) < 300, "the generation stopped when cancelled"
    again = httpx.delete(f"{server['url']}/api/v1/streams/{stream_id}", headers=auth(server), timeout=30)
    assert again.json()["status"] == "cancelled"


def test_an_abandoned_stream_generates_through_its_grace_period_and_is_stopped_after_it(server):
    body = {"model": MODEL, "messages": PROMPT, "max_tokens": 2000, "ignore_eos": True, "stream": True}
    with httpx.Client(base_url=server["url"], headers=auth(server), timeout=120) as h:
        with h.stream("POST", "/api/v1/chat", json=body) as r:
            stream_id = r.headers["x-switchyard-stream-id"]
            next(r.iter_lines())
    time.sleep(GRACE / 3)
    assert unattended_streams(server) == 1, "no one reads it, and it generates on for a client that may come back"
    deadline = time.time() + GRACE + 5
    while time.time() < deadline and unattended_streams(server) > 0:
        time.sleep(0.2)
    assert unattended_streams(server) == 0, "after the grace period the generation stopped"
    time.sleep(1.5)
    gone = resume(server, stream_id)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "stream_not_found"


# ---------------------------------------------------------------------------------------------------------------
# WebSocket
# ---------------------------------------------------------------------------------------------------------------


def ws_connect(server, name: str | None = "alice"):
    headers = auth(server, name) if name else {}
    return websockets.connect(server["ws"], additional_headers=headers, open_timeout=30, max_size=1 << 20)


async def until_done(ws, ids: set[str]) -> dict[str, list[dict]]:
    """Messages by id until each of `ids` is done or failed."""
    got: dict[str, list[dict]] = {i: [] for i in ids}
    open_ids = set(ids)
    while open_ids:
        m = json.loads(await asyncio.wait_for(ws.recv(), 120))
        got.setdefault(m.get("id"), []).append(m)
        if m["type"] in ("done", "error"):
            open_ids.discard(m.get("id"))
    return got


def native(server, body: dict) -> dict:
    r = httpx.post(server["url"] + "/api/v1/chat", json=body, headers=auth(server), timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_websocket_needs_a_key_at_the_upgrade(server):
    async def go():
        for headers in ({}, {"Authorization": "Bearer sk-wrong"}):
            async with websockets.connect(server["ws"], additional_headers=headers, open_timeout=30) as ws:
                refused = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert refused["type"] == "error" and refused["status"] == 401, refused
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
                assert closed.value.rcvd.code == 1008   # policy violation
    asyncio.run(go())
    plain = httpx.get(server["url"] + "/api/v1/ws", headers=auth(server), timeout=10)
    assert plain.status_code == 426 and plain.json()["error"]["code"] == "websocket_required"


def test_websocket_multiplexes_generations_cancels_by_id_and_answers_bad_messages(server):
    a = {"model": MODEL, "messages": PROMPT, "max_tokens": 16, "temperature": 0}
    b = {"model": MODEL, "messages": [{"role": "user", "content": "Name three rivers."}], "max_tokens": 12, "temperature": 0}
    expected = {"a": native(server, a), "b": native(server, b)}

    async def go():
        async with ws_connect(server) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}
            await ws.send(json.dumps({"type": "chat", "id": "a", "request": a}))
            await ws.send(json.dumps({"type": "chat", "id": "b", "request": b}))
            await ws.send(json.dumps({"type": "chat", "id": "long",
                                      "request": {**a, "max_tokens": 500, "ignore_eos": True}}))
            got = await until_done(ws, {"a", "b"})
            for i in ("a", "b"):
                msgs = got[i]
                assert msgs[0]["type"] == "started" and msgs[0]["stream_id"].startswith("strm_")
                chunks = [m for m in msgs if m["type"] == "chunk"]
                assert [m["seq"] for m in chunks + [msgs[-1]]] == list(range(1, len(chunks) + 2))
                assert msgs[-1]["type"] == "done" and msgs[-1]["data"]["completion_tokens"] == expected[i]["completion_tokens"]
                assert "".join(m["data"]["response"] for m in chunks) == expected[i]["response"]
            await ws.send(json.dumps({"type": "cancel", "id": "long"}))
            # One cancelled at once, most likely before its stream began: it ends cancelled all the same.
            await ws.send(json.dumps({"type": "chat", "id": "early", "request": {**a, "max_tokens": 500, "ignore_eos": True}}))
            await ws.send(json.dumps({"type": "cancel", "id": "early"}))
            ended = await until_done(ws, {"long", "early"})
            for i in ("long", "early"):
                assert ended[i][-1]["type"] == "error" and ended[i][-1]["error"]["code"] == "stream_cancelled", ended[i][-1]
                assert len([m for m in ended[i] if m["type"] == "chunk"]) < 500
            # Bad messages are answered and the socket stays.
            await ws.send("not json")
            assert json.loads(await ws.recv())["type"] == "error"
            await ws.send(json.dumps({"type": "chat", "id": "x", "request": {"model": "no-such-model", "messages": PROMPT}}))
            refused = json.loads(await ws.recv())
            assert refused == {**refused, "type": "error", "id": "x", "status": 404} and refused["error"]["code"] == "model_not_found"
            await ws.send(json.dumps({"type": "dance", "id": "y"}))
            assert json.loads(await ws.recv())["error"]["param"] == "type"
            await ws.send(json.dumps({"type": "cancel", "id": "nothing"}))
            assert json.loads(await ws.recv())["error"]["code"] == "stream_not_found"
    asyncio.run(go())


def test_websocket_generation_resumes_on_a_new_socket_and_idle_sockets_close(server):
    body = {"model": MODEL, "messages": PROMPT, "max_tokens": 30, "temperature": 0}
    whole = native(server, body)

    async def go():
        async with ws_connect(server) as ws:
            await ws.send(json.dumps({"type": "chat", "id": "a", "request": body}))
            first = []
            while len(first) < 4:
                first.append(json.loads(await ws.recv()))
            stream_id = first[0]["stream_id"]
        # The socket closed mid-answer; a new one reads the rest by stream id.
        async with ws_connect(server) as ws:
            await ws.send(json.dumps({"type": "resume", "id": "r", "stream_id": stream_id, "after": first[-1]["seq"]}))
            rest = (await until_done(ws, {"r"}))["r"]
            chunks = [m for m in first + rest if m["type"] == "chunk"]
            assert [m["seq"] for m in chunks] == list(range(1, len(chunks) + 1))
            assert "".join(m["data"]["response"] for m in chunks) == whole["response"]
            assert rest[-1]["type"] == "done"
            # Nothing in flight, nothing sent: the server closes the socket after the idle timeout.
            started = time.monotonic()
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), IDLE + 10)
            assert time.monotonic() - started >= IDLE - 0.5
    asyncio.run(go())
