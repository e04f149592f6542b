#!/usr/bin/env python3
"""Tiny Hugging Face chat-model folders, whole, with Hugging Face `transformers`' log-probabilities for them
(Tests/Fixtures/reference/hf-tiny/): what the SmolLM2 folder does not cover — Qwen 2 (biases on q/k/v, NeoX rotary
layout, an untied output), BF16 and F16 weights, shards with `model.safetensors.index.json`, Llama 3.1's rotary scaling
(`rope_scaling: llama3`), Llama 3's and Qwen 2's pre-tokenizers, a vocabulary padded past the tokenizer's tokens, Qwen 3
(per-head query/key norms, a head size apart from hidden_size / heads), and
Gemma 3 (norms stored without their +1, a head size apart from hidden_size / heads, sliding-window layers with their
own rotary base, every sixth layer global) with a SentencePiece tokenizer: BPE with byte fallback trained by the
`sentencepiece` package, turned into `tokenizer.json` by transformers' own Gemma converter (both files kept, as Gemma's
repositories ship them).

Each folder: random weights (seeded; larger than transformers' initialisation so the next token is not a coin toss),
a byte-level BPE tokenizer trained by Hugging Face `tokenizers` on `perplexity-text.txt` (the GPL's text), and `reference.json`:
[{prompt, ids, top}] — transformers' float32 forward pass over `ids` (its own tokenization), `top[i]` = the five most
likely [id, log-probability] after token i. The query and key weights are kept small enough that attention is not
needle-sharp: rounding keys and values to half precision (the engine's KV cache, llama.cpp's default) moves these
log-probabilities by at most the amount printed when the folders are made (0.002-0.004), so a comparison at 0.01
tests the implementation, not rounding luck.

Needs: pip install torch transformers tokenizers safetensors sentencepiece protobuf

    python3 tools/make_hf_tiny_reference.py            # writes the folders
    python3 tools/make_hf_tiny_reference.py --check    # makes them again elsewhere and compares the references
    python3 tools/make_hf_tiny_reference.py --only gemma3-bf16   # one of them
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
    # a head size (32) apart from hidden_size / heads (16), per-head query/key norms, tied embeddings
    "qwen3-f32": ("Qwen3ForCausalLM", QWEN2_PATTERN, "float32", {"head_dim": 32, "rope_theta": 1000000.0,
                                                                 "tie_word_embeddings": True}),
    # six layers: five sliding (window 8, shorter than the prompts) and one global; head_dim 32 while 64 / 4 = 16
    "gemma3-bf16": ("Gemma3ForCausalLM", None, "bfloat16", {
        "num_hidden_layers": 6, "head_dim": 32, "query_pre_attn_scalar": 32, "sliding_window": 8,
        "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True}),
}
GEMMA_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
                  "{{ m['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
GEMMA_PROMPTS = PROMPTS + [
    "<start_of_turn>user\nHello  there,   world!<end_of_turn>\n<start_of_turn>model\n",
    "  leading spaces, digits 31415926 and tabs\there",
]


def sentencepiece_tokenizer(folder: str):
    """A Gemma-style SentencePiece BPE model (byte fallback, no dummy prefix, digits split, turn markers as
    user-defined pieces) and the `tokenizer.json` transformers makes of it."""
    import sentencepiece as spm
    from transformers import GemmaTokenizer
    corpus = os.path.join(ROOT, "Tests", "Fixtures", "reference", "perplexity-text.txt")
    os.makedirs(folder, exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(folder, "tokenizer"), vocab_size=600, model_type="bpe",
        byte_fallback=True, character_coverage=0.9995, add_dummy_prefix=False, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"], pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>", num_threads=1, minloglevel=2)
    os.remove(os.path.join(folder, "tokenizer.vocab"))
    tok = GemmaTokenizer.from_pretrained(folder, add_bos_token=True)   # BOS first, from the post-processor
    tok.save_pretrained(folder)
    clean_tokenizer_config(folder, add_bos_token=True, chat_template=GEMMA_TEMPLATE)
    return tok


def clean_tokenizer_config(folder: str, **updates):
    """`tokenizer_config.json` without what names the machine that wrote it (the source path), with `updates`."""
    path = os.path.join(folder, "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    for machine_specific in ("vocab_file", "is_local", "local_files_only"):
        config.pop(machine_specific, None)
    config.update(updates)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
        f.write("\n")


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


VARIANT_TEXTS = ["Hello world", " Hello  world", "<start_of_turn>user\nHi there<end_of_turn>", "a<end_of_turn> b",
                 "\u2581odd meta", "tabs\tand\nnewlines  ", "  ", "Résumé — 東京 31415"]


def tokenizer_variants(folder: str):
    """The same vocabulary under the other text pipelines SentencePiece-style `tokenizer.json` files use (Llama 2's
    Prepend normalizer, Metaspace with each prepend scheme), with the `tokenizers` package's ids for texts where they
    differ: leading spaces, text after a special token. `split: true` over a vocabulary with "▁▁" is listed without
    ids (the engine refuses it)."""
    from tokenizers import Tokenizer
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        base = json.load(f)
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
    def metaspace(scheme, split=False):
        return {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split}
    variants = {
        "gemma": (base["normalizer"], base["pre_tokenizer"]),
        "prepend": ({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, replace]}, None),
        "metaspace-always": (None, metaspace("always")),
        "metaspace-first": (None, metaspace("first")),
        "metaspace-never": (None, metaspace("never")),
        "metaspace-first-split": (None, metaspace("first", split=True)),
    }
    out = {"texts": VARIANT_TEXTS, "variants": {}}
    for name, (normalizer, pre) in variants.items():
        j = dict(base, normalizer=normalizer, pre_tokenizer=pre)
        t = Tokenizer.from_str(json.dumps(j))
        entry = {"normalizer": normalizer, "pre_tokenizer": pre}
        if not name.endswith("-split"):
            entry["ids"] = [t.encode(x, add_special_tokens=False).ids for x in VARIANT_TEXTS]
        out["variants"][name] = entry
    with open(os.path.join(folder, "tokenizer-variants.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
        f.write("\n")


def make(name: str, folder: str) -> list:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    architecture, pattern, dtype, extra = MODELS[name]
    gemma = architecture == "Gemma3ForCausalLM"
    if gemma:
        fast = sentencepiece_tokenizer(folder)
        tok = fast.backend_tokenizer if hasattr(fast, "backend_tokenizer") else fast._tokenizer
        bos, eos = fast.convert_tokens_to_ids("<bos>"), fast.convert_tokens_to_ids("<eos>")
    else:
        tok = tokenizer_for(pattern, ignore_merges=architecture == "LlamaForCausalLM")
        bos, eos = tok.token_to_id("<|start|>"), tok.token_to_id("<|eos|>")
    vocab = tok.get_vocab_size()
    padded = (vocab + 63) // 64 * 64 + 64   # config's vocab_size past the tokenizer's tokens, as real models pad
    model_type = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3",
                  "Gemma3ForCausalLM": "gemma3_text"}[architecture]
    options = dict(vocab_size=padded, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6,
                   bos_token_id=bos, eos_token_id=eos, architectures=[architecture])
    options.update(extra)
    config = AutoConfig.for_model(model_type, **options)
    torch.manual_seed(20261207)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_((0 if gemma else 1) + 0.1 * torch.randn_like(p))   # Gemma multiplies by 1 + weight
            elif pname.endswith("bias"):
                p.copy_(0.5 * torch.randn_like(p))
            elif "q_proj" in pname or "k_proj" in pname:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    model = model.to(getattr(torch, dtype)).eval()
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="100KB" if "sharded" in name else "50GB")
    if gemma:
        tokenizer_variants(folder)
    else:
        tok.save(os.path.join(folder, "tokenizer.json"))
        with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump({"bos_token": "<|start|>", "eos_token": "<|eos|>", "add_bos_token": architecture == "LlamaForCausalLM",
                       "chat_template": TEMPLATE}, f, indent=1)
            f.write("\n")
    # the reference: float32 arithmetic on the saved (rounded) weights
    model = model.float()
    import importlib
    module = "gemma3" if gemma else model_type
    modeling = importlib.import_module(f"transformers.models.{module}.modeling_{module}")
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
        for prompt in (GEMMA_PROMPTS if gemma else PROMPTS):
            if gemma:
                ids = fast(prompt)["input_ids"]   # the tokenizer's own special tokens (Gemma's BOS)
                assert ids[:1] == [bos], "the Gemma tokenizer adds its BOS"
            else:
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
    parser.add_argument("--only", choices=sorted(MODELS), help="one folder instead of all")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(2)
    failures = 0
    for name in ([args.only] if args.only else MODELS):
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
