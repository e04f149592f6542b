#!/usr/bin/env python3
"""Time to first token with and without a cached 1,000-token prefix (same system prompt, different questions).

    python3 bench/prefix_ttft.py http://127.0.0.1:8080 [--model smollm2]
"""
import argparse
import json
import statistics
import time

import httpx

p = argparse.ArgumentParser()
p.add_argument("url")
p.add_argument("--model", default="smollm2")
a = p.parse_args()
system = "You are a careful assistant who answers briefly and precisely. " * 90


def ttft(sys_prompt, question):
    body = {"model": a.model, "stream": True, "max_tokens": 4, "temperature": 0, "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": sys_prompt}, {"role": "user", "content": question}]}
    t0, first, usage = time.perf_counter(), None, None
    with httpx.stream("POST", f"{a.url}/v1/chat/completions", json=body, timeout=120) as r:
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            c = json.loads(line[6:])
            if first is None and c.get("choices") and c["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - t0
            usage = c.get("usage") or usage
    return first, usage


cold, warm = [], []
for i in range(5):
    # a different system prompt each round (nothing cached), then the same one with another question
    s = f"[{i}] " + system
    t, u = ttft(s, "What is two plus two?")
    cold.append(t)
    t2, u2 = ttft(s, "Name a color.")
    warm.append(t2)
print(json.dumps({"prompt_tokens": u["prompt_tokens"], "cached_tokens": u2.get("prompt_tokens_details", {}).get("cached_tokens"),
                  "ttft_uncached_ms": round(statistics.median(cold) * 1000, 1), "ttft_cached_ms": round(statistics.median(warm) * 1000, 1),
                  "ratio": round(statistics.median(cold) / statistics.median(warm), 1)}))
