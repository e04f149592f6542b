#!/usr/bin/env python3
"""Aggregate generation throughput of an OpenAI-compatible server under N concurrent streams.

N clients each send chat requests of 128 generated tokens (greedy) until `--requests` have completed per N;
aggregate tokens/s = completion tokens / wall time, per-stream tokens/s = the mean of each request's tokens over
its time after the first token. Works against `switchyard serve` and llama.cpp's `llama-server` alike.

    python3 bench/concurrency.py http://127.0.0.1:8080 --model smollm2 --concurrency 1,4,8,16
"""
import argparse
import asyncio
import json
import time

import httpx

TOPICS = ["the sea", "a city at night", "mountains", "a library", "trains", "the moon", "gardens", "winter"]


async def one(client, url, model, i, tokens):
    # a server may close an idle keep-alive connection just as it is reused; that request is sent again
    for attempt in range(3):
        try:
            return await one_attempt(client, url, model, i, tokens)
        except httpx.RemoteProtocolError:
            if attempt == 2:
                raise


async def one_attempt(client, url, model, i, tokens):
    body = {"model": model, "messages": [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}],
            "max_tokens": tokens, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    first, count = None, 0
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                count = chunk["usage"]["completion_tokens"]
            if first is None and chunk.get("choices") and chunk["choices"][0].get("delta", {}).get("content"):
                first = time.perf_counter()
    end = time.perf_counter()
    return count, (count - 1) / (end - first) if first and count > 1 and end > first else 0.0, (first or end) - t0


async def level(url, model, n, requests, tokens):
    queue = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    results = []
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=n + 4)) as client:
        async def worker():
            while not queue.empty():
                i = queue.get_nowait()
                results.append(await one(client, url, model, i, tokens))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(n)))
        wall = time.perf_counter() - t0
    total = sum(r[0] for r in results)
    return {"concurrency": n, "requests": requests, "completion_tokens": total, "aggregate_tok_s": round(total / wall, 1),
            "per_stream_tok_s": round(sum(r[1] for r in results) / len(results), 1),
            "ttft_ms_median": round(sorted(r[2] for r in results)[len(results) // 2] * 1000, 1)}


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--model", default="smollm2")
    p.add_argument("--concurrency", default="1,4,8,16")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--requests", type=int, default=0, help="per level (default: 2 × concurrency, at least 4)")
    a = p.parse_args()
    await level(a.url, a.model, 1, 1, 8)  # warm-up (loads the model)
    for n in [int(x) for x in a.concurrency.split(",")]:
        print(json.dumps(await level(a.url, a.model, n, a.requests or max(4, 2 * n), a.tokens)), flush=True)


asyncio.run(main())
