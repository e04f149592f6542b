"""API keys, limits and usage through the official `openai` SDK against a real `switchyard serve --require-auth`.

The module starts its own server (on a free loopback port, with a fresh SWITCHYARD_DATABASE in a temporary
directory) after creating keys with `switchyard keys create`, so the other client tests keep their server
without auth. Needs SWITCHYARD_BIN (set by run.sh) and the smollm2 model pulled.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time

import httpx
import openai
import pytest
from openai import OpenAI

MODEL = "smollm2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _create_key(binary: str, env: dict[str, str], *args: str) -> str:
    out = subprocess.run([binary, "keys", "create", *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip()
    assert key.startswith("sk-sy-"), out.stdout
    return key


@pytest.fixture(scope="module")
def server():
    binary = os.environ.get("SWITCHYARD_BIN", "").strip()
    if not binary:
        pytest.fail("SWITCHYARD_BIN is not set: run these tests through Tests/clients/run.sh PATH_TO_SWITCHYARD_BINARY")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "keys.sqlite"))
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"

        # With no key yet, auth on must refuse to start and say how to fix it.
        refused = subprocess.run([binary, "serve", "--require-auth", "--port", str(port)], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
        assert "switchyard keys create" in refused.stderr
        public = subprocess.run([binary, "serve", "--host", "0.0.0.0", "--port", str(port)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert public.returncode != 0
        assert "not a loopback address" in public.stderr and "switchyard keys create" in public.stderr

        keys = {
            "good": _create_key(binary, env, "--name", "good"),
            "limited": _create_key(binary, env, "--name", "limited", "--rpm", "2"),
            "one-a-minute": _create_key(binary, env, "--name", "one-a-minute", "--rpm", "1"),
            "other": _create_key(binary, env, "--name", "other", "--models", "some-other-model"),
            "gone": _create_key(binary, env, "--name", "gone"),
        }
        subprocess.run([binary, "keys", "revoke", "gone"], env=env, check=True, capture_output=True, timeout=60)

        log = open(os.path.join(tmp, "serve.log"), "w+")
        proc = subprocess.Popen([binary, "serve", "--require-auth", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    pytest.fail(f"serve --require-auth did not come up:\n{log.read()}")
                time.sleep(0.25)
            yield {"url": url, "keys": keys}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _client(server, key: str) -> OpenAI:
    return OpenAI(base_url=server["url"] + "/v1", api_key=key, max_retries=0, timeout=120)


def _ask(client: OpenAI, model: str = MODEL):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Name a color."}],
                                          max_tokens=3, temperature=0)


def test_valid_key_is_served(server):
    reply = _ask(_client(server, server["keys"]["good"]))
    assert reply.choices[0].message.content is not None
    assert reply.usage.completion_tokens > 0


def test_no_key_raw_request_is_401(server):
    r = httpx.post(server["url"] + "/v1/chat/completions", json={"model": MODEL, "messages": []}, timeout=30)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(server["url"] + "/api/v1/health", timeout=30).status_code == 200


def test_unknown_and_revoked_keys_are_401(server):
    with pytest.raises(openai.AuthenticationError) as unknown:
        _ask(_client(server, "sk-sy-AAAAAAAAAAAA-notasecret"))
    assert unknown.value.status_code == 401
    with pytest.raises(openai.AuthenticationError) as revoked:
        _ask(_client(server, server["keys"]["gone"]))
    assert "revoked" in str(revoked.value)


def test_disallowed_model_is_403(server):
    with pytest.raises(openai.PermissionDeniedError) as e:
        _ask(_client(server, server["keys"]["other"]))
    assert e.value.status_code == 403


def test_requests_past_the_limit_get_429(server):
    client = _client(server, server["keys"]["limited"])
    for _ in range(2):
        raw = client.models.with_raw_response.list()
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
    with pytest.raises(openai.RateLimitError) as e:
        client.models.list()
    assert e.value.status_code == 429
    assert int(e.value.response.headers["retry-after"]) >= 1
    assert e.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_the_rate_limit_holds_on_every_surface(server):
    """One request a minute, spent on the chat surface: the next is refused on every other surface too, 429 in
    each surface's own error shape."""
    import anthropic
    from ollama import Client, ResponseError
    url, key = server["url"], server["keys"]["one-a-minute"]
    _ask(_client(server, key))
    with pytest.raises(anthropic.RateLimitError) as a:
        anthropic.Anthropic(base_url=url, api_key=key, max_retries=0).messages.create(
            model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert a.value.body["type"] == "error" and a.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(ResponseError) as o:
        Client(host=url, headers={"Authorization": f"Bearer {key}"}).chat(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert o.value.status_code == 429 and "rate limit" in o.value.error
    with pytest.raises(openai.RateLimitError) as r:
        _client(server, key).responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    assert r.value.code == "rate_limit_exceeded" and int(r.value.response.headers["retry-after"]) >= 1


def test_usage_counts_requests(server):
    key = server["keys"]["good"]
    headers = {"Authorization": f"Bearer {key}"}
    before = httpx.get(server["url"] + "/api/v1/usage", params={"key": "good"}, headers=headers, timeout=30).json()
    _ask(_client(server, key))
    after = httpx.get(server["url"] + "/api/v1/usage", params={"key": "good", "model": MODEL},
                      headers=headers, timeout=30)
    assert after.status_code == 200
    assert after.json()["totals"]["requests"] == before["totals"]["requests"] + 1


def test_keys_apply_on_the_ollama_and_anthropic_surfaces(server):
    """The same guard on every surface: a good key is served (Ollama with a bearer token, Anthropic with x-api-key),
    no key or an unknown one is a 401 in each surface's own error shape, a key limited to other models is a 403,
    and the requests count in the key's usage."""
    import anthropic
    from ollama import Client, ResponseError
    url, good = server["url"], server["keys"]["good"]
    headers = {"Authorization": f"Bearer {good}"}
    before = httpx.get(url + "/api/v1/usage", params={"key": "good", "model": MODEL}, headers=headers, timeout=30).json()

    r = Client(host=url, headers={"Authorization": f"Bearer {good}"}).chat(
        model=f"{MODEL}:latest", messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 2, "temperature": 0})
    assert r.done
    with pytest.raises(ResponseError) as e:
        Client(host=url).chat(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert e.value.status_code == 401 and "API key" in e.value.error
    with pytest.raises(ResponseError) as e:
        Client(host=url, headers={"Authorization": f"Bearer {server['keys']['other']}"}).chat(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert e.value.status_code == 403

    m = anthropic.Anthropic(base_url=url, api_key=good, max_retries=0, timeout=120).messages.create(
        model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert m.usage.output_tokens > 0
    with pytest.raises(anthropic.AuthenticationError) as e:
        anthropic.Anthropic(base_url=url, api_key="sk-sy-not-a-key", max_retries=0).messages.create(
            model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "authentication_error"

    # Pulling changes the model directory for everyone: an API key is not enough.
    pull = httpx.post(url + "/api/pull", json={"model": MODEL, "stream": False}, headers=headers, timeout=60)
    assert pull.status_code in {401, 403} and set(pull.json()) == {"error"}

    after = httpx.get(url + "/api/v1/usage", params={"key": "good", "model": MODEL}, headers=headers, timeout=30).json()
    assert after["totals"]["requests"] == before["totals"]["requests"] + 2, (before, after)
