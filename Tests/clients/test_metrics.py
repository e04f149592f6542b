"""GET /metrics: the Prometheus text exposition parses with prometheus_client's parser, and its counters move by
exactly the requests made (read before and after; the tests in this directory run one at a time).

Run through `Tests/clients/run.sh PATH_TO_SWITCHYARD_BINARY` (sets SWITCHYARD_URL).
"""

from __future__ import annotations

import os

import httpx
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

MODEL = "smollm2"
ROUTE = "/v1/chat/completions"
N = 3


@pytest.fixture(scope="module")
def base_url() -> str:
    value = os.environ.get("SWITCHYARD_URL", "").strip()
    if not value:
        pytest.fail("SWITCHYARD_URL is not set: run these tests through Tests/clients/run.sh PATH_TO_SWITCHYARD_BINARY")
    return value.rstrip("/")


def scrape(base_url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics by (name, sorted labels); asserts the response is the 0.0.4 text format."""
    r = httpx.get(f"{base_url}/metrics", timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers["content-type"]
    samples: dict[tuple[str, tuple], float] = {}
    families = list(text_string_to_metric_families(r.text))
    types = {f.name: f.type for f in families}
    assert types.get("switchyard_requests") == "counter", types
    assert types.get("switchyard_tokens") == "counter", types
    assert types.get("switchyard_request_duration_seconds") == "histogram", types
    for family in families:
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_counters_match_requests(base_url: str):
    before = scrape(base_url)
    prompt = completion = 0
    with OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=120, max_retries=0) as client:
        for i in range(N):
            c = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"Count to {i + 2}."}], max_tokens=8, temperature=0)
            prompt += c.usage.prompt_tokens
            completion += c.usage.completion_tokens
        # One streamed request with usage in its last chunk.
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0,
            stream=True, stream_options={"include_usage": True})
        usage = None
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
        assert usage is not None
        prompt += usage.prompt_tokens
        completion += usage.completion_tokens
    after = scrape(base_url)

    def delta(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("switchyard_requests_total", model=MODEL, route=ROUTE, status="200") == N + 1
    assert delta("switchyard_tokens_total", model=MODEL, direction="prompt") == prompt
    assert delta("switchyard_tokens_total", model=MODEL, direction="completion") == completion
    assert delta("switchyard_request_duration_seconds_count", model=MODEL) == N + 1
    assert delta("switchyard_time_to_first_token_seconds_count", model=MODEL) == N + 1
    assert delta("switchyard_generation_tokens_per_second_count", model=MODEL) == N + 1
    # Histogram buckets are cumulative and end at +Inf == _count.
    buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in after.items()
                      if k[0] == "switchyard_request_duration_seconds_bucket" and dict(k[1])["model"] == MODEL))
    assert buckets and buckets[-1][0] == float("inf")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert buckets[-1][1] == value(after, "switchyard_request_duration_seconds_count", model=MODEL)
    # The model host's gauges: the model that answered is loaded.
    assert value(after, "switchyard_model_loaded", model=MODEL) == 1
    assert value(after, "switchyard_model_memory_bytes", model=MODEL) > 0


def test_unknown_models_collapse_to_one_label(base_url: str):
    before = scrape(base_url)
    for name in ("no-such-model-a", "no-such-model-b"):
        r = httpx.post(f"{base_url}/v1/chat/completions", timeout=30,
                       json={"model": name, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 404, r.text
    after = scrape(base_url)
    labels = {dict(k[1]).get("model") for k in after if k[0] == "switchyard_requests_total"}
    assert not any(l and l.startswith("no-such-model") for l in labels), labels
    assert (value(after, "switchyard_requests_total", model="(unknown model)", route=ROUTE, status="404")
            - value(before, "switchyard_requests_total", model="(unknown model)", route=ROUTE, status="404")) == 2
