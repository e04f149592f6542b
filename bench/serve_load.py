#!/usr/bin/env python3
"""Load test of a running `switchyard serve` (loopback only, bounded in count and time).

Measures, for a short greedy chat (max_tokens 16): requests/s and p50/p99 latency at 1 and 32 concurrent clients;
then opens 64 concurrent streaming clients and, while they run, polls /api/v1/health every 50 ms and records its
worst latency and the server's resident memory. Prints one JSON object.

    python3 bench/serve_load.py http://127.0.0.1:8080 [--requests 64]
"""
import argparse
import asyncio
import json
import statistics
import time

import multiprocessing

import httpx

CHAT = {"model": "smollm2", "messages": [{"role": "user", "content": "Name a color."}], "temperature": 0, "max_tokens": 16}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def chats(client, url, clients, total):
    latencies, failures = [], 0
    queue = asyncio.Queue()
    for _ in range(total):
        queue.put_nowait(None)

    async def worker():
        nonlocal failures
        while not queue.empty():
            queue.get_nowait()
            t = time.perf_counter()
            r = await client.post(f"{url}/v1/chat/completions", json=CHAT)
            if r.status_code != 200:
                failures += 1
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    return {"clients": clients, "requests": total, "failed": failures, "requests_per_s": round(total / wall, 2),
            "p50_ms": round(pct(latencies, 50) * 1000, 1), "p99_ms": round(pct(latencies, 99) * 1000, 1)}


def poll_health(url, stop, results):
    health_ms, rss = [], []
    with httpx.Client(timeout=10) as h:
        while not stop.is_set():
            t = time.perf_counter()
            r = h.get(f"{url}/api/v1/health")
            health_ms.append((time.perf_counter() - t) * 1000)
            rss.append(r.json()["memory"]["process_rss_bytes"])
            time.sleep(0.05)
    results.put((health_ms, rss))


async def streaming_with_health(client, url, clients):
    body = dict(CHAT, max_tokens=64, stream=True)
    failures = 0

    async def stream_one():
        nonlocal failures
        try:
            async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
                if r.status_code != 200:
                    failures += 1
                    return
                async for line in r.aiter_lines():
                    if line == "data: [DONE]":
                        return
            failures += 1
        except httpx.HTTPError:
            failures += 1

    # The health poller runs in its own process, so the 64 streams this process reads do not delay its timing.
    stop, results = multiprocessing.Event(), multiprocessing.Queue()
    poller = multiprocessing.Process(target=poll_health, args=(url, stop, results))
    poller.start()
    t0 = time.perf_counter()
    await asyncio.gather(*(stream_one() for _ in range(clients)))
    wall = time.perf_counter() - t0
    stop.set()
    health_ms, rss = results.get(timeout=30)
    poller.join()
    return {"streaming_clients": clients, "failed": failures, "wall_s": round(wall, 1),
            "health_polls": len(health_ms), "health_max_ms": round(max(health_ms), 1),
            "health_p50_ms": round(statistics.median(health_ms), 1), "rss_max_mb": round(max(rss) / 1e6, 1)}


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--requests", type=int, default=64)
    a = p.parse_args()
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await client.post(f"{a.url}/api/v1/models/load", json={"model": "smollm2"})
        out = {"one_client": await chats(client, a.url, 1, min(a.requests, 32)),
               "thirty_two_clients": await chats(client, a.url, 32, a.requests),
               "load": await streaming_with_health(client, a.url, 64)}
    print(json.dumps(out, indent=1))


asyncio.run(main())
