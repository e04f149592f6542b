#!/usr/bin/env python3
"""Tiny Hugging Face chat-model folders, whole, with Hugging Face `transformers`' log-probabilities for them
(Tests/Fixtures/reference/hf-tiny/): what the SmolLM2 folder does not cover — Qwen 2 (biases on q/k/v, NeoX rotary
layout, an untied output), BF16 and F16 weights, shards with `model.safetensors.index.json`, Llama 3.1's rotary scaling
(`rope_scaling: llama3`), Llama 3's and Qwen 2's pre-tokenizers and a vocabulary padded past the tokenizer's tokens.

Each folder: random weights (seeded; larger than transformers' initialisation so the next token is not a coin toss),
a byte-level BPE tokenizer trained by Hugging Face `tokenizers` on `perplexity-text.txt` (the GPL's text), and `reference.json`:
[{prompt, ids, top}] — transformers' float32 forward pass over `ids` (its own tokenization), `top[i]` = the five most
likely [id, log-probability] after token i. The query and key weights are kept small enough that attention is not
needle-sharp: rounding keys and values to half precision (the engine's KV cache, llama.cpp's default) moves these
log-probabilities by at most the amount printed when the folders are made (0.002-0.004), so a comparison at 0.01
tests the implementation, not rounding luck.

Needs: pip install torch transformers tokenizers safetensors

    python3 tools/make_hf_tiny_reference.py            # writes the folders
    python3 tools/make_hf_tiny_reference.py --check    # makes them again elsewhere and compares the references
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "reference", "hf-tiny")
LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "<|start|>user: what is 1234 + 5678?<|end|>",
    "Résumé of the naïve café — 東京, 2026",
]
TEMPLATE = "{% for m in messages %}<|start|>{{ m['role'] }}: {{ m['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|start|>assistant: {% endif %}"

MODELS = {
    # name: (architecture, pattern, dtype, extra config)
    "llama3-bf16-sharded": ("LlamaForCausalLM", LLAMA3_PATTERN, "bfloat16", {
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64},
        "rope_theta": 500000.0, "tie_word_embeddings": True}),
    "qwen2-f16": ("Qwen2ForCausalLM", QWEN2_PATTERN, "float16", {"rope_theta": 1000000.0, "tie_word_embeddings": False}),
}


def tokenizer_for(pattern: str, ignore_merges: bool):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=["<|start|>", "<|end|>", "<|eos|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = os.path.join(ROOT, "Tests", "Fixtures", "reference", "perplexity-text.txt")
    tok.train_from_iterator([open(corpus, encoding="utf-8").read()] + PROMPTS, trainer=trainer)
    return tok


def make(name: str, folder: str) -> list:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    architecture, pattern, dtype, extra = MODELS[name]
    tok = tokenizer_for(pattern, ignore_merges=architecture == "LlamaForCausalLM")
    vocab = tok.get_vocab_size()
    padded = (vocab + 63) // 64 * 64 + 64   # config's vocab_size past the tokenizer's tokens, as real models pad
    model_type = "llama" if architecture == "LlamaForCausalLM" else "qwen2"
    config = AutoConfig.for_model(model_type, vocab_size=padded, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6,
                                  bos_token_id=tok.token_to_id("<|start|>"), eos_token_id=tok.token_to_id("<|eos|>"),
                                  architectures=[architecture], **extra)
    torch.manual_seed(20261207)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.copy_(0.5 * torch.randn_like(p))
            elif "q_proj" in pname or "k_proj" in pname:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    model = model.to(getattr(torch, dtype)).eval()
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="100KB" if "sharded" in name else "50GB")
    tok.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": "<|start|>", "eos_token": "<|eos|>", "add_bos_token": architecture == "LlamaForCausalLM",
                   "chat_template": TEMPLATE}, f, indent=1)
        f.write("\n")
    # the reference: float32 arithmetic on the saved (rounded) weights
    model = model.float()
    import importlib
    modeling = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    plain = modeling.eager_attention_forward

    def half_cache(module, query, key, value, *rest, **options):
        return plain(module, query, key.half().float(), value.half().float(), *rest, **options)

    def tops(ids):
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
        top = []
        for row in logprobs:
            values, indices = torch.topk(row, 5)
            top.append([[int(i), round(float(v), 5)] for v, i in zip(values, indices)])
        return top

    out = []
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = tok.encode(prompt, add_special_tokens=False).ids
            if architecture == "LlamaForCausalLM" and ids[:1] != [config.bos_token_id]:
                ids = [config.bos_token_id] + ids   # add_bos_token, once
            top = tops(ids)
            modeling.eager_attention_forward = half_cache
            try:
                top_f16 = tops(ids)
            finally:
                modeling.eager_attention_forward = plain
            shift = max(abs(a[1] - b[1]) for ra, rb in zip(top, top_f16) for a, b in zip(ra, rb))
            print(f"{name}: keys and values in half precision move log-probabilities by {shift:.5f} on {prompt!r}")
            out.append({"prompt": prompt, "ids": ids, "top": top})
    with open(os.path.join(folder, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
        f.write("\n")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(2)
    failures = 0
    for name in MODELS:
        if args.check:
            scratch = tempfile.mkdtemp()
            made = make(name, os.path.join(scratch, name))
            with open(os.path.join(OUT, name, "reference.json"), encoding="utf-8") as f:
                stored = json.load(f)
            for a, b in zip(made, stored):
                if a["ids"] != b["ids"] or max(abs(x[1] - y[1]) for ra, rb in zip(a["top"], b["top"]) for x, y in zip(ra, rb)) > 1e-3:
                    print(f"{name}: {a['prompt']!r} differs"); failures += 1
            shutil.rmtree(scratch)
        else:
            target = os.path.join(OUT, name)
            shutil.rmtree(target, ignore_errors=True)
            made = make(name, target)
            print(f"wrote {target}: {sum(len(x['ids']) for x in made)} positions")
    if args.check:
        print("ok" if failures == 0 else f"{failures} differences")
        sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
