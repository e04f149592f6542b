"""The Batch API against the same requests sent interactively, and interactive speed while a batch runs.

Starts `switchyard serve` (release build, a throw-away database, no keys) with smollm2, then for each setting
(--parallel P --batch-concurrency P, P = 1 and 4):
  throughput   N chat requests (max_tokens T, ignore_eos, so every answer has T tokens) sent interactively by P clients
               at once, against the same N as one batch (from its upload to its completion seen): requests/s of each;
  interactive  K streamed requests alone (decode tokens/s after the first token, and time to first token), then the
               same K while a long batch runs: their tokens/s as a share of the unloaded figure (the goal: >= 90%),
               and how many batch requests they preempted (the batch still completes).
Usage: python3 bench/batch.py [--n 32] [--tokens 64] [--k 6] [--bin .build/release/switchyard]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
from openai import OpenAI

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=32)
ap.add_argument("--tokens", type=int, default=64)
ap.add_argument("--k", type=int, default=6)
ap.add_argument("--bin", default=".build/release/switchyard")
ap.add_argument("--model", default="smollm2")
args = ap.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body(i: int, tokens: int) -> dict:
    return {"model": args.model, "temperature": 0.8, "seed": i, "max_tokens": tokens, "ignore_eos": True,
            "messages": [{"role": "user", "content": f"Write a long story about the number {i}."}]}


def stream_once(c: OpenAI, i: int) -> tuple[float, float, int]:
    """(seconds to the first token, decode tokens/s after it, tokens)."""
    t0 = time.perf_counter()
    first = None
    n = 0
    for chunk in c.chat.completions.create(stream=True, extra_body={"ignore_eos": True}, **{k: v for k, v in body(1000 + i, args.tokens * 2).items() if k != "ignore_eos"}):
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    return first - t0, (n - 1) / (end - first), n


def run_batch(c: OpenAI, n: int, tokens: int, wait: bool = True):
    lines = "\n".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body(i, tokens)})
                      for i in range(n))
    f = c.files.create(file=("in.jsonl", io.BytesIO(lines.encode())), purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    if not wait:
        return b
    while (b := c.batches.retrieve(b.id)).status not in ("completed", "failed", "cancelled", "expired"):
        time.sleep(0.1)
    return b


def setting(parallel: int) -> dict:
    port = free_port()
    tmp = tempfile.mkdtemp()
    env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "db.sqlite"))
    proc = subprocess.Popen([args.bin, "serve", "--port", str(port), "--parallel", str(parallel), "--batch-concurrency", str(parallel),
                             "--preload", args.model], env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "log"), "w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    c = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
    try:
        # Warm up.
        c.chat.completions.create(**{k: v for k, v in body(0, 8).items() if k != "ignore_eos"})
        # Throughput: interactively, `parallel` clients at once.
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda i: c.chat.completions.create(extra_body={"ignore_eos": True},
                                                              **{k: v for k, v in body(i, args.tokens).items() if k != "ignore_eos"}),
                          range(args.n)))
        interactive_rps = args.n / (time.perf_counter() - t0)
        t0 = time.perf_counter()   # the batch's own timestamps are whole seconds: timed here, polling every 0.1 s
        b = run_batch(c, args.n, args.tokens)
        assert b.status == "completed" and b.request_counts.completed == args.n, b
        batch_rps = args.n / (time.perf_counter() - t0)
        # Interactive speed alone, then while a batch runs.
        alone = [stream_once(c, i) for i in range(args.k)]
        long_batch = run_batch(c, args.n * 4, args.tokens * 2, wait=False)
        while c.batches.retrieve(long_batch.id).request_counts.completed < 1:
            time.sleep(0.1)
        during = []
        for i in range(args.k):
            during.append(stream_once(c, 100 + i))
            time.sleep(1.0)   # the batch resumes between turns
        metrics = httpx.get(url + "/metrics", timeout=10).text
        c.batches.cancel(long_batch.id)
        return {"parallel": parallel, "interactive_rps": interactive_rps, "batch_rps": batch_rps,
                "alone_tps": statistics.mean(x[1] for x in alone), "during_tps": statistics.mean(x[1] for x in during),
                "alone_ttft": statistics.median(x[0] for x in alone), "during_ttft": statistics.median(x[0] for x in during),
                "preempted": next((float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("switchyard_batch_preemptions_total")), None)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


print(f"machine: {os.cpu_count()} cores; model {args.model}; {args.n} requests of {args.tokens} tokens; {args.k} interactive requests")
print("| --parallel = --batch-concurrency | interactive req/s | batch req/s | ratio | interactive tok/s alone | during a batch | share | TTFT alone | during | batch requests preempted |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for p in (1, 4):
    r = setting(p)
    print(f"| {p} | {r['interactive_rps']:.2f} | {r['batch_rps']:.2f} | {r['batch_rps'] / r['interactive_rps']:.2f}× | "
          f"{r['alone_tps']:.1f} | {r['during_tps']:.1f} | {100 * r['during_tps'] / r['alone_tps']:.0f}% | "
          f"{r['alone_ttft'] * 1000:.0f} ms | {r['during_ttft'] * 1000:.0f} ms | {r['preempted']} |", flush=True)
