#!/usr/bin/env python3
"""Sentences per second of an OpenAI-compatible `/v1/embeddings` server, one client sending requests of BATCH
sentences one after another, plus the vectors of a few sentences (to compare servers).

    python3 bench/embeddings.py URL --model minilm --batch 1,64 --sentences 256 [--vectors FILE]

Prints one JSON line per batch size: {"batch", "sentences", "seconds", "sentences_per_s"}.
"""
import argparse
import json
import re
import time

import httpx

TEXT = "Tests/Fixtures/reference/perplexity-text.txt"


def sentences(n):
    words = re.sub(r"\s+", " ", open(TEXT, encoding="utf-8").read())
    parts = [p.strip() for p in re.split(r"(?<=[.;:])\s", words) if len(p.strip()) > 20]
    out = []
    while len(out) < n:
        out += parts
    # at most ~60 words each (under 256 tokens), as short texts are what embedding clients send
    return [" ".join(s.split()[:60]) for s in out[:n]]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--model", default="minilm")
    p.add_argument("--batch", default="1,64")
    p.add_argument("--sentences", type=int, default=256)
    p.add_argument("--vectors", help="write the vectors of the first 8 sentences here (JSON)")
    a = p.parse_args()
    texts = sentences(a.sentences)
    client = httpx.Client(base_url=a.url.rstrip("/"), timeout=600)

    def embed(batch):
        r = client.post("/v1/embeddings", json={"model": a.model, "input": batch, "encoding_format": "float"})
        r.raise_for_status()
        return [d["embedding"] for d in sorted(r.json()["data"], key=lambda d: d["index"])]

    embed(texts[:4])  # warm: the model loaded, caches touched
    if a.vectors:
        json.dump({"texts": texts[:8], "vectors": embed(texts[:8])}, open(a.vectors, "w"))
    for b in [int(x) for x in a.batch.split(",")]:
        began = time.perf_counter()
        for i in range(0, len(texts), b):
            embed(texts[i:i + b])
        seconds = time.perf_counter() - began
        print(json.dumps({"batch": b, "sentences": len(texts), "seconds": round(seconds, 3),
                          "sentences_per_s": round(len(texts) / seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
