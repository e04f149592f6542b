#!/usr/bin/env python3
"""Reference data for Hugging Face chat-model folders (Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/hf/).

Hugging Face `transformers` reads SmolLM2-135M-Instruct from its GGUF (`switchyard pull smollm2`; the Q4_1 weights
dequantized to float32, query and key rows put back in Hugging Face's order) and saves it as a model folder
(`save_pretrained`: config.json, generation_config.json, model.safetensors in F32, tokenizer.json,
tokenizer_config.json with the chat template). The tokenizer.json's pre-tokenizer is set to SmolLM2's own (digits
split one by one, then byte-level; transformers' GGUF reader writes plain byte-level) and checked against llama.cpp's
token ids for the same model (smollm2-135m-instruct-q4_1/llamacpp.json, `tokenize`).

Written to the fixtures (small; the 540 MB of weights are not committed, the tests write the same tensors from the
GGUF and check them against `tensors.json`):

  config.json, generation_config.json, tokenizer.json, tokenizer_config.json, chat_template.jinja
                 as saved (tokenizer.json edited as above)
  tensors.json   {name: {shape, dtype, checksum}}: checksum = sum over elements of x[i] * w(i), w(i) = ((i * 7919) % 1000
                 - 500) / 500, in float64 — the same numbers in another order or layout give another checksum
  logits.json    [{prompt, ids, top, top_f16_cache}]: transformers' forward pass in float32 over `ids` (its own
                 tokenization of the prompt, BOS-less as SmolLM2's tokenizer is); top[i] = the five most likely
                 [id, log-probability] after token i; top_f16_cache the same with the attention's keys and values
                 rounded to half precision, as the engine's KV cache (and llama.cpp's default) keeps them — that
                 rounding alone moves them by the amount printed (about 0.01)

Needs: pip install torch transformers gguf safetensors accelerate

    python3 tools/make_hf_reference.py [--models ~/.switchyard/models]            # writes the files
    python3 tools/make_hf_reference.py --check                                     # computes again and compares
    python3 tools/make_hf_reference.py --folder DIR     # also keeps the whole folder (weights included) at DIR
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "Tests", "Fixtures", "reference", "smollm2-135m-instruct-q4_1")
OUT = os.path.join(REFERENCE, "hf")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_PRE_TOKENIZER = {
    "type": "Sequence",
    "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ],
}
PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWhat is 12 + 35?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "Once upon a time, in a small village by the sea, there lived",
    "Résumé: naïve café owner — 東京",
]
COPIED = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]


def checksum(values) -> float:
    import numpy as np
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    i = np.arange(flat.size, dtype=np.int64)
    w = ((i * 7919) % 1000 - 500).astype(np.float64) / 500
    return float(np.dot(flat, w))


def make(models: str, keep: str | None = None) -> dict:
    import torch
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    folder = tempfile.mkdtemp(prefix="smollm2-hf-")
    tokenizer = AutoTokenizer.from_pretrained(models, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(models, gguf_file=GGUF_NAME, dtype=torch.float32, attn_implementation="eager")
    # transformers marks a model read from GGUF as not serializable: the same weights in a plain model of the config
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    plain.load_state_dict(model.state_dict())
    model = plain.eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)

    files = {}
    for name in COPIED:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            files[name] = json.load(f)
    files["tokenizer.json"]["pre_tokenizer"] = SMOLLM_PRE_TOKENIZER
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(files["tokenizer.json"], f, ensure_ascii=False)
    with open(os.path.join(folder, "chat_template.jinja"), encoding="utf-8") as f:
        files["chat_template.jinja"] = f.read()
    fast = Tokenizer.from_str(json.dumps(files["tokenizer.json"]))

    # the edited tokenizer agrees with llama.cpp on every tokenize case of the same model
    with open(os.path.join(REFERENCE, "llamacpp.json"), encoding="utf-8") as f:
        cases = json.load(f)["tokenize"]
    for case in cases:
        ids = fast.encode(case["text"], add_special_tokens=False).ids
        if ids != case["ids"]:
            sys.exit(f"tokenizer.json disagrees with llama.cpp on {case['text']!r}: {ids} vs {case['ids']}")

    tensors = {}
    for name, value in sorted(load_file(os.path.join(folder, "model.safetensors")).items()):
        tensors[name] = {"shape": list(value.shape), "dtype": str(value.dtype), "checksum": checksum(value)}

    import transformers.models.llama.modeling_llama as modeling
    eager = modeling.eager_attention_forward

    def half_cache(module, query, key, value, *rest, **options):
        return eager(module, query, key.half().float(), value.half().float(), *rest, **options)

    def tops(ids):
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
        top = []
        for row in logprobs:
            values, indices = torch.topk(row, 5)
            top.append([[int(i), round(float(v), 5)] for v, i in zip(values, indices)])
        return top

    logits = []
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = fast.encode(prompt, add_special_tokens=False).ids
            top = tops(ids)
            modeling.eager_attention_forward = half_cache
            try:
                top_f16 = tops(ids)
            finally:
                modeling.eager_attention_forward = eager
            shift = max(abs(a[1] - b[1]) for ra, rb in zip(top, top_f16) for a, b in zip(ra, rb))
            print(f"keys and values in half precision move log-probabilities by {shift:.5f} on {prompt!r}")
            logits.append({"prompt": prompt, "ids": ids, "top": top, "top_f16_cache": top_f16})
    if keep:
        shutil.rmtree(keep, ignore_errors=True)
        shutil.move(folder, keep)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return {"files": files, "tensors": tensors, "logits": logits}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=os.path.expanduser("~/.switchyard/models"))
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--folder", help="keep the saved folder (540 MB) here")
    args = parser.parse_args()
    made = make(args.models, args.folder)
    if args.check:
        failures = 0
        for name, content in made["files"].items():
            with open(os.path.join(OUT, name), encoding="utf-8") as f:
                if (f.read() if name.endswith(".jinja") else json.load(f)) != content:
                    print(f"{name} differs"); failures += 1
        with open(os.path.join(OUT, "tensors.json"), encoding="utf-8") as f:
            stored = json.load(f)
        for name, t in made["tensors"].items():
            s = stored.get(name)
            if s is None or s["shape"] != t["shape"] or abs(s["checksum"] - t["checksum"]) > 1e-6 * max(1.0, abs(t["checksum"])):
                print(f"tensor {name} differs"); failures += 1
        with open(os.path.join(OUT, "logits.json"), encoding="utf-8") as f:
            stored = json.load(f)
        for a, b in zip(made["logits"], stored):
            if a["ids"] != b["ids"] or [r[0][0] for r in a["top"]] != [r[0][0] for r in b["top"]]:
                print(f"logits for {a['prompt']!r} differ"); failures += 1
            elif max(abs(x[1] - y[1]) for ra, rb in zip(a["top"], b["top"]) for x, y in zip(ra, rb)) > 1e-3:
                print(f"log-probabilities for {a['prompt']!r} differ"); failures += 1
        print("ok" if failures == 0 else f"{failures} differences")
        sys.exit(1 if failures else 0)
    os.makedirs(OUT, exist_ok=True)
    for name, content in made["files"].items():
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            if name.endswith(".jinja"):
                f.write(content)
                continue
            json.dump(content, f, ensure_ascii=False, indent=1 if name != "tokenizer.json" else None)
            f.write("\n")
    with open(os.path.join(OUT, "tensors.json"), "w", encoding="utf-8") as f:
        json.dump(made["tensors"], f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "logits.json"), "w", encoding="utf-8") as f:
        json.dump(made["logits"], f, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {OUT}: {len(made['tensors'])} tensors, {sum(len(x['ids']) for x in made['logits'])} positions")


if __name__ == "__main__":
    main()
