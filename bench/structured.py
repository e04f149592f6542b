#!/usr/bin/env python3
"""Generation speed with a JSON Schema against the same requests without one, on an OpenAI-compatible server.

Each request asks for a list of people; `schema` mode sends `response_format: json_schema` with a schema that
forces an array of 12 objects (about 450 tokens), then `free` mode sends the same prompt with `ignore_eos` and
max_tokens set to the number of tokens the schema answer of that request took, so both decode the same lengths
(the cost of a token grows with the context, so unequal lengths would not compare). Per-stream tokens/s = tokens after the first / the time after the first; aggregate tokens/s =
all completion tokens / wall time. N clients run concurrently; each mode runs `--requests` requests per level.
Works against `switchyard serve` and llama.cpp's `llama-server` alike. Prints one JSON line per (mode, N).

    python3 bench/structured.py http://127.0.0.1:8080 --model smollm2 --concurrency 1,8
"""
import argparse
import asyncio
import json
import statistics
import time

import httpx

SCHEMA = {
    "type": "object",
    "properties": {
        "people": {
            "type": "array", "minItems": 12, "maxItems": 12,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 24},
                    "city": {"type": "string", "maxLength": 24},
                    "age": {"type": "integer", "minimum": 0, "maximum": 120},
                    "member": {"type": "boolean"},
                },
                "required": ["name", "city", "age", "member"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["people"],
    "additionalProperties": False,
}
CITIES = ["Paris", "Oslo", "Lima", "Kyoto", "Cairo", "Quito", "Perth", "Turin"]


LENGTHS = {}   # request index → tokens of its schema answer


def body(mode, model, i):
    b = {"model": model, "temperature": 0, "stream": True, "stream_options": {"include_usage": True},
         "messages": [{"role": "user", "content": f"List twelve people who live near {CITIES[i % len(CITIES)]}, as JSON, "
                                                  "with name, city, age and whether they are members."}]}
    if mode == "schema":
        b["response_format"] = {"type": "json_schema", "json_schema": {"name": "people", "schema": SCHEMA, "strict": True}}
        b["max_tokens"] = 600
    else:
        b["max_tokens"] = LENGTHS.get(i, 256)
        b["ignore_eos"] = True
    return b


async def one(client, url, mode, model, i):
    # a server may close an idle keep-alive connection just as it is reused; that request is sent again
    for attempt in range(3):
        try:
            return await one_attempt(client, url, mode, model, i)
        except httpx.RemoteProtocolError:
            if attempt == 2:
                raise


async def one_attempt(client, url, mode, model, i):
    first, count, text = None, 0, ""
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body(mode, model, i)) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                count = chunk["usage"]["completion_tokens"]
            if chunk.get("choices"):
                piece = chunk["choices"][0].get("delta", {}).get("content") or ""
                if piece and first is None:
                    first = time.perf_counter()
                text += piece
    end = time.perf_counter()
    if mode == "schema":
        json.loads(text)   # a constrained answer must parse
        LENGTHS[i] = count
    per_stream = (count - 1) / (end - first) if first and count > 1 and end > first else 0.0
    return count, per_stream


async def level(url, mode, model, n, requests):
    queue = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    results = []
    async with httpx.AsyncClient(timeout=900, limits=httpx.Limits(max_connections=n + 4)) as client:
        async def worker():
            while not queue.empty():
                i = queue.get_nowait()
                results.append(await one(client, url, mode, model, i))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(n)))
        wall = time.perf_counter() - t0
    tokens = sum(r[0] for r in results)
    return {"mode": mode, "concurrency": n, "requests": requests, "tokens": tokens,
            "aggregate_tok_s": tokens / wall, "per_stream_tok_s": statistics.median(r[1] for r in results)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("--model", required=True)
    p.add_argument("--concurrency", default="1,8")
    p.add_argument("--requests", type=int, default=0, help="requests per level (default: 2 × N, at least 4)")
    p.add_argument("--modes", default="schema,free")
    a = p.parse_args()
    for n in [int(x) for x in a.concurrency.split(",")]:
        for mode in a.modes.split(","):
            r = asyncio.run(level(a.url.rstrip("/"), mode, a.model, n, a.requests or max(4, 2 * n)))
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
