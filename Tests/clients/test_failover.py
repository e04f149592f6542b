"""An upstream killed and restarted under load: no request is lost or answered twice.

Two real `switchyard serve` processes: the upstream (serving smollm2 on its engine) and the gateway, whose model
`fast` routes to the upstream first and to its own local smollm2 second. 32 clients of the official `openai` SDK
(retries off, half of them streaming) send requests for the whole run while the upstream is killed with SIGKILL and
started again on the same port. Every request must get exactly one complete answer (a stream cut by the kill may
instead end with an error event, never silently), the gateway's usage records must count each request exactly once,
and after the restart the upstream must be serving again.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time

import httpx
import pytest
from openai import OpenAI
from support import free_port, serve, stop, switchyard_binary

CLIENTS = 32


def _start(binary: str, env: dict[str, str], port: int, log_path: str, *extra: str) -> subprocess.Popen:
    return serve(binary, env, port, log_path, "--parallel", "4", *extra)


@pytest.fixture(scope="module")
def pair():
    binary = switchyard_binary()
    with tempfile.TemporaryDirectory() as tmp:
        up_port, gw_port = free_port(), free_port()
        config = os.path.join(tmp, "config")
        os.makedirs(config)
        with open(os.path.join(config, "models.yaml"), "w") as f:
            f.write(f"""
providers:
  up: {{ type: openai-compatible, base_url: "http://127.0.0.1:{up_port}/v1", breaker: {{ failures: 3, window: 10s, cooldown: 1s }} }}
models:
  fast: {{ deployments: [ {{provider: up, model: smollm2, timeout: 20s, retries: 0}}, {{provider: local, model: smollm2}} ] }}
""")
        up_env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "up.sqlite"))
        gw_env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "gw.sqlite"), SWITCHYARD_CONFIG=config)
        for env in (up_env, gw_env):
            env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        state = {
            "binary": binary, "up_env": up_env, "up_port": up_port, "up_log": os.path.join(tmp, "up.log"),
            "gw": f"http://127.0.0.1:{gw_port}",
        }
        state["up"] = _start(binary, up_env, up_port, state["up_log"], "--preload", "smollm2")
        gw = _start(binary, gw_env, gw_port, os.path.join(tmp, "gw.log"), "--preload", "smollm2")
        try:
            yield state
        finally:
            stop(state["up"], gw)


def test_no_request_is_lost_or_answered_twice_while_the_upstream_dies_and_returns(pair):
    stop = threading.Event()
    lock = threading.Lock()
    results: list[dict] = []
    failures: list[str] = []

    def client(n: int) -> None:
        api = OpenAI(base_url=pair["gw"] + "/v1", api_key="unused", max_retries=0, timeout=120)
        streaming = n % 2 == 1
        i = 0
        while not stop.is_set():
            i += 1
            prompt = f"Client {n}, request {i}: name a color."
            try:
                if streaming:
                    raw = api.chat.completions.with_raw_response.create(
                        model="fast", messages=[{"role": "user", "content": prompt}], max_tokens=4, temperature=0,
                        stream=True)
                    route = raw.headers.get("x-switchyard-route")
                    text, finish, error = "", None, None
                    try:
                        for chunk in raw.parse():
                            for choice in chunk.choices:
                                text += choice.delta.content or ""
                                finish = choice.finish_reason or finish
                    except Exception as e:  # an error event from the server: the stream ended cleanly with it
                        error = str(e)
                    with lock:
                        results.append({"route": route, "finish": finish, "error": error, "streamed": True,
                                        "at": time.time()})
                else:
                    raw = api.chat.completions.with_raw_response.create(
                        model="fast", messages=[{"role": "user", "content": prompt}], max_tokens=4, temperature=0)
                    answer = raw.parse()
                    with lock:
                        results.append({"route": raw.headers.get("x-switchyard-route"),
                                        "finish": answer.choices[0].finish_reason, "error": None, "streamed": False,
                                        "text": answer.choices[0].message.content, "at": time.time()})
            except Exception as e:
                with lock:
                    failures.append(f"client {n} request {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(4)
    pair["up"].kill()  # SIGKILL: connections die mid-request
    pair["up"].wait()
    killed_at = time.time()
    time.sleep(3)
    pair["up"] = _start(pair["binary"], pair["up_env"], pair["up_port"], pair["up_log"], "--preload", "smollm2")
    restarted_at = time.time()
    # Run until the gateway sends requests to the upstream again (its breaker probes after the cooldown).
    deadline = time.time() + 60
    while time.time() < deadline:
        with lock:
            if sum(1 for r in results if r["at"] > restarted_at + 0.5 and (r["route"] or "").startswith("up/")) >= 3:
                break
        time.sleep(0.25)
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a client is still waiting for an answer"

    assert failures == [], f"{len(failures)} requests failed: {failures[:5]}"
    sent = len(results)
    assert sent >= 64, f"only {sent} requests were made"
    for r in results:
        if r["error"] is None:
            assert r["finish"] in ("stop", "length"), r
        else:
            assert r["streamed"], r  # only a stream already under way may end with an error
    by_route = {}
    for r in results:
        by_route[r["route"]] = by_route.get(r["route"], 0) + 1
    assert by_route.get("local/smollm2", 0) > 0, by_route  # the fallback answered while the upstream was down
    assert any((r["route"] or "").startswith("up/") and r["at"] < killed_at for r in results), by_route
    assert any((r["route"] or "").startswith("up/") and r["at"] > restarted_at for r in results), by_route

    # The gateway wrote one usage record per request: no request lost, none counted twice.
    deadline = time.time() + 10
    while True:
        usage = httpx.get(pair["gw"] + "/api/v1/usage?model=fast", timeout=10).json()
        if usage["totals"]["requests"] >= sent or time.time() > deadline:
            break
        time.sleep(0.3)
    assert usage["totals"]["requests"] == sent, (usage["totals"], sent, by_route)
    errors_in_streams = sum(1 for r in results if r["error"] is not None)
    print(f"\n{sent} requests by {CLIENTS} clients: {by_route}; streams ended by an error event: {errors_in_streams}")
