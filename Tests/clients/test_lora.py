"""LoRA adapters through a real `switchyard serve`, asked with the official `openai` SDK.

The gateway serves SmolLM2 twice: `smollm2` as it is, and `tuned`, declared in the registry with two adapters — the
random rank-2 adapter of Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/lora in llama.cpp's GGUF form (id 0,
scale 1 by default) and in PEFT's form (id 1, off by default). Requests choose adapters with llama-server's `lora`
field (the SDK's `extra_body`). A llama-server started with `--lora` on the same files is also an upstream (`lcpp`),
to show the field passes through to it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from openai import OpenAI
from support import free_port, stop, switchyard_binary, wait_ready
from test_llama_server_upstream import _llama_server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LORA = os.path.join(ROOT, "Tests", "Fixtures", "reference", "smollm2-135m-instruct-q4_1", "lora")
PROMPTS = ["What is the capital of France?", "Name three colours.", "Write one sentence about the sea.",
           "What is two plus two?"]


@pytest.fixture(scope="module")
def servers():
    binary = switchyard_binary()
    llama = _llama_server()
    listed = subprocess.run([binary, "list", "--paths"], capture_output=True, text=True, timeout=60).stdout
    gguf = next(line for line in listed.splitlines() if "SmolLM2" in line)
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        lport, gport = free_port(), free_port()
        llog = os.path.join(tmp, "llama.log")
        procs.append(subprocess.Popen([llama, "-m", gguf, "--lora", os.path.join(LORA, "adapter.gguf"), "--host", "127.0.0.1",
                                       "--port", str(lport), "-t", "2", "--no-webui"],
                                      stdout=open(llog, "w"), stderr=subprocess.STDOUT))
        config = os.path.join(tmp, "config")
        os.makedirs(config)
        with open(os.path.join(config, "models.yaml"), "w") as f:
            f.write(f"""
providers:
  lcpp: {{ type: openai-compatible, base_url: "http://127.0.0.1:{lport}/v1" }}
models:
  tuned:
    path: {gguf}
    adapters:
      - {os.path.join(LORA, "adapter.gguf")}
      - {{path: {os.path.join(LORA, "peft")}, scale: 0}}
  lcpp: {{ provider: lcpp, model: smollm2, retries: 0 }}
""")
        env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "gw.sqlite"), SWITCHYARD_CONFIG=config)
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        glog = os.path.join(tmp, "gw.log")
        procs.append(subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(gport)], env=env,
                                      stdout=open(glog, "w"), stderr=subprocess.STDOUT))
        try:
            wait_ready(f"http://127.0.0.1:{lport}/health", procs[0], llog)
            wait_ready(f"http://127.0.0.1:{gport}/api/v1/health", procs[1], glog)
            yield {"gateway": f"http://127.0.0.1:{gport}", "direct": f"http://127.0.0.1:{lport}"}
        finally:
            stop(*procs)


def ask(base: str, model: str, prompt: str, lora=None, max_tokens: int = 24) -> str:
    api = OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    extra = {"lora": lora} if lora is not None else None
    r = api.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                    temperature=0, extra_body=extra)
    return r.choices[0].message.content


def test_adapters_are_chosen_per_request(servers):
    gw = servers["gateway"]
    base = [ask(gw, "smollm2", p) for p in PROMPTS]
    default = [ask(gw, "tuned", p) for p in PROMPTS]
    # The registry's default (adapter 0 at scale 1) is what naming it at scale 1 gives, and it changes the answers.
    assert default == [ask(gw, "tuned", p, lora=[{"id": 0, "scale": 1}]) for p in PROMPTS]
    assert sum(d != b for d, b in zip(default, base)) >= 2, (default, base)
    # Every adapter at scale 0 is the base model, token for token.
    assert [ask(gw, "tuned", p, lora=[{"id": 0, "scale": 0}]) for p in PROMPTS] == base
    # The PEFT folder is the same adapter as llama.cpp's conversion of it.
    assert [ask(gw, "tuned", p, lora=[{"id": 1, "scale": 1}]) for p in PROMPTS] == default


def test_mixed_requests_batched_together_answer_as_alone(servers):
    gw = servers["gateway"]
    mixes = [None, [{"id": 0, "scale": 0}], [{"id": 0, "scale": 0.5}], [{"id": 1, "scale": 1}], [{"id": 0, "scale": 0.5}, {"id": 1, "scale": 0.5}]]
    jobs = [(p, m) for p in PROMPTS[:2] for m in mixes]
    alone = [ask(gw, "tuned", p, lora=m) for p, m in jobs]
    with ThreadPoolExecutor(len(jobs)) as pool:
        together = list(pool.map(lambda job: ask(gw, "tuned", job[0], lora=job[1]), jobs))
    assert together == alone


def test_unknown_adapters_are_refused_by_name(servers):
    api = OpenAI(base_url=servers["gateway"] + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        api.chat.completions.create(model="tuned", messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
                                    extra_body={"lora": [{"id": 2, "scale": 1}]})
    assert "adapter 2 does not exist: this model has 2 (ids 0–1)" in str(e.value)
    # The native model list shows the adapters of the loaded model, with their ids and default scales.
    models = httpx.get(servers["gateway"] + "/api/v1/models", timeout=30).json()["models"]
    tuned = next(m for m in models if m["name"] == "tuned")
    assert [(a["id"], a["scale"], a["rank"], a["matrices"]) for a in tuned["adapters"]] == [(0, 1.0, 2, 210), (1, 0.0, 2, 210)]
    assert tuned["adapters"][0]["path"].endswith("adapter.gguf")


def test_the_lora_field_reaches_a_llama_server_upstream(servers):
    gw, direct = servers["gateway"], servers["direct"]
    for lora in ([{"id": 0, "scale": 0}], [{"id": 0, "scale": 1}]):
        assert ask(gw, "lcpp", PROMPTS[0], lora=lora) == ask(direct, "smollm2", PROMPTS[0], lora=lora)
    # And it matters there: llama-server's answers with and without the adapter differ.
    off = [ask(direct, "smollm2", p, lora=[{"id": 0, "scale": 0}]) for p in PROMPTS]
    on = [ask(direct, "smollm2", p, lora=[{"id": 0, "scale": 1}]) for p in PROMPTS]
    assert sum(a != b for a, b in zip(off, on)) >= 2, (off, on)


def test_default_scales_change_at_run_time_as_llama_servers(servers):
    gw = servers["gateway"]
    listed = httpx.get(gw + "/lora-adapters", params={"model": "tuned"}, timeout=60).json()
    assert [(a["id"], a["scale"]) for a in listed] == [(0, 1.0), (1, 0.0)]
    base = [ask(gw, "smollm2", p) for p in PROMPTS[:2]]
    tuned = [ask(gw, "tuned", p) for p in PROMPTS[:2]]
    try:
        # Every adapter off by default: requests without `lora` get the base model; with it, still what they ask.
        r = httpx.post(gw + "/lora-adapters", params={"model": "tuned"}, json=[{"id": 0, "scale": 0}], timeout=60)
        assert r.status_code == 200 and r.json() == {"success": True}
        assert [a["scale"] for a in httpx.get(gw + "/lora-adapters", params={"model": "tuned"}, timeout=60).json()] == [0.0, 0.0]
        assert [ask(gw, "tuned", p) for p in PROMPTS[:2]] == base
        assert [ask(gw, "tuned", p, lora=[{"id": 0, "scale": 1}]) for p in PROMPTS[:2]] == tuned
        bad = httpx.post(gw + "/lora-adapters", params={"model": "tuned"}, json=[{"id": 7, "scale": 1}], timeout=60)
        assert bad.status_code == 400 and "adapter 7 does not exist" in bad.json()["error"]["message"]
        assert httpx.get(gw + "/lora-adapters", timeout=60).status_code == 400
    finally:
        httpx.post(gw + "/lora-adapters", params={"model": "tuned"}, json=[{"id": 0, "scale": 1}], timeout=60)
    assert [ask(gw, "tuned", p) for p in PROMPTS[:2]] == tuned
