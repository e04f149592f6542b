"""Client-compatibility tests: the official `openai` Python SDK (and plain httpx) against a running `switchyard serve`.

Run through `Tests/clients/run.sh PATH_TO_SWITCHYARD_BINARY`, which starts the server and sets
SWITCHYARD_URL (e.g. http://127.0.0.1:PORT) and SWITCHYARD_BIN (the binary, for comparing with `switchyard run`).

The model is `smollm2` (SmolLM2-135M-Instruct): its answers are often silly, so these tests check structure,
determinism and limits, never content.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from openai import OpenAI

MODEL = "smollm2"
PROMPT = "What is the capital of France? Answer in one sentence."
FINISH_REASONS = {"stop", "length"}


# ---------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------------------------


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"{name} is not set: run these tests through Tests/clients/run.sh PATH_TO_SWITCHYARD_BINARY")
    return value


@pytest.fixture(scope="module")
def base_url() -> str:
    return _env("SWITCHYARD_URL").rstrip("/")


@pytest.fixture(scope="module")
def switchyard_bin() -> str:
    path = _env("SWITCHYARD_BIN")
    if not os.access(path, os.X_OK):
        pytest.fail(f"SWITCHYARD_BIN={path} is not an executable file")
    return path


@pytest.fixture(scope="module")
def client(base_url: str):
    # max_retries=0: errors must surface as the server sent them (the concurrency test retries by itself).
    c = OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=120, max_retries=0)
    yield c
    c.close()


@pytest.fixture(scope="module")
def http(base_url: str):
    with httpx.Client(base_url=base_url, timeout=60) as h:
        yield h


def chat(client: OpenAI, prompt: str, **kwargs):
    """One non-streaming chat completion for a single user message."""
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}], **kwargs)


def content_of(completion) -> str:
    return completion.choices[0].message.content or ""


def assert_openai_error_body(body: object, *, expect_type: str | None = None) -> dict:
    """An OpenAI-style error body: {"error": {"message": str, "type": str, "param": str|null, "code": str|null}}."""
    assert isinstance(body, dict), f"error body is not a JSON object: {body!r}"
    assert "error" in body, f"error body has no 'error' key: {body!r}"
    err = body["error"]
    assert isinstance(err, dict), f"'error' is not an object: {body!r}"
    for key in ("message", "type", "param", "code"):
        assert key in err, f"'error' lacks {key!r} (OpenAI clients read it; null is fine for param/code): {body!r}"
    assert isinstance(err["message"], str) and err["message"], f"empty error message: {body!r}"
    assert isinstance(err["type"], str) and err["type"], f"empty error type: {body!r}"
    assert err["param"] is None or isinstance(err["param"], str), body
    assert err["code"] is None or isinstance(err["code"], (str, int)), body
    if expect_type is not None:
        assert err["type"] == expect_type, f"error type {err['type']!r}, expected {expect_type!r}: {body!r}"
    return err


def error_message(exc: openai.APIStatusError) -> str:
    """The `message` of the error object the server sent (the SDK unwraps {"error": {...}} into exc.body)."""
    body = exc.body
    assert isinstance(body, dict) and isinstance(body.get("message"), str), (
        f"status {exc.status_code} without an OpenAI-style error object: {exc.response.text!r}")
    return body["message"]


# ---------------------------------------------------------------------------------------------------------------
# OpenAI surface: /v1
# ---------------------------------------------------------------------------------------------------------------


def test_models_list(client: OpenAI):
    models = list(client.models.list())
    by_id = {m.id: m for m in models}
    assert MODEL in by_id, f"{MODEL!r} not in /v1/models: {sorted(by_id)}"
    assert by_id[MODEL].object == "model"


def test_chat_non_streaming(client: OpenAI):
    r = chat(client, PROMPT, temperature=0, max_tokens=16)
    assert r.id.startswith("chatcmpl-"), r.id
    assert r.object == "chat.completion"
    assert r.model == MODEL
    assert isinstance(r.created, int) and r.created > 0
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert content_of(r), "empty message content"
    assert choice.finish_reason in FINISH_REASONS
    assert r.usage is not None, "no usage in a non-streaming response"
    assert r.usage.prompt_tokens > 0
    assert 1 <= r.usage.completion_tokens <= 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    if choice.finish_reason == "length":
        assert r.usage.completion_tokens == 16


def test_chat_streaming_matches_non_streaming(client: OpenAI):
    max_tokens = 24
    reference = chat(client, PROMPT, temperature=0, max_tokens=max_tokens)
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], temperature=0, max_tokens=max_tokens,
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert len(chunks) >= 2, f"too few chunks: {chunks}"

    for c in chunks:
        assert c.object == "chat.completion.chunk", c
        assert c.model == MODEL, c
    ids = {c.id for c in chunks}
    assert len(ids) == 1, f"chunks of one stream carry different ids: {ids}"
    assert next(iter(ids)).startswith("chatcmpl-")

    with_choices = [c for c in chunks if c.choices]
    assert with_choices, "no chunk carries choices"
    assert with_choices[0].choices[0].delta.role == "assistant", "the first delta should carry role 'assistant'"
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == content_of(reference), "streamed greedy text differs from the non-streaming greedy text"

    finish = [c.choices[0].finish_reason for c in with_choices]
    assert finish[-1] in FINISH_REASONS, f"last chunk with choices has finish_reason {finish[-1]!r}"
    assert all(f is None for f in finish[:-1]), f"finish_reason before the last chunk: {finish}"
    assert finish[-1] == reference.choices[0].finish_reason

    final = chunks[-1]
    assert final.choices == [], "the usage chunk (include_usage) must have empty choices"
    assert final.usage is not None, "no usage chunk at the end of the stream although include_usage was set"
    assert all(c.usage is None for c in chunks[:-1]), "usage before the final chunk"
    assert final.usage.prompt_tokens == reference.usage.prompt_tokens
    assert final.usage.completion_tokens == reference.usage.completion_tokens
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens


def test_greedy_chat_equals_cli(client: OpenAI, switchyard_bin: str):
    proc = subprocess.run(
        [switchyard_bin, "run", MODEL, PROMPT, "--temperature", "0", "-n", "24"],
        capture_output=True, timeout=120)
    assert proc.returncode == 0, f"switchyard run failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}"
    cli = proc.stdout.decode("utf-8")
    if cli.endswith("\n"):
        cli = cli[:-1]
    server = content_of(chat(client, PROMPT, temperature=0, max_tokens=24))
    assert server == cli, f"server {server!r} != CLI {cli!r}"


def test_legacy_completions(client: OpenAI):
    r = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert r.object == "text_completion"
    assert r.model == MODEL
    assert len(r.choices) == 1
    assert r.choices[0].text, "empty completion text"
    assert r.choices[0].index == 0
    assert r.choices[0].finish_reason in FINISH_REASONS
    assert r.usage is not None
    assert r.usage.prompt_tokens > 0
    assert 1 <= r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_seed_reproducibility(client: OpenAI):
    prompt = "Tell me a short story about a cat."
    texts = [content_of(chat(client, prompt, temperature=0.9, seed=1234, max_tokens=24)) for _ in range(3)]
    assert texts[0], "empty text"
    assert texts[0] == texts[1] == texts[2], f"same seed, different texts: {texts}"


def test_stop_strings(client: OpenAI):
    prompt = "Describe the ocean in two sentences."
    free = content_of(chat(client, prompt, temperature=0, max_tokens=32))
    words = free.split()
    if len(words) < 3:
        pytest.skip(f"the greedy answer has fewer than 3 words, no stop word to pick: {free!r}")
    stop_word = words[2]
    r = chat(client, prompt, temperature=0, max_tokens=32, stop=[stop_word])
    text = content_of(r)
    assert stop_word not in text, f"stop string {stop_word!r} present in {text!r}"
    assert free.startswith(text), f"stopped text {text!r} is not a prefix of the free text {free!r}"
    assert text == free[:free.index(stop_word)], f"stopped text {text!r} should end right before {stop_word!r}"
    assert r.choices[0].finish_reason == "stop"


def test_max_tokens_limit(client: OpenAI):
    r = chat(client, "Write a long story about a dragon and a knight.", temperature=0, max_tokens=3)
    assert 1 <= r.usage.completion_tokens <= 3
    if r.choices[0].finish_reason != "stop":
        assert r.choices[0].finish_reason == "length"
        assert r.usage.completion_tokens == 3


def test_unknown_model(client: OpenAI):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="no-such-model-xyz", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert info.value.status_code == 404
    message = error_message(info.value)
    assert "no-such-model-xyz" in message, f"the message should name the requested model: {message!r}"
    assert MODEL in message, f"the message should list the existing models: {message!r}"
    assert_openai_error_body(info.value.response.json())


def test_prompt_too_long(client: OpenAI):
    with pytest.raises(openai.APIStatusError) as info:
        chat(client, "word " * 20000, max_tokens=8)
    assert info.value.status_code == 413, f"expected 413, got {info.value.status_code}: {info.value.response.text}"
    message = error_message(info.value)
    assert "context" in message.lower(), f"the message should mention the context: {message!r}"
    assert_openai_error_body(info.value.response.json())


def test_bad_request_wrong_type(client: OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, "Hi", max_tokens=4, extra_body={"temperature": "hot"})
    assert info.value.status_code == 400
    err = assert_openai_error_body(info.value.response.json(), expect_type="invalid_request_error")
    assert "temperature" in err["message"] or err["param"] == "temperature", (
        f"the error should name the offending field: {err}")


@pytest.mark.parametrize("body", [
    pytest.param(b'{"model": "smollm2", "messages": [', id="invalid-json"),
    pytest.param(b'{"model": "smollm2"}', id="missing-messages"),
    pytest.param(b'[1, 2, 3]', id="not-an-object"),
])
def test_bad_request_raw(http: httpx.Client, body: bytes):
    r = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, f"expected 400, got {r.status_code}: {r.text}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers.get("content-type")
    assert_openai_error_body(r.json(), expect_type="invalid_request_error")


def test_concurrent_clients(base_url: str):
    n = 32
    c = OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=120, max_retries=0)

    def one(i: int):
        for attempt in range(5):
            try:
                return chat(c, f"Say a word about the number {i}.", temperature=0, max_tokens=8)
            except openai.APIStatusError as e:
                if e.status_code not in (429, 503) or attempt == 4:
                    raise
                retry_after = e.response.headers.get("retry-after")
                assert retry_after is not None, f"{e.status_code} without a Retry-After header"
                try:
                    delay = float(retry_after)
                except ValueError:
                    pytest.fail(f"Retry-After should be a number of seconds, got {retry_after!r}")
                time.sleep(min(max(delay, 0.0), 30.0))
        raise AssertionError("unreachable")

    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(one, range(n)))
    finally:
        c.close()
    assert len(results) == n
    ids = set()
    for r in results:
        assert r.object == "chat.completion"
        assert r.choices[0].message.role == "assistant"
        assert r.choices[0].finish_reason in FINISH_REASONS
        assert 1 <= r.usage.completion_tokens <= 8
        ids.add(r.id)
    assert len(ids) == n, "completion ids must be unique"


def test_disconnect_mid_stream_frees_the_slot(base_url: str, client: OpenAI):
    # Abandon a few long streams (more than one, in case the server runs several sequences at once) ...
    for _ in range(3):
        with httpx.Client(base_url=base_url, timeout=30) as h:
            payload = {"model": MODEL, "messages": [{"role": "user", "content": "Write a very long essay about rivers."}],
                       "max_tokens": 200, "temperature": 0, "stream": True}
            with h.stream("POST", "/v1/chat/completions", json=payload) as r:
                assert r.status_code == 200, r.read()
                assert r.headers.get("content-type", "").startswith("text/event-stream"), r.headers
                data_lines = 0
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        data_lines += 1
                        assert line[5:].strip() == "[DONE]" or json.loads(line[5:])
                        if data_lines == 2:
                            break
                assert data_lines == 2, "the stream ended before two data lines"
            # leaving the blocks closes the response and the connection mid-stream
    # ... then an ordinary request must be served promptly with an ordinary answer.
    started = time.monotonic()
    r = chat(client, PROMPT, temperature=0, max_tokens=8, timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"the request after the disconnects took {elapsed:.1f} s"
    assert content_of(r)
    assert r.choices[0].finish_reason in FINISH_REASONS


# ---------------------------------------------------------------------------------------------------------------
# Native surface: /api/v1
# ---------------------------------------------------------------------------------------------------------------


def test_native_generate(http: httpx.Client):
    r = http.post("/api/v1/generate", json={"model": MODEL, "prompt": "Hello", "max_tokens": 8, "temperature": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict), body
    for key in ("response", "model", "tokens_used", "processing_time", "timestamp"):
        assert key in body, f"{key!r} missing from {body}"
    assert isinstance(body["response"], str), body
    assert body["model"] == MODEL, body
    assert isinstance(body["tokens_used"], int) and not isinstance(body["tokens_used"], bool), body
    assert body["tokens_used"] > 0, body
    assert isinstance(body["processing_time"], (int, float)) and not isinstance(body["processing_time"], bool), body
    assert body["processing_time"] >= 0, body
    assert body["timestamp"] not in (None, ""), body


def test_native_health(http: httpx.Client):
    r = http.get("/api/v1/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict) and "status" in body, body


def _model_names(body: object) -> list[str]:
    """Names from `[...]`, `{"models": [...]}` or `{"data": [...]}`; entries are strings or objects with name/id."""
    entries = body
    if isinstance(body, dict):
        entries = body.get("models", body.get("data"))
    assert isinstance(entries, list), f"no model list in {body!r}"
    names = []
    for e in entries:
        if isinstance(e, str):
            names.append(e)
        elif isinstance(e, dict):
            names.extend(str(e[k]) for k in ("name", "id") if k in e)
    return names


def test_native_models(http: httpx.Client):
    r = http.get("/api/v1/models")
    assert r.status_code == 200, r.text
    assert MODEL in _model_names(r.json())


def test_tools_and_tool_call_history_are_accepted(client: OpenAI):
    """A tool-using conversation in OpenAI's shape (tools offered, an assistant tool call, the tool's answer) is
    rendered through the model's template and answered; a malformed tool is a 400 naming the parameter."""
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                               "required": ["city"]}}}]
    messages = [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 18}"},
    ]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=tools, max_tokens=8, temperature=0)
    assert r.choices[0].finish_reason in FINISH_REASONS
    assert r.usage.prompt_tokens > 20
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=messages[:1], tools=[{"type": "retrieval"}], max_tokens=4)
    assert "tools[0]" in str(e.value)
