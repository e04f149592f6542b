#!/usr/bin/env python3
"""Exact (float64) forward pass of SmolLM2-135M from its GGUF file, for judging numerical agreement.

Dequantizes every weight with the `gguf` package and evaluates the llama architecture in float64 with numpy — no
activation quantization, no half-precision cache. Comparing its log-probabilities with llama.cpp's (in
Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/llamacpp.json) shows how far llama.cpp itself is from the exact
result of the same weights; Switchyard's differences from llama.cpp are of the same size.

    pip install gguf numpy
    python3 tools/exact_forward.py [CASE] [MODEL.gguf]
    python3 tools/exact_forward.py embeddings [MODEL.gguf]

`embeddings`: the exact last-token hidden states (after the final norm, unit length) of the inputs in
smollm2-135m-instruct-q4_1/embeddings-last.json, and the cosine of llama.cpp's vectors to them — how far the
reference itself is from exact math, which bounds what a test may ask of anyone's agreement with it.
"""
import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

embeddings_mode = len(sys.argv) > 1 and sys.argv[1] == "embeddings"
case_index = int(sys.argv[1]) if len(sys.argv) > 1 and not embeddings_mode else 0
model = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser("~/.switchyard/models/SmolLM2-135M-Instruct.Q4_1.gguf")
here = os.path.dirname(os.path.abspath(__file__))
ref = json.load(open(os.path.join(here, "../Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/llamacpp.json")))

reader = GGUFReader(model)
tensors = {t.name: t for t in reader.tensors}
field = lambda k: reader.fields[k].contents()
dim = field("llama.embedding_length")
layers = field("llama.block_count")
heads = field("llama.attention.head_count")
kv_heads = field("llama.attention.head_count_kv")
theta = field("llama.rope.freq_base")
eps = field("llama.attention.layer_norm_rms_epsilon")
hd = dim // heads


def weight(name):
    t = tensors[name]
    a = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float64)
    return a.reshape([int(x) for x in reversed(t.shape)]) if len(t.shape) > 1 else a.reshape(-1)


emb = weight("token_embd.weight")
freqs = theta ** (-np.arange(0, hd, 2) / hd)


def rms(v, w):
    return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w


def forward(ids):
    """The residual stream after the last layer, one row per position."""
    n = len(ids)
    angles = np.arange(n)[:, None, None] * freqs[None, None, :]
    cos, sin = np.cos(angles), np.sin(angles)

    def rope(v):  # adjacent pairs, ggml's "normal" mode
        a, b = v[..., 0::2], v[..., 1::2]
        out = np.empty_like(v)
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out

    x = emb[ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for layer in range(layers):
        p = f"blk.{layer}."
        h = rms(x, weight(p + "attn_norm.weight"))
        q = rope((h @ weight(p + "attn_q.weight").T).reshape(n, heads, hd))
        k = rope((h @ weight(p + "attn_k.weight").T).reshape(n, kv_heads, hd))
        v = (h @ weight(p + "attn_v.weight").T).reshape(n, kv_heads, hd)
        out = np.zeros((n, heads, hd))
        for head in range(heads):
            g = head // (heads // kv_heads)
            s = q[:, head] @ k[:, g].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            out[:, head] = (s / s.sum(-1, keepdims=True)) @ v[:, g]
        x = x + out.reshape(n, dim) @ weight(p + "attn_output.weight").T
        h = rms(x, weight(p + "ffn_norm.weight"))
        gate, up = h @ weight(p + "ffn_gate.weight").T, h @ weight(p + "ffn_up.weight").T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ weight(p + "ffn_down.weight").T
    return x


if embeddings_mode:
    cases = json.load(open(os.path.join(here, "../Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/embeddings-last.json")))["cases"]
    worst = 1.0
    for c in cases:
        v = rms(forward(c["ids"])[-1], weight("output_norm.weight"))
        v /= np.linalg.norm(v)
        r = np.asarray(c["vector"])
        cos = float(v @ r / np.linalg.norm(r))
        worst = min(worst, cos)
        print(f"{c['text'][:40]!r}: cosine(llama.cpp, exact) {cos:.6f}")
    print(f"lowest: {worst:.6f}")
    sys.exit(0)

case = ref["completions"][case_index]
ids = case["prompt_ids"] + case["greedy_ids"][:32]
x = forward(ids)
logits = rms(x, weight("output_norm.weight")) @ emb.T
logprobs = logits - logits.max(-1, keepdims=True)
logprobs -= np.log(np.exp(logprobs).sum(-1, keepdims=True))
start = len(case["prompt_ids"]) - 1
diffs = []
for step in range(32):
    row, want = logprobs[start + step], case["top5"][step]
    if row.argmax() != want["id"]:
        print(f"step {step}: exact argmax {row.argmax()} differs from llama.cpp's {want['id']}")
        break
    diffs.append(abs(row[want["id"]] - want["logprob"]))
    print(f"step {step}: exact {row[want['id']]:.4f}  llama.cpp {want['logprob']:.4f}  |d| {diffs[-1]:.4f}")
d = np.array(diffs)
print(f"case {case_index}: {len(d)} steps, llama.cpp vs exact: mean |d| {d.mean():.4f}, max {d.max():.4f}, "
      f"{(d > 0.05).sum()} steps beyond 0.05")
