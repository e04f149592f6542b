#!/usr/bin/env python3
"""A tiny nomic-bert embedder (the architecture of nomic-embed-text, Ollama's most pulled embedding model) as a GGUF
file, with llama.cpp's own vectors for it (Tests/Fixtures/reference/nomic-bert/).

nomic-bert is BERT with rotary positions (NeoX layout, base 1000) instead of learned ones, one fused query-key-value
matrix, no biases, and a SwiGLU feed-forward (silu(gate) * up) — post-norm layers and mean pooling as BERT. There is
no implementation in `transformers` (the model ships its own code), so the reference is llama.cpp's: the file is
written with llama.cpp's `gguf` package (random weights, seeded, F16 matrices; the vocabulary is bert-bge's, cut to
its first 5000 tokens so the file stays small) and embedded by `llama-server --embedding --pooling mean`, whose
vectors (L2-normalized, as /v1/embeddings returns them) and token ids are stored in `reference.json`.

Needs: pip install gguf numpy; llama-server built by the bench scripts (bench/.llama.cpp/src/build/bin), or
LLAMA_SERVER=/path/to/llama-server.

    python3 tools/make_nomic_reference.py
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "reference", "nomic-bert")
VOCAB = os.path.join(ROOT, "Tests", "Fixtures", "reference", "vocab", "ggml-vocab-bert-bge.gguf")
SERVER = os.environ.get("LLAMA_SERVER", os.path.join(ROOT, "bench", ".llama.cpp", "src", "build", "bin", "llama-server"))
KEEP = 5000
HIDDEN, LAYERS, HEADS, FFN, CONTEXT = 64, 2, 4, 128, 512
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "search_query: what is the capital of france?",
    "search_document: paris is the capital and largest city of france, on the seine.",
    "a",
    "Embeddings turn text into vectors; similar meanings land near each other, and that is all a search needs. " * 4,
]


def write_gguf(path: str):
    import gguf
    reader = gguf.GGUFReader(VOCAB)
    field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode("utf-8") for i in field.data[:KEEP]]
    types_field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(types_field.parts[i][0]) for i in types_field.data[:KEEP]]

    w = gguf.GGUFWriter(path, "nomic-bert")
    w.add_name("nomic-bert-tiny")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_rope_freq_base(1000.0)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_token_type_count(2)
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("bert-bge")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_unk_token_id(100)
    w.add_uint32("tokenizer.ggml.seperator_token_id", 102)
    w.add_pad_token_id(0)
    w.add_uint32("tokenizer.ggml.cls_token_id", 101)
    w.add_mask_token_id(103)

    rng = np.random.default_rng(20261207)

    def matrix(rows, cols, scale):
        return (scale * rng.standard_normal((rows, cols))).astype(np.float16)

    def norm(n):
        return (1 + 0.1 * rng.standard_normal(n)).astype(np.float32), (0.1 * rng.standard_normal(n)).astype(np.float32)

    w.add_tensor("token_embd.weight", matrix(KEEP, HIDDEN, 0.5))
    w.add_tensor("token_types.weight", (0.5 * rng.standard_normal((2, HIDDEN))).astype(np.float32))
    g, b = norm(HIDDEN)
    w.add_tensor("token_embd_norm.weight", g)
    w.add_tensor("token_embd_norm.bias", b)
    for i in range(LAYERS):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_qkv.weight", matrix(3 * HIDDEN, HIDDEN, 0.15))
        w.add_tensor(p + "attn_output.weight", matrix(HIDDEN, HIDDEN, 0.15))
        g, b = norm(HIDDEN)
        w.add_tensor(p + "attn_output_norm.weight", g)
        w.add_tensor(p + "attn_output_norm.bias", b)
        w.add_tensor(p + "ffn_up.weight", matrix(FFN, HIDDEN, 0.15))
        w.add_tensor(p + "ffn_gate.weight", matrix(FFN, HIDDEN, 0.15))
        w.add_tensor(p + "ffn_down.weight", matrix(HIDDEN, FFN, 0.15))
        g, b = norm(HIDDEN)
        w.add_tensor(p + "layer_output_norm.weight", g)
        w.add_tensor(p + "layer_output_norm.bias", b)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def post(port: int, path: str, body: dict):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def main():
    if not os.path.exists(SERVER):
        sys.exit(f"llama-server not found at {SERVER} (build it with the bench scripts or set LLAMA_SERVER)")
    os.makedirs(OUT, exist_ok=True)
    model = os.path.join(OUT, "nomic-bert-tiny.gguf")
    write_gguf(model)
    port = 18795
    server = subprocess.Popen([SERVER, "-m", model, "--embedding", "--pooling", "mean", "-c", str(CONTEXT), "-b", str(CONTEXT),
                               "-ub", str(CONTEXT), "-t", "2", "--port", str(port), "--host", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.5)
        cases = []
        for text in TEXTS:
            ids = post(port, "/tokenize", {"content": text, "add_special": True})["tokens"]
            vector = post(port, "/v1/embeddings", {"input": text})["data"][0]["embedding"]
            cases.append({"text": text, "ids": ids, "vector": [round(x, 7) for x in vector]})
    finally:
        server.terminate()
        server.wait()
    with open(os.path.join(OUT, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({"made_by": "llama-server --embedding --pooling mean", "cases": cases}, f)
        f.write("\n")
    print(f"wrote {model} ({os.path.getsize(model)} bytes) and {len(cases)} vectors")


if __name__ == "__main__":
    main()
