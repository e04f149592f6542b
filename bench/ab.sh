#!/usr/bin/env bash
# Two switchyard binaries side by side in one run, alternating, to show what a change costs: the gateway path
# (bench/gateway.sh: req/s and p50 through an nginx upstream, unguarded and guarded, at 1 and 32 connections) and
# the engine behind the server (bench/concurrency.py on smollm2: one stream, and 8 concurrent streams, 128 greedy
# tokens each). Prints every run and the median of each figure per binary.
#
#   bash bench/ab.sh OLD_BINARY NEW_BINARY          ROUNDS=3 DURATION=10s THREADS=2 MODEL=smollm2 PARTS="gateway engine"
#
# Build the two release binaries first, e.g. the commit before a change in a worktree:
#   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && swift build -c release --product switchyard)
#   swift build -c release --product switchyard && bash bench/ab.sh /tmp/before/.build/release/switchyard .build/release/switchyard
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n 2,12p "$0" >&2; exit 2; }
OLD=$(realpath "$1"); NEW=$(realpath "$2")
ROUNDS=${ROUNDS:-3}; THREADS=${THREADS:-2}; MODEL=${MODEL:-smollm2}; PARTS=${PARTS:-gateway engine}
export DURATION=${DURATION:-10s}
python3 -c "import httpx" 2>/dev/null || python3 -m pip install -q httpx >&2
"$NEW" pull "$MODEL" >&2
out=$(mktemp -d)
trap 'kill $SPID 2>/dev/null || true; rm -rf "$out"' EXIT
SPID=""
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

engine() {   # engine BINARY LABEL: one stream and 8 streams against `serve`
  [[ " $PARTS " == *" engine "* ]] || return 0
  local port db
  port=$(free_port); db=$(mktemp -u "$out/db.XXXXXX")
  SWITCHYARD_DATABASE=$db setsid "$1" serve --port "$port" --threads "$THREADS" --parallel 8 --preload "$MODEL" --no-usage \
    </dev/null >"$out/serve-$2.log" 2>&1 &
  SPID=$!
  for _ in $(seq 120); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.5; done
  python3 bench/concurrency.py "http://127.0.0.1:$port" --model "$MODEL" --concurrency 1,8 --requests 8 |
    sed "s/^/engine $2 /" | tee -a "$out/results" >&2
  kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
}

gateway() {   # gateway BINARY LABEL
  [[ " $PARTS " == *" gateway "* ]] || return 0
  SWITCHYARD_BIN="$1" bash bench/gateway.sh 2>/dev/null | awk -v l="$2" '$1 ~ /^(switchyard|guarded|nginx-proxy|upstream)$/ && $2 ~ /^[0-9]+$/ {print "gateway", l, $1, $2, $3, $4}' |
    tee -a "$out/results" >&2
}

for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS" >&2
  if [ $((r % 2)) -eq 1 ]; then gateway "$OLD" old; gateway "$NEW" new; engine "$OLD" old; engine "$NEW" new
  else gateway "$NEW" new; gateway "$OLD" old; engine "$NEW" new; engine "$OLD" old; fi
done

python3 - "$out/results" <<'PY'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    p = line.split(maxsplit=2)
    if p[0] == "engine":
        d = json.loads(p[2])
        runs[(f"engine, {d['concurrency']} stream(s)", "aggregate tok/s", p[1])].append(d["aggregate_tok_s"])
        runs[(f"engine, {d['concurrency']} stream(s)", "TTFT ms", p[1])].append(d["ttft_ms_median"])
    else:
        _, label, target, conns, rps, p50 = line.split()[:6]
        runs[(f"gateway {target} c={conns}", "req/s", label)].append(float(rps))
        runs[(f"gateway {target} c={conns}", "p50 ms", label)].append(float(p50))
print(f"{'what':34} {'figure':16} {'old (median, range)':28} {'new (median, range)':28} new/old")
for (what, figure) in sorted({(w, f) for (w, f, _) in runs}):
    o, n = runs[(what, figure, "old")], runs[(what, figure, "new")]
    if not o or not n: continue
    d = 3 if max(o + n) < 10 else 1
    fmt = lambda v: f"{statistics.median(v):.{d}f} ({min(v):.{d}f}–{max(v):.{d}f})"
    print(f"{what:34} {figure:16} {fmt(o):28} {fmt(n):28} {statistics.median(n) / statistics.median(o):.2f}")
PY
