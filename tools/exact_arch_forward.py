#!/usr/bin/env python3
"""Exact (float64) log-probabilities for the random-weight architecture files of Tests/Fixtures/reference/arch, and
how far llama.cpp's own log-probabilities are from them.

Dequantizes every weight with llama.cpp's `gguf` package and evaluates the file's architecture in float64 with numpy
(no activation quantization, no half-precision cache) along each of llama.cpp's greedy completions in llamacpp.json
(prompt, then its chosen tokens: teacher-forced). It writes the exact log-probability of llama.cpp's chosen token at
every step into exact.json beside the file (what ArchitectureReferenceTests holds the engine to, next to llama.cpp's
own distance from it) and prints llama.cpp's distance.

The llama family only: llama (rope_freqs), qwen2 (biases), qwen3 (query/key norms), qwen3moe (experts), phi3 (fused,
LongRoPE).

    pip install gguf numpy
    python3 tools/exact_arch_forward.py [ARCH [FILE-NAME]]   # default: every file of those architectures
"""
import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "reference" / "arch"
FAMILY = ["llama", "qwen2", "qwen3", "qwen3moe", "phi3"]


class Model:
    def __init__(self, path: Path):
        r = GGUFReader(str(path))
        self.tensors = {t.name: t for t in r.tensors}
        f = lambda k, d=None: r.fields[k].contents() if k in r.fields else d  # noqa: E731
        a = self.arch = f("general.architecture")
        self.dim, self.layers = f(f"{a}.embedding_length"), f(f"{a}.block_count")
        self.heads, self.kv_heads = f(f"{a}.attention.head_count"), f(f"{a}.attention.head_count_kv")
        self.hd = f(f"{a}.attention.key_length", self.dim // self.heads)
        self.rot = f(f"{a}.rope.dimension_count", self.hd)
        self.eps = f(f"{a}.attention.layer_norm_rms_epsilon")
        self.used = f(f"{a}.expert_used_count", 0)
        theta = f(f"{a}.rope.freq_base", 10000.0)
        self.freqs = theta ** (-np.arange(0, self.rot, 2) / self.rot)
        if "rope_freqs.weight" in self.tensors:
            self.freqs = self.freqs / self.w("rope_freqs.weight")
        # Phi-3's LongRoPE: the long factors (the reference ran with a context above the original one) and the
        # rotation's magnitude
        self.magnitude = f(f"{a}.rope.scaling.attn_factor", 1.0)
        if "rope_factors_long.weight" in self.tensors:
            assert f(f"{a}.context_length") > f(f"{a}.rope.scaling.original_context_length")
            self.freqs = self.freqs / self.w("rope_factors_long.weight")
        self.neox = a != "llama"

    def w(self, name):
        t = self.tensors.get(name)
        if t is None:
            return None
        a = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float64)
        return a.reshape([int(x) for x in reversed(t.shape)]) if len(t.shape) > 1 else a.reshape(-1)

    def rms(self, v, w):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + self.eps) * w

    def rope(self, v, n):
        angles = np.arange(n)[:, None, None] * self.freqs[None, None, :]
        cos, sin = self.magnitude * np.cos(angles), self.magnitude * np.sin(angles)
        v = v.copy()
        half = self.rot // 2
        if self.neox:
            x0, x1 = v[..., :half].copy(), v[..., half:self.rot].copy()
            v[..., :half], v[..., half:self.rot] = x0 * cos - x1 * sin, x0 * sin + x1 * cos
        else:
            x0, x1 = v[..., 0:self.rot:2].copy(), v[..., 1:self.rot:2].copy()
            v[..., 0:self.rot:2], v[..., 1:self.rot:2] = x0 * cos - x1 * sin, x0 * sin + x1 * cos
        return v

    def log_probs(self, ids):
        """Log-probabilities over the vocabulary at every position."""
        n, hd, H, K = len(ids), self.hd, self.heads, self.kv_heads
        x = self.w("token_embd.weight")[ids]
        mask = np.triu(np.full((n, n), -np.inf), 1)
        for i in range(self.layers):
            p = f"blk.{i}."
            h = self.rms(x, self.w(p + "attn_norm.weight"))
            if self.arch == "phi3":
                qkv = h @ self.w(p + "attn_qkv.weight").T
                q, k, v = qkv[:, :H * hd], qkv[:, H * hd:(H + K) * hd], qkv[:, (H + K) * hd:]
            else:
                q, k, v = (h @ self.w(p + f"attn_{c}.weight").T for c in "qkv")
                for c, t in (("q", "q"), ("k", "k"), ("v", "v")):
                    b = self.w(p + f"attn_{c}.bias")
                    if b is not None:
                        if c == "q": q = q + b  # noqa: E701
                        if c == "k": k = k + b  # noqa: E701
                        if c == "v": v = v + b  # noqa: E701
            q, k, v = q.reshape(n, H, hd), k.reshape(n, K, hd), v.reshape(n, K, hd)
            if self.arch.startswith("qwen3"):
                q, k = self.rms(q, self.w(p + "attn_q_norm.weight")), self.rms(k, self.w(p + "attn_k_norm.weight"))
            q, k = self.rope(q, n), self.rope(k, n)
            k, v = np.repeat(k, H // K, axis=1), np.repeat(v, H // K, axis=1)
            scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            att = np.einsum("hqk,khd->qhd", scores, v).reshape(n, H * hd)
            x = x + att @ self.w(p + "attn_output.weight").T
            h = self.rms(x, self.w(p + "ffn_norm.weight"))
            if self.used:
                logits = h @ self.w(p + "ffn_gate_inp.weight").T
                probs = np.exp(logits - logits.max(-1, keepdims=True))
                probs /= probs.sum(-1, keepdims=True)
                gates, ups, downs = (self.w(p + f"ffn_{c}_exps.weight") for c in ("gate", "up", "down"))
                out = np.zeros_like(x)
                for t in range(n):
                    top = np.argsort(-probs[t], kind="stable")[:self.used]
                    weights = probs[t, top] / probs[t, top].sum()
                    for e, we in zip(top, weights):
                        g, u = gates[e] @ h[t], ups[e] @ h[t]
                        out[t] += we * (downs[e] @ (g / (1 + np.exp(-g)) * u))
                x = x + out
            else:
                if self.arch == "phi3":
                    gu = h @ self.w(p + "ffn_up.weight").T
                    g, u = np.split(gu, 2, axis=-1)
                else:
                    g, u = h @ self.w(p + "ffn_gate.weight").T, h @ self.w(p + "ffn_up.weight").T
                x = x + (g / (1 + np.exp(-g)) * u) @ self.w(p + "ffn_down.weight").T
        out = self.w("output.weight")
        if out is None:
            out = self.w("token_embd.weight")
        logits = self.rms(x, self.w("output_norm.weight")) @ out.T
        m = logits.max(-1, keepdims=True)
        return logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))


def main() -> int:
    archs = sys.argv[1:2] or FAMILY
    for arch in archs:
        folder = ROOT / arch
        ref = json.loads((folder / "llamacpp.json").read_text(encoding="utf-8"))
        names = sys.argv[2:3] or list(ref["completions"])
        exact_path = folder / "exact.json"
        exact = json.loads(exact_path.read_text(encoding="utf-8")) if exact_path.exists() else {}
        for name in names:
            model = Model(folder / name)
            cases, diffs = [], []
            for c in ref["completions"][name]:
                ids = c["prompt_ids"] + c["greedy_ids"]
                lp = model.log_probs(ids)
                start = len(c["prompt_ids"]) - 1
                steps = [float(lp[start + s, t]) for s, t in enumerate(c["greedy_ids"])]
                cases.append(steps)
                diffs += [abs(e - s["logprob"]) for e, s in zip(steps, c["top5"])]
            exact[name] = cases
            d = np.array(diffs)
            print(f"{name}: llama.cpp against exact over {len(d)} steps: mean |Δ| {d.mean():.4f}, max {d.max():.4f}, "
                  f"{(d <= 0.05).mean() * 100:.0f}% within 0.05")
        exact_path.write_text(json.dumps(exact) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
