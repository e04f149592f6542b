"""Embeddings on Switchyard's port, driven by the official SDKs: the `openai` SDK's `embeddings.create` (base64 by
default, floats on request, token-id input, `dimensions`), the `ollama` SDK's `embed` (truncate on by default) and
`embeddings`, requests computed together, errors in each API's shape, and a second Switchyard routing embeddings to
this one as an OpenAI-compatible upstream with a fallback. The model is all-MiniLM-L6-v2 (`switchyard pull minilm`),
served from its Hugging Face folder; the vectors are checked against sentence-transformers' own
(Tests/Fixtures/reference/minilm/embeddings.json).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from ollama import Client, ResponseError
from openai import OpenAI

from support import free_port, serve, stop, switchyard_binary

MODEL = "minilm"
REFERENCE = pathlib.Path(__file__).resolve().parents[1] / "Fixtures" / "reference" / "minilm"
CASES = json.loads((REFERENCE / "embeddings.json").read_text())["cases"]
TOKENS = {c["text"]: c["ids"] for c in json.loads((REFERENCE / "tokens.json").read_text())}


def cosine(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@pytest.fixture(scope="module")
def url() -> str:
    value = os.environ.get("SWITCHYARD_URL", "").strip()
    if not value:
        pytest.fail("SWITCHYARD_URL is not set: run these tests through Tests/clients/run.sh")
    return value.rstrip("/")


@pytest.fixture(scope="module")
def oa(url) -> OpenAI:
    return OpenAI(base_url=url + "/v1", api_key="unused", timeout=120)


def test_openai_sdk_vectors_match_sentence_transformers(oa: OpenAI):
    short = [c for c in CASES if c["tokens"] <= 256]
    # the SDK asks for base64 unless told otherwise, and decodes it
    answer = oa.embeddings.create(model=MODEL, input=[c["text"] for c in short])
    assert answer.model == MODEL and answer.object == "list"
    assert [d.index for d in answer.data] == list(range(len(short)))
    for d, c in zip(answer.data, short):
        assert len(d.embedding) == 384
        assert cosine(d.embedding, c["vector"]) >= 0.9999, c["text"]
    assert answer.usage.prompt_tokens == sum(c["tokens"] for c in short) == answer.usage.total_tokens
    floats = oa.embeddings.create(model=MODEL, input=short[0]["text"], encoding_format="float")
    assert max(abs(a - b) for a, b in zip(floats.data[0].embedding, answer.data[0].embedding)) < 1e-6


def test_token_ids_and_dimensions(oa: OpenAI):
    text = CASES[0]["text"]
    ids = TOKENS[text][1:-1]   # without [CLS] … [SEP]: added by the server
    by_ids = oa.embeddings.create(model=MODEL, input=[ids], encoding_format="float").data[0].embedding
    by_text = oa.embeddings.create(model=MODEL, input=text, encoding_format="float").data[0].embedding
    assert cosine(by_ids, by_text) > 0.999999
    assert len(oa.embeddings.create(model=MODEL, input=text, dimensions=384).data[0].embedding) == 384
    # shorter: the first numbers, back to length 1 (Matryoshka truncation, as Ollama does)
    short = oa.embeddings.create(model=MODEL, input=text, dimensions=100, encoding_format="float").data[0].embedding
    assert len(short) == 100
    assert abs(sum(x * x for x in short) - 1) < 1e-5
    assert cosine(short, by_text[:100]) > 0.999999
    with pytest.raises(openai.BadRequestError) as e:
        oa.embeddings.create(model=MODEL, input=text, dimensions=385)
    assert "at most 384" in str(e.value)


def test_openai_errors(oa: OpenAI):
    long_case = next(c for c in CASES if c["tokens"] > 256)
    with pytest.raises(openai.APIStatusError) as e:
        oa.embeddings.create(model=MODEL, input=long_case["text"])
    assert e.value.status_code == 413 and "context" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert "embedding model" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        oa.embeddings.create(model=MODEL, input=[])
    assert "input must not be empty" in str(e.value)
    with pytest.raises(openai.NotFoundError):
        oa.embeddings.create(model="no-such-model", input="hello")


def test_a_chat_model_embeds_with_its_last_token(url):
    """A decoder model serves embeddings the way llama-server does with `--embedding --pooling last`: the final
    hidden state of the last token, normalized. 0.998 is below llama.cpp's own agreement with an exact float64
    forward pass of the same file (0.99958-0.99985, tools/exact_forward.py embeddings)."""
    path = pathlib.Path(__file__).resolve().parents[1] / "Fixtures" / "reference" / "smollm2-135m-instruct-q4_1"
    cases = json.loads((path / "embeddings-last.json").read_text())["cases"]
    oa = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
    reply = oa.embeddings.create(model="smollm2", input=[c["text"] for c in cases], encoding_format="float")
    assert [d.index for d in reply.data] == list(range(len(cases)))
    assert reply.usage.prompt_tokens == sum(len(c["ids"]) for c in cases)
    for case, item in zip(cases, reply.data):
        assert len(item.embedding) == 576
        assert cosine(item.embedding, case["vector"]) >= 0.998, case["text"]


def test_ollama_sdk_embed_and_legacy_embeddings(url):
    client = Client(host=url, timeout=120)
    texts = [c["text"] for c in CASES[:3]]
    answer = client.embed(model=f"{MODEL}:latest", input=texts)
    assert len(answer.embeddings) == 3 and answer.prompt_eval_count == sum(c["tokens"] for c in CASES[:3])
    for v, c in zip(answer.embeddings, CASES[:3]):
        assert cosine(v, c["vector"]) >= 0.9999
    # truncate (Ollama's default): the long input is cut to the model's 256 tokens, as sentence-transformers cuts it
    long_case = next(c for c in CASES if c["tokens"] > 256)
    cut = client.embed(model=MODEL, input=long_case["text"])
    assert cut.prompt_eval_count == 256 and cosine(cut.embeddings[0], long_case["vector"]) >= 0.9999
    with pytest.raises(ResponseError) as e:
        client.embed(model=MODEL, input=long_case["text"], truncate=False)
    assert e.value.status_code == 413
    legacy = client.embeddings(model=MODEL, prompt=texts[0])
    assert cosine(legacy.embedding, CASES[0]["vector"]) >= 0.9999


def test_requests_at_once_are_computed_together_and_each_gets_its_own(oa: OpenAI):
    short = [c for c in CASES if c["tokens"] <= 256]

    def one(c):
        return oa.embeddings.create(model=MODEL, input=c["text"], encoding_format="float").data[0].embedding

    with ThreadPoolExecutor(16) as pool:
        vectors = list(pool.map(one, short * 4))
    for v, c in zip(vectors, short * 4):
        assert cosine(v, c["vector"]) >= 0.9999, c["text"]


@pytest.fixture(scope="module")
def gateway(url):
    """A second Switchyard whose `remote-minilm` goes to this server as an OpenAI-compatible upstream, falling back
    to a dead upstream's name first (so the fallback is exercised)."""
    binary = switchyard_binary()
    with tempfile.TemporaryDirectory() as tmp:
        port, dead = free_port(), free_port()
        config = os.path.join(tmp, "config")
        os.makedirs(config)
        with open(os.path.join(config, "models.yaml"), "w") as f:
            f.write(f"""
providers:
  dead: {{ type: openai-compatible, base_url: "http://127.0.0.1:{dead}/v1" }}
  up: {{ type: openai-compatible, base_url: "{url}/v1" }}
models:
  remote-minilm: {{ deployments: [ {{provider: dead, model: minilm, retries: 0}}, {{provider: up, model: minilm}} ] }}
""")
        env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "gw.sqlite"), SWITCHYARD_CONFIG=config)
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        proc = serve(binary, env, port, os.path.join(tmp, "gw.log"))
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)


def test_routed_to_an_upstream_with_fallback(gateway):
    r = httpx.post(gateway + "/v1/embeddings", json={"model": "remote-minilm", "input": CASES[1]["text"]}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-route"] == "up/minilm"
    assert "dead/minilm" in r.headers["x-switchyard-fallback-from"]
    assert cosine(r.json()["data"][0]["embedding"], CASES[1]["vector"]) >= 0.9999
