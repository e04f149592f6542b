"""The Ollama API on Switchyard's port, driven by the official `ollama` Python SDK (what Open WebUI, Continue and
scripts written for Ollama use): chat and generate whole and streamed, options, `format` (JSON and a schema from a
Pydantic model), tools, errors in Ollama's shape, model management (tags, show, ps, pull with progress, copy,
delete, keep_alive 0 unloads) — and Switchyard's own `ollama` provider pointed at Switchyard's Ollama surface.
"""

from __future__ import annotations

import json
import os
import tempfile

import httpx
import jsonschema
import pytest
from ollama import Client, ResponseError
from pydantic import BaseModel

from support import free_port, serve, stop, switchyard_binary

MODEL = "smollm2"


@pytest.fixture(scope="module")
def url() -> str:
    value = os.environ.get("SWITCHYARD_URL", "").strip()
    if not value:
        pytest.fail("SWITCHYARD_URL is not set: run these tests through Tests/clients/run.sh")
    return value.rstrip("/")


@pytest.fixture(scope="module")
def client(url) -> Client:
    return Client(host=url, timeout=300)


def test_chat_whole_and_streamed(client: Client):
    options = {"temperature": 0, "num_predict": 12}
    whole = client.chat(model=MODEL, messages=[{"role": "user", "content": "Name a color."}], options=options)
    assert whole.done and whole.done_reason in {"stop", "length"}
    assert whole.message.role == "assistant" and whole.message.content
    assert whole.eval_count and whole.eval_count <= 12 and whole.prompt_eval_count > 0 and whole.total_duration > 0
    parts = list(client.chat(model=f"{MODEL}:latest", messages=[{"role": "user", "content": "Name a color."}],
                             options=options, stream=True))
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert "".join(p.message.content for p in parts) == whole.message.content, "greedy: streamed equals whole"
    assert parts[-1].eval_count == whole.eval_count


def test_generate_system_raw_and_template(client: Client):
    r = client.generate(model=MODEL, prompt="Say hi.", system="You are terse.", options={"temperature": 0, "num_predict": 8})
    assert r.done and r.response
    raw = client.generate(model=MODEL, prompt="The capital of France is", raw=True, options={"temperature": 0, "num_predict": 4})
    assert raw.response
    templated = client.generate(model=MODEL, prompt="The capital of France is", template="{{ .Prompt }}",
                                options={"temperature": 0, "num_predict": 4})
    assert templated.response == raw.response, "a template of just the prompt is the raw prompt"
    with pytest.raises(ResponseError) as e:
        client.generate(model=MODEL, prompt="x", template="{{ range .Messages }}{{ end }}")
    assert e.value.status_code == 400 and "range" in e.value.error


def test_format_json_and_schema(client: Client):
    r = client.chat(model=MODEL, messages=[{"role": "user", "content": "Give three colors."}], format="json",
                    options={"temperature": 0, "num_predict": 200})
    assert isinstance(json.loads(r.message.content), dict)

    class Person(BaseModel):
        name: str
        age: int

    r = client.chat(model=MODEL, messages=[{"role": "user", "content": "Describe a person."}],
                    format=Person.model_json_schema(), options={"temperature": 0, "num_predict": 200})
    Person.model_validate_json(r.message.content)


def test_tools_round_trip(client: Client):
    def add(a: int, b: int) -> int:
        """Add two integers.

        Args:
          a: the first
          b: the second
        """
        return a + b

    messages = [{"role": "user", "content": "What is 2 plus 3? Use the tool."}]
    r = client.chat(model=MODEL, messages=messages, tools=[add], options={"temperature": 0, "num_predict": 100})
    calls = r.message.tool_calls or []
    # smollm2 has no tool syntax of its own: the generic JSON format, where `auto` may also answer in text.
    if calls:
        call = calls[0]
        assert call.function.name == "add" and isinstance(call.function.arguments, dict)
        messages.append(r.message)
        messages.append({"role": "tool", "content": str(add(**call.function.arguments)), "tool_name": "add"})
        final = client.chat(model=MODEL, messages=messages, tools=[add], options={"temperature": 0, "num_predict": 60})
        assert final.done
    else:
        assert r.message.content


def test_errors_are_ollama_shaped(client: Client, url: str):
    with pytest.raises(ResponseError) as e:
        client.chat(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
    assert e.value.status_code == 404 and "no-such-model" in e.value.error
    with pytest.raises(ResponseError) as e:
        client.chat(model=MODEL, messages=[{"role": "user", "content": "What is this?", "images": ["aGVsbG8="]}])
    assert e.value.status_code == 400 and "image" in e.value.error
    with pytest.raises(ResponseError) as e:
        client.chat(model=MODEL, messages=[{"role": "user", "content": "Hi"}], think=True)
    assert e.value.status_code == 400 and "thinking" in e.value.error
    body = httpx.post(f"{url}/api/chat", json={"model": MODEL}).json()
    assert set(body) >= {"done", "done_reason"} or "error" in body
    bad = httpx.post(f"{url}/api/generate", json={"model": MODEL, "prompt": "x", "suffix": "y"})
    assert bad.status_code == 400 and set(bad.json()) == {"error"}


def test_models_tags_show_ps_and_unload(client: Client, url: str):
    names = {m.model for m in client.list().models}
    assert MODEL in names
    shown = client.show(MODEL)
    assert shown.details.format == "gguf" and shown.details.family == "llama" and shown.details.quantization_level
    assert "im_start" in shown.template and shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["llama.context_length"] == "8192" and shown.modelinfo["llama.block_count"] == "30"
    assert "completion" in shown.capabilities
    client.generate(model=MODEL, prompt="Hi", options={"num_predict": 1})
    assert MODEL in {m.model for m in client.ps().models}
    client.generate(model=MODEL, keep_alive=0)   # an empty prompt with keep_alive 0 unloads
    assert MODEL not in {m.model for m in client.ps().models}
    assert httpx.head(url + "/").status_code == 200
    assert httpx.get(url + "/api/version").json()["version"]


def test_pull_streams_progress_then_copy_and_delete(client: Client):
    statuses = [p.status for p in client.pull(MODEL, stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert any(s.startswith("pulling ") and s != "pulling manifest" for s in statuses)
    copy = "smollm2-copy-for-test"
    try:
        client.copy(MODEL, copy)
        assert copy in {m.model for m in client.list().models}
        r = client.generate(model=copy, prompt="Hi", options={"temperature": 0, "num_predict": 3})
        assert r.response
    finally:
        try:
            client.delete(copy)
        except ResponseError:
            pass
    assert copy not in {m.model for m in client.list().models}
    assert MODEL in {m.model for m in client.list().models}, "deleting the copy leaves the original"
    with pytest.raises(ResponseError) as e:
        client.delete(copy)
    assert e.value.status_code == 404


def test_switchyard_ollama_provider_against_switchyard_ollama_surface(url: str):
    """The round trip of our own two halves: a second Switchyard routes `via-ollama` to this one's Ollama API."""
    binary = switchyard_binary()
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "config")
        os.makedirs(config)
        with open(os.path.join(config, "models.yaml"), "w") as f:
            f.write(f"providers:\n  first: {{ type: ollama, base_url: {url} }}\nmodels:\n  via-ollama: {{ model: first/{MODEL} }}\n")
        env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "db.sqlite"), SWITCHYARD_CONFIG=config)
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        port = free_port()
        proc = serve(binary, env, port, os.path.join(tmp, "serve.log"))
        try:
            from openai import OpenAI
            oa = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=300)
            direct = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300)
            kwargs = dict(messages=[{"role": "user", "content": "Name a fruit."}], temperature=0, max_tokens=10)
            routed = oa.chat.completions.create(model="via-ollama", **kwargs)
            local = direct.chat.completions.create(model=MODEL, **kwargs)
            assert routed.choices[0].message.content == local.choices[0].message.content
            schema = {"type": "object", "properties": {"fruit": {"type": "string", "maxLength": 20}}, "required": ["fruit"],
                      "additionalProperties": False}
            shaped = oa.chat.completions.create(model="via-ollama", response_format={
                "type": "json_schema", "json_schema": {"name": "f", "schema": schema}}, messages=kwargs["messages"],
                temperature=0, max_tokens=60)
            jsonschema.validate(json.loads(shaped.choices[0].message.content), schema)
        finally:
            stop(proc)
