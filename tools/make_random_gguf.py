#!/usr/bin/env python3
"""Writes a GGUF with random weights at the shape of a published model, for speed tests.

The weights are random (normal, std 0.02; norms 1.0), so the model says nothing useful, but every matrix has the
shape, type and layout of the real one, which is all that prompt and generation speed depend on. The vocabulary
is a synthetic byte-level BPE one (`tokenizer.ggml.model = gpt2`, pre-tokenizer `gpt-2`) of the real size: the
256 byte tokens, then two- and three-byte merges up to 128000 tokens, then Llama 3's 256 special tokens
(`<|begin_of_text|>` = 128000 … `<|eot_id|>` = 128009, control). llama.cpp and switchyard both load it.

Shapes (from each model's published config.json):
  1b  Llama 3.2 1B    hidden 2048, 16 layers, 32 heads, 8 KV heads, FFN 8192, tied embeddings     ~1.24e9 parameters
  3b  Llama 3.2 3B    hidden 3072, 28 layers, 24 heads, 8 KV heads, FFN 8192, tied embeddings     ~3.21e9
  8b  Llama 3.1 8B    hidden 4096, 32 layers, 32 heads, 8 KV heads, FFN 14336, output.weight     ~8.03e9
All: vocabulary 128256, rope theta 500000, RMS epsilon 1e-5. Llama 3.1's rope scaling (`rope_freqs.weight`) is
left out: it changes the rotation angles, not the cost. The other architectures at their published small sizes:
  qwen2-1.5b   Qwen 2.5 1.5B (query/key/value biases)        qwen3-1.7b   Qwen 3 1.7B (head size 128, query/key norms)
  phi3-mini    Phi-3 mini 3.8B (fused matrices)               gemma2-2b    Gemma 2 2B (head size 256, soft-caps)
  gemma3-1b    Gemma 3 1B (head size 256, 262144 tokens)      qwen3moe-8l  Qwen 3 30B-A3B's layers, 8 of its 48
with the same synthetic vocabulary at each model's size (its tokens say nothing of the real one's).

The F16 file is written tensor by tensor (the largest tensor, 8b's embedding at 1 GB, bounds the memory used);
`--quantize` then runs llama.cpp's `llama-quantize` on it. Files that already exist are kept.

  python3 tools/make_random_gguf.py --shape 1b --out bench/.models --quantize Q4_K_M,Q8_0
  python3 tools/make_random_gguf.py --shape 8b --dry-run          # shapes and parameter count only

The `gguf` package is llama.cpp's (`pip install gguf`); without it the copy in bench/.llama.cpp/src/gguf-py
(present once a bench script has built llama.cpp) is used.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Shape:
    name: str
    description: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    tied: bool
    vocab: int = 128256
    rope_theta: float = 500000.0
    rms_eps: float = 1e-5
    context: int = 131072
    arch: str = "llama"
    head_size: int = 0          # 0: hidden / heads
    qkv_bias: bool = False      # qwen2
    qk_norm: bool = False       # qwen3, qwen3moe, gemma3
    fused: bool = False         # phi3: attn_qkv and a gate-up ffn_up
    experts: int = 0            # qwen3moe: experts per layer, of width expert_ffn, `used` per token
    used: int = 0
    expert_ffn: int = 0
    window: int = 0             # gemma2 / gemma3 sliding window
    softcaps: tuple[float, float] = (0.0, 0.0)   # gemma2: attention, final logits

    @property
    def head_dim(self) -> int:
        return self.head_size or self.hidden // self.heads

    @property
    def gemma(self) -> bool:
        return self.arch.startswith("gemma")


SHAPES = {
    "1b": Shape("1b", "Llama 3.2 1B", hidden=2048, layers=16, heads=32, kv_heads=8, ffn=8192, tied=True),
    "3b": Shape("3b", "Llama 3.2 3B", hidden=3072, layers=28, heads=24, kv_heads=8, ffn=8192, tied=True),
    "8b": Shape("8b", "Llama 3.1 8B", hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, tied=False),
    # the other architectures, at their published small sizes
    "qwen2-1.5b": Shape("qwen2-1.5b", "Qwen 2.5 1.5B", hidden=1536, layers=28, heads=12, kv_heads=2, ffn=8960, tied=True,
                        vocab=151936, rope_theta=1e6, rms_eps=1e-6, context=32768, arch="qwen2", qkv_bias=True),
    "qwen3-1.7b": Shape("qwen3-1.7b", "Qwen 3 1.7B", hidden=2048, layers=28, heads=16, kv_heads=8, ffn=6144, tied=True,
                        vocab=151936, rope_theta=1e6, rms_eps=1e-6, context=40960, arch="qwen3", head_size=128, qk_norm=True),
    "phi3-mini": Shape("phi3-mini", "Phi-3 mini 4k (3.8B)", hidden=3072, layers=32, heads=32, kv_heads=32, ffn=8192,
                       tied=False, vocab=32064, rope_theta=10000.0, context=4096, arch="phi3", fused=True),
    "gemma2-2b": Shape("gemma2-2b", "Gemma 2 2B", hidden=2304, layers=26, heads=8, kv_heads=4, ffn=9216, tied=True,
                       vocab=256000, rope_theta=10000.0, rms_eps=1e-6, context=8192, arch="gemma2", head_size=256,
                       window=4096, softcaps=(50.0, 30.0)),
    "gemma3-1b": Shape("gemma3-1b", "Gemma 3 1B", hidden=1152, layers=26, heads=4, kv_heads=1, ffn=6912, tied=True,
                       vocab=262144, rope_theta=1e6, rms_eps=1e-6, context=32768, arch="gemma3", head_size=256,
                       qk_norm=True, window=512),
    # Qwen 3 30B-A3B's layer (128 experts of width 768, 8 per token) with 8 of its 48 layers: 4.8e9 parameters
    "qwen3moe-8l": Shape("qwen3moe-8l", "Qwen 3 30B-A3B, 8 of 48 layers", hidden=2048, layers=8, heads=32, kv_heads=4,
                         ffn=6144, tied=False, vocab=151936, rope_theta=1e6, rms_eps=1e-6, context=40960, arch="qwen3moe",
                         head_size=128, qk_norm=True, experts=128, used=8, expert_ffn=768),
}

# Number of ordinary (BPE) tokens before the special ones, as in Llama 3.
N_BPE = 128000
WEIGHT_STD = 0.02
CHUNK = 1 << 24  # random numbers generated at a time (64 MB of float32)

LLAMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def import_gguf():
    try:
        import gguf  # noqa: F401
    except ImportError:
        vendored = REPO / "bench/.llama.cpp/src/gguf-py"
        if not (vendored / "gguf/__init__.py").exists():
            sys.exit("the `gguf` package is missing: pip install gguf (or build llama.cpp with a bench script first)")
        sys.path.insert(0, str(vendored))
    import gguf
    return gguf


def tensors(shape: Shape) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, numpy shape (rows, columns), kind) in file order; kind is "norm" (F32, ones), "bias" (F32, zeros),
    "router" (F32, random: llama.cpp's converter keeps a mixture's router in F32) or "weight" (F16)."""
    d, kv, f = shape.hidden, shape.kv_heads * shape.head_dim, shape.ffn
    q, hd = shape.heads * shape.head_dim, shape.head_dim
    out = [("token_embd.weight", (shape.vocab, d), "weight")]
    for i in range(shape.layers):
        p = f"blk.{i}."
        out.append((p + "attn_norm.weight", (d,), "norm"))
        if shape.fused:
            out.append((p + "attn_qkv.weight", (q + 2 * kv, d), "weight"))
        else:
            out += [(p + "attn_q.weight", (q, d), "weight"), (p + "attn_k.weight", (kv, d), "weight"),
                    (p + "attn_v.weight", (kv, d), "weight")]
        if shape.qkv_bias:
            out += [(p + "attn_q.bias", (q,), "bias"), (p + "attn_k.bias", (kv,), "bias"), (p + "attn_v.bias", (kv,), "bias")]
        if shape.qk_norm:
            out += [(p + "attn_q_norm.weight", (hd,), "norm"), (p + "attn_k_norm.weight", (hd,), "norm")]
        out.append((p + "attn_output.weight", (d, q), "weight"))
        if shape.gemma:
            out.append((p + "post_attention_norm.weight", (d,), "norm"))
        out.append((p + "ffn_norm.weight", (d,), "norm"))
        if shape.experts:
            n, e = shape.experts, shape.expert_ffn
            out += [(p + "ffn_gate_inp.weight", (n, d), "router"), (p + "ffn_gate_exps.weight", (n, e, d), "weight"),
                    (p + "ffn_up_exps.weight", (n, e, d), "weight"), (p + "ffn_down_exps.weight", (n, d, e), "weight")]
        elif shape.fused:
            out += [(p + "ffn_up.weight", (2 * f, d), "weight"), (p + "ffn_down.weight", (d, f), "weight")]
        else:
            out += [(p + "ffn_gate.weight", (f, d), "weight"), (p + "ffn_up.weight", (f, d), "weight"),
                    (p + "ffn_down.weight", (d, f), "weight")]
        if shape.gemma:
            out.append((p + "post_ffw_norm.weight", (d,), "norm"))
    out.append(("output_norm.weight", (d,), "norm"))
    if not shape.tied:
        out.append(("output.weight", (shape.vocab, d), "weight"))
    return out


def byte_level_chars() -> list[str]:
    """GPT-2's spelling of each byte (printable Latin-1 stands for itself, the rest from U+0100 on)."""
    chars, nxt = [], 256
    for b in range(256):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF:
            chars.append(chr(b))
        else:
            chars.append(chr(nxt))
            nxt += 1
    return chars


def vocabulary(size: int) -> tuple[list[str], list[int], list[str]]:
    """Tokens, token types and merges: 256 byte tokens, two-byte then three-byte merged tokens (common ASCII
    characters first, so ordinary text merges), up to N_BPE, then control tokens named as in Llama 3."""
    spelled = byte_level_chars()
    # Base order: space, lower case, upper case, digits, punctuation, newline/tab, then the other bytes.
    order = [ord(" ")] + list(range(ord("a"), ord("z") + 1)) + list(range(ord("A"), ord("Z") + 1))
    order += list(range(ord("0"), ord("9") + 1)) + [b for b in range(0x21, 0x7F) if chr(b) in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]
    order += [0x0A, 0x09]
    order += [b for b in range(256) if b not in set(order)]
    base = [spelled[b] for b in order]
    assert len(base) == 256 and len(set(base)) == 256

    n_bpe = min(N_BPE, size - 256)   # at least Llama 3's 256 special tokens
    tokens = list(base)
    merges: list[str] = []

    def square(n: int):
        """Pairs (i, j) of 0..n-1 ordered by max(i, j): the pairs of the first k items come first."""
        for m in range(n):
            for i in range(m):
                yield i, m
                yield m, i
            yield m, m

    # Two bytes: base[i] + base[j].
    pairs: list[str] = []
    for i, j in square(256):
        if len(tokens) >= n_bpe:
            break
        merges.append(f"{base[i]} {base[j]}")
        tokens.append(base[i] + base[j])
        pairs.append(base[i] + base[j])
    # Three bytes: pair + byte.
    for k, c in square(len(pairs)):
        if len(tokens) >= n_bpe:
            break
        if c >= 256:
            continue
        merges.append(f"{pairs[k]} {base[c]}")
        tokens.append(pairs[k] + base[c])
    assert len(tokens) == n_bpe, "vocabulary too large for two- and three-byte tokens"
    types = [1] * n_bpe

    named = {0: "<|begin_of_text|>", 1: "<|end_of_text|>", 4: "<|finetune_right_pad_id|>", 6: "<|start_header_id|>",
             7: "<|end_header_id|>", 8: "<|eom_id|>", 9: "<|eot_id|>", 10: "<|python_tag|>"}
    reserved = 0
    for k in range(size - n_bpe):
        if k in named:
            tokens.append(named[k])
        else:
            tokens.append(f"<|reserved_special_token_{reserved}|>")
            reserved += 1
        types.append(3)
    assert len(set(tokens)) == len(tokens)
    return tokens, types, merges


def human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return str(n)


def random_f16(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(int(np.prod(shape)), dtype=np.float16)
    for start in range(0, out.size, CHUNK):
        n = min(CHUNK, out.size - start)
        chunk = rng.standard_normal(n, dtype=np.float32)
        chunk *= WEIGHT_STD
        out[start:start + n] = chunk
    return out.reshape(shape)


def write_f16(shape: Shape, path: Path, seed: int, context: int) -> None:
    gguf = import_gguf()
    tmp = path.with_name(path.name + ".part")
    writer = gguf.GGUFWriter(tmp, shape.arch)
    # the family's name stays out of general.name: llama.cpp sets token attributes by it (phi3 expects its tokens)
    writer.add_name(f"random {shape.description} (seed {seed})" if shape.arch == "llama" else f"random weights (seed {seed})")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_context_length(context)
    writer.add_embedding_length(shape.hidden)
    writer.add_block_count(shape.layers)
    writer.add_feed_forward_length(shape.ffn)
    if shape.experts:
        writer.add_expert_count(shape.experts)
        writer.add_expert_used_count(shape.used)
        writer.add_expert_feed_forward_length(shape.expert_ffn)
    if shape.window:
        writer.add_sliding_window(shape.window)
    if shape.softcaps[0]:
        writer.add_attn_logit_softcapping(shape.softcaps[0])
        writer.add_final_logit_softcapping(shape.softcaps[1])
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    writer.add_vocab_size(shape.vocab)

    tokens, types, merges = vocabulary(shape.vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    n_bpe = min(N_BPE, shape.vocab - 256)
    writer.add_bos_token_id(n_bpe)       # <|begin_of_text|>
    writer.add_eos_token_id(n_bpe + 9)   # <|eot_id|>, as in the instruct models
    writer.add_add_bos_token(True)
    writer.add_chat_template(LLAMA3_CHAT_TEMPLATE)

    plan = tensors(shape)
    for name, dims, kind in plan:
        dtype = np.float16 if kind == "weight" else np.float32
        nbytes = int(np.prod(dims)) * np.dtype(dtype).itemsize
        writer.add_tensor_info(name, dims, np.dtype(dtype), nbytes)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    started = time.time()
    for index, (name, dims, kind) in enumerate(plan):
        if kind == "norm":
            data = np.ones(dims, dtype=np.float32)
        elif kind == "bias":
            data = np.zeros(dims, dtype=np.float32)
        elif kind == "router":
            data = np.random.default_rng([seed, index]).standard_normal(dims, dtype=np.float32)
        else:
            # One generator per tensor: the same seed gives the same tensor whatever else changes.
            data = random_f16(np.random.default_rng([seed, index]), dims)
        writer.write_tensor_data(data)
        del data
        if sys.stderr.isatty():
            print(f"\r  {index + 1}/{len(plan)} tensors, {time.time() - started:.0f} s", end="", file=sys.stderr)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    writer.close()
    os.replace(tmp, path)


def find_quantize(llama_bin: str | None) -> Path:
    candidates = [Path(llama_bin) / "llama-quantize"] if llama_bin else []
    candidates.append(REPO / "bench/.llama.cpp/src/build/bin/llama-quantize")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    sys.exit("llama-quantize not found (build it: source bench/lib.sh; build_llama_tool llama-quantize, "
             "or pass --llama-bin DIR)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--out", default=str(REPO / "bench/.models"), help="output folder (default bench/.models)")
    ap.add_argument("--quantize", default="", help="comma-separated llama-quantize types, e.g. Q4_K_M,Q8_0")
    ap.add_argument("--llama-bin", help="folder holding llama-quantize (default bench/.llama.cpp/src/build/bin)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--context", type=int, default=None, help="llama.context_length (default the model's, 131072)")
    ap.add_argument("--keep-f16", action=argparse.BooleanOptionalAction, default=True,
                    help="keep the F16 file after quantizing (default yes)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama-quantize threads")
    ap.add_argument("--dry-run", action="store_true", help="print the tensor shapes and parameter count only")
    args = ap.parse_args()

    shape = SHAPES[args.shape]
    context = args.context or shape.context
    plan = tensors(shape)
    params = sum(int(np.prod(d)) for _, d, _ in plan)
    f16_bytes = sum(int(np.prod(d)) * (2 if k == "weight" else 4) for _, d, k in plan)
    if args.dry_run:
        print(f"{shape.name}: {shape.description}, hidden {shape.hidden}, {shape.layers} layers, {shape.heads} heads "
              f"({shape.kv_heads} KV, head size {shape.head_dim}), FFN {shape.ffn}, vocabulary {shape.vocab}, "
              f"{'tied' if shape.tied else 'untied'} embeddings")
        seen = set()
        for name, dims, kind in plan:
            generic = name.split(".", 2)[-1] if name.startswith("blk.") else name
            if generic in seen:
                continue
            seen.add(generic)
            label = ("blk.N." + generic) if name.startswith("blk.") else name
            ggml_dims = list(reversed(dims))
            print(f"  {label:28s} {str(ggml_dims):16s} {'F16' if kind == 'weight' else 'F32'}")
        print(f"  {len(plan)} tensors, {params:,} parameters ({params / 1e9:.3f}e9), F16 file ≈ {human(f16_bytes)}")
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"llama-{shape.name}-random" if shape.arch == "llama" else f"{shape.name}-random"
    f16 = out / f"{stem}.F16.gguf"
    quants = [q.strip() for q in args.quantize.split(",") if q.strip()]
    targets = [out / f"{stem}.{q}.gguf" for q in quants]
    written: list[Path] = []

    need_f16 = not f16.exists() and (args.keep_f16 or not all(t.exists() for t in targets))
    if need_f16:
        print(f"writing {f16} ({params / 1e9:.2f}e9 parameters, {human(f16_bytes)})…", file=sys.stderr)
        started = time.time()
        write_f16(shape, f16, args.seed, context)
        print(f"  {time.time() - started:.0f} s", file=sys.stderr)
        written.append(f16)

    if quants:
        quantize = None
        for q, target in zip(quants, targets):
            if target.exists():
                continue
            quantize = quantize or find_quantize(args.llama_bin)
            tmp = target.with_name(target.name + ".part")
            print(f"quantizing to {q}…", file=sys.stderr)
            started = time.time()
            result = subprocess.run([str(quantize), str(f16), str(tmp), q, str(args.threads)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if result.returncode != 0:
                sys.stderr.write(result.stdout[-4000:])
                tmp.unlink(missing_ok=True)
                sys.exit(f"llama-quantize {q} failed (exit {result.returncode})")
            os.replace(tmp, target)
            print(f"  {time.time() - started:.0f} s", file=sys.stderr)
            written.append(target)
        if not args.keep_f16 and f16.exists():
            f16.unlink()

    for path in [f16, *targets]:
        if path.exists():
            state = "written" if path in written else "present"
            print(f"{path}\t{human(path.stat().st_size)}\t{state}")


if __name__ == "__main__":
    main()
