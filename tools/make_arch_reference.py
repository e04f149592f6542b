#!/usr/bin/env python3
"""Small random-weight GGUF files of architectures the engine runs, with llama.cpp's own greedy completions for them
(Tests/Fixtures/reference/arch/NAME/): the check of an architecture against llama.cpp without downloading real
weights.

For each architecture: a byte-level BPE vocabulary trained by Hugging Face `tokenizers` on the GPL's text (Qwen 2's
pre-tokenizer, 512 tokens and three specials), random weights (seeded; matrices normal with standard deviation 0.3,
query and key 0.1, norms 1 ± 0.1 — larger than an initialization so that the next token is not a coin toss), written
as F16 by llama.cpp's `gguf` package and quantized to Q8_0 by llama.cpp's `llama-quantize`, and the same
architecture at widths of 256 (K-quant rows are 256 values; heads of 64, four experts for qwen3moe) quantized to
Q4_K_M (Q4_K matrices with Q6_K output and some value/down matrices, as users download); then, for each file,
`llama-server`'s greedy completions of four prompts with the five most likely tokens and their log-probabilities at
every step (the format of tools/make_reference.py, whose server helpers this uses). The 128 byte tokens of bytes
0x80-0xFF are banned from the greedy choice (`logit_bias` false; their log-probabilities still count): llama-server
reports probabilities per whole UTF-8 character, so a step that emitted half of one would go missing from the list.

  qwen3   Qwen 3: per-head query/key RMSNorm, NeoX rotary embedding, a head size (32) apart from width / heads (16),
          GQA 4/2, an untied output, no biases.
  phi3    Phi-3.5 / Phi-3 128k: one fused query-key-value matrix, one fused gate-up matrix (gate rows first), NeoX
          rotary embedding with LongRoPE (long and short factors per pair, an original context of 64 below the 512
          of the file, so both engines take the long factors and scale the rotation by sqrt(1 + ln 8 / ln 64)),
          4 heads of 16, an untied output.
  gemma3  Gemma 3: six layers (five with an 8-position sliding window and a rotary base of 10,000, one global with
          base 1,000,000 and linear rotary scaling by 8, as Gemma 3 4B and up have), per-head query/key norms,
          pre- and post-norms, GELU, a head size (32) apart from width / heads (16), a tied output.
  llama   Llama 3.1: adjacent-pair rotary embedding with Llama 3.1's frequency factors (`rope_freqs.weight`, its
          formula with an original context of 64 so that the factors matter within the prompts), GQA 4/2 (the layout
          Mistral's files share), an untied output.
  qwen2   Qwen 2 / 2.5: biases on the query, key and value projections, NeoX rotary embedding, GQA 4/2.
  qwen3moe  Qwen 3 MoE: Qwen 3's attention and a mixture of 8 experts of width 64 in every layer, 2 chosen per token
          by a softmax router (F32, as llama.cpp's converter writes it) with their weights renormalized.
  gemma2  Gemma 2: four layers alternating an 8-position sliding window and global attention, attention scores and
          final logits soft-capped (caps of 4 and 5, lower than Gemma 2's 50 and 30 so that random weights reach
          them), pre- and post-norms, GELU, a head size apart from width / heads, a tied output.

Needs: pip install gguf numpy tokenizers; llama-server and llama-quantize from the bench scripts
(bench/.llama.cpp/src/build/bin; `bash bench/compare.sh` builds them) or --llama-bin DIR.

    python3 tools/make_arch_reference.py [--arch qwen3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import make_reference as mr  # noqa: E402  (the llama-server helpers and the completion format)

OUT = ROOT / "Tests" / "Fixtures" / "reference" / "arch"
CORPUS = ROOT / "Tests" / "Fixtures" / "reference" / "perplexity-text.txt"
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PROMPTS = ["The GNU General Public License is", "Everyone is permitted to copy and distribute",
           "<|im_start|>user\nWhat is free software?<|im_end|>\n<|im_start|>assistant\n", "1234 + 5678 ="]
SHAPES = {
    "qwen3": dict(dim=64, layers=2, heads=4, kv_heads=2, head_dim=32, ffn=128, theta=1_000_000.0, eps=1e-6),
    "phi3": dict(dim=64, layers=2, heads=4, kv_heads=4, head_dim=16, ffn=128, theta=10_000.0, eps=1e-5),
    "gemma3": dict(dim=64, layers=6, heads=4, kv_heads=2, head_dim=32, ffn=128, theta=1_000_000.0, eps=1e-6),
    "gemma2": dict(dim=64, layers=4, heads=4, kv_heads=2, head_dim=32, ffn=128, theta=10_000.0, eps=1e-6),
    "llama": dict(dim=64, layers=2, heads=4, kv_heads=2, head_dim=16, ffn=128, theta=500_000.0, eps=1e-5),
    "qwen2": dict(dim=64, layers=2, heads=4, kv_heads=2, head_dim=16, ffn=128, theta=1_000_000.0, eps=1e-6),
    "qwen3moe": dict(dim=64, layers=2, heads=4, kv_heads=2, head_dim=32, ffn=128, theta=1_000_000.0, eps=1e-6,
                     experts=8, used=2, expert_ffn=64),
}


def llama31_factors(head_dim: int, theta: float, factor=8.0, low=1.0, high=4.0, original=64) -> np.ndarray:
    """Llama 3.1's rotary frequency factors (transformers' `_compute_llama3_parameters`, as llama.cpp's converter
    writes them into `rope_freqs.weight`): 1 for short wavelengths, `factor` for long ones, smooth between."""
    out = []
    for i in range(0, head_dim, 2):
        wavelength = 2 * np.pi * theta ** (i / head_dim)
        if wavelength < original / high:
            out.append(1.0)
        elif wavelength > original / low:
            out.append(factor)
        else:
            smooth = (original / wavelength - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def vocabulary():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=515, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([CORPUS.read_text(encoding="utf-8")] + PROMPTS, trainer=trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    tokens = [None] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    specials = {t["content"]: t["id"] for t in data["added_tokens"]}
    return tokens, merges, specials


def banned_bytes(tokens: list[str]) -> list[int]:
    """The ids of the single-byte tokens of bytes 0x80-0xFF (GPT-2's byte-level spelling)."""
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    spelled, extra = {}, 0
    for b in range(256):
        if b in visible:
            spelled[b] = chr(b)
        else:
            spelled[b] = chr(256 + extra)
            extra += 1
    index = {t: i for i, t in enumerate(tokens)}
    return sorted(index[spelled[b]] for b in range(0x80, 0x100) if spelled[b] in index)


def wide(arch: str) -> dict:
    """The shape of the K-quant file: widths of 256 (a K-quant block), heads of 64, four experts of width 256."""
    s = dict(SHAPES[arch], dim=256, head_dim=64, ffn=256)
    if "experts" in s:
        s.update(experts=4, expert_ffn=256)
    return s


def write_gguf(arch: str, path: Path, s: dict):
    import gguf
    tokens, merges, specials = vocabulary()
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("tiny random weights")   # not the family name: llama.cpp keys token attributes on it (phi3)
    w.add_context_length(512)
    w.add_embedding_length(s["dim"])
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    if arch in ("qwen3", "qwen3moe", "gemma3", "gemma2"):
        w.add_key_length(s["head_dim"])
        w.add_value_length(s["head_dim"])
    else:
        w.add_rope_dimension_count(s["head_dim"])
    w.add_rope_freq_base(s["theta"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_eos_token_id(specials["<|im_end|>"])
    w.add_pad_token_id(specials["<|endoftext|>"])
    w.add_add_bos_token(False)

    rng = np.random.default_rng(20261207)
    dim, hd, ffn = s["dim"], s["head_dim"], s["ffn"]
    q_dim, kv_dim, vocab = s["heads"] * hd, s["kv_heads"] * hd, len(tokens)

    spread = (64 / dim) ** 0.5   # the wide shape's products keep the scale of the 64-wide one's

    def matrix(rows, cols, std=0.3):
        return (std * spread * rng.standard_normal((rows, cols))).astype(np.float16)

    def norm(n):
        return (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w.add_tensor("token_embd.weight", matrix(vocab, dim, 1.0 if not arch.startswith("gemma") else 0.2))
    if arch.startswith("gemma"):
        w.add_sliding_window(8)
        if arch == "gemma3":
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(8.0)
        else:
            w.add_attn_logit_softcapping(4.0)
            w.add_final_logit_softcapping(5.0)
        for i in range(s["layers"]):
            p = f"blk.{i}."
            parts = [("attn_norm", norm(dim)), ("attn_q", matrix(q_dim, dim, 0.1 if arch == "gemma3" else 0.3)),
                     ("attn_k", matrix(kv_dim, dim, 0.1 if arch == "gemma3" else 0.3)), ("attn_v", matrix(kv_dim, dim))]
            if arch == "gemma3":
                parts += [("attn_q_norm", norm(hd)), ("attn_k_norm", norm(hd))]
            parts += [("attn_output", matrix(dim, q_dim)), ("post_attention_norm", norm(dim)), ("ffn_norm", norm(dim)),
                      ("ffn_gate", matrix(ffn, dim)), ("ffn_up", matrix(ffn, dim)), ("ffn_down", matrix(dim, ffn)),
                      ("post_ffw_norm", norm(dim))]
            for name, tensor in parts:
                w.add_tensor(p + name + ".weight", tensor)
        w.add_tensor("output_norm.weight", norm(dim))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return
    if arch == "qwen3moe":
        w.add_expert_count(s["experts"])
        w.add_expert_used_count(s["used"])
        w.add_expert_feed_forward_length(s["expert_ffn"])
    if arch == "llama":
        w.add_tensor("rope_freqs.weight", llama31_factors(hd, s["theta"]))
    if arch == "phi3":
        w.add_rope_scaling_orig_ctx_len(64)
        w.add_rope_scaling_attn_factors(float(np.sqrt(1 + np.log(512 / 64) / np.log(64))))
        w.add_tensor("rope_factors_long.weight", np.linspace(1.0, 6.0, hd // 2, dtype=np.float32))
        w.add_tensor("rope_factors_short.weight", np.linspace(1.0, 1.25, hd // 2, dtype=np.float32))
    for i in range(s["layers"]):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", norm(dim))
        if arch == "phi3":
            w.add_tensor(p + "attn_qkv.weight", np.concatenate([matrix(q_dim, dim, 0.1), matrix(kv_dim, dim, 0.1), matrix(kv_dim, dim)]))
        else:
            w.add_tensor(p + "attn_q.weight", matrix(q_dim, dim, 0.1))
            w.add_tensor(p + "attn_k.weight", matrix(kv_dim, dim, 0.1))
            w.add_tensor(p + "attn_v.weight", matrix(kv_dim, dim))
            if arch == "qwen2":
                for name, n in (("attn_q", q_dim), ("attn_k", kv_dim), ("attn_v", kv_dim)):
                    w.add_tensor(p + name + ".bias", (0.3 * rng.standard_normal(n)).astype(np.float32))
            if arch.startswith("qwen3"):
                w.add_tensor(p + "attn_q_norm.weight", norm(hd))
                w.add_tensor(p + "attn_k_norm.weight", norm(hd))
        w.add_tensor(p + "attn_output.weight", matrix(dim, q_dim))
        w.add_tensor(p + "ffn_norm.weight", norm(dim))
        if arch == "phi3":
            w.add_tensor(p + "ffn_up.weight", np.concatenate([matrix(ffn, dim), matrix(ffn, dim)]))
        elif arch == "qwen3moe":
            n, e = s["experts"], s["expert_ffn"]
            w.add_tensor(p + "ffn_gate_inp.weight", (0.3 * rng.standard_normal((n, dim))).astype(np.float32))
            w.add_tensor(p + "ffn_gate_exps.weight", np.stack([matrix(e, dim) for _ in range(n)]))
            w.add_tensor(p + "ffn_up_exps.weight", np.stack([matrix(e, dim) for _ in range(n)]))
            w.add_tensor(p + "ffn_down_exps.weight", np.stack([matrix(dim, e) for _ in range(n)]))
            continue
        else:
            w.add_tensor(p + "ffn_gate.weight", matrix(ffn, dim))
            w.add_tensor(p + "ffn_up.weight", matrix(ffn, dim))
        w.add_tensor(p + "ffn_down.weight", matrix(dim, ffn))
    w.add_tensor("output_norm.weight", norm(dim))
    w.add_tensor("output.weight", matrix(vocab, dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(SHAPES), action="append")
    parser.add_argument("--llama-bin", type=Path, default=ROOT / "bench" / ".llama.cpp" / "src" / "build" / "bin")
    args = parser.parse_args()
    for arch in args.arch or sorted(SHAPES):
        folder = OUT / arch
        folder.mkdir(parents=True, exist_ok=True)
        f16 = folder / f"{arch}-f16.gguf"
        write_gguf(arch, f16, SHAPES[arch])
        q8 = folder / f"{arch}-q8_0.gguf"
        subprocess.run([str(mr.llama_tool(args.llama_bin, "llama-quantize")), str(f16), str(q8), "Q8_0"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wide_f16 = folder / f"{arch}-wide-f16.gguf"   # only quantized, not kept
        write_gguf(arch, wide_f16, wide(arch))
        q4 = folder / f"{arch}-q4_k_m.gguf"
        subprocess.run([str(mr.llama_tool(args.llama_bin, "llama-quantize")), str(wide_f16), str(q4), "Q4_K_M"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wide_f16.unlink()
        banned = banned_bytes(vocabulary()[0])
        reference = {}
        for path in (f16, q8, q4):
            with mr.LlamaServer(mr.llama_tool(args.llama_bin, "llama-server"), path) as server:
                extra = {"logit_bias": [[i, False] for i in banned]}
                reference[path.name] = [mr.derive_completion(server, {"prompt": p}, extra) for p in PROMPTS]
        (folder / "llamacpp.json").write_text(json.dumps({"banned": banned, "completions": reference}, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
        print(f"wrote {folder}: {', '.join(f'{p.name} {p.stat().st_size} bytes' for p in (f16, q8, q4))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
