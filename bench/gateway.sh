#!/usr/bin/env bash
# What the routing path and the guard add to a request, measured against nginx in the same run.
#
# An nginx on loopback answers POST /v1/chat/completions with a static chat.completion (the "upstream"). wrk sends
# the same chat request, for DURATION each, at 1 and 32 connections, to:
#   upstream      the static answer itself (the floor)
#   nginx-proxy   nginx's own proxy_pass to the upstream (keep-alive pool)
#   switchyard    `switchyard serve` routing model "echo" to the upstream (openai-compatible provider), no keys,
#                 no usage records
#   guarded       the same with --require-auth, a key with RPM and TPM limits, and usage records written
# and prints requests/s and p50 latency for each, with Switchyard's req/s as a ratio of nginx-proxy's and the p50
# each adds over the upstream's. Needs nginx and wrk (`apt-get install nginx wrk`); builds the release binary.
#   bash bench/gateway.sh            DURATION=20s bash bench/gateway.sh      SWITCHYARD_BIN=path (no build)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "needs nginx and wrk: apt-get install nginx wrk" >&2; exit 1; }
if [ -n "${SWITCHYARD_BIN:-}" ]; then SY=$(realpath "$SWITCHYARD_BIN"); else
  swift build -c release --product switchyard >&2
  SY=$PWD/.build/release/switchyard
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
UP=$(free_port); PX=$(free_port); S1=$(free_port); S2=$(free_port)

answer='{"id":"chatcmpl-static","object":"chat.completion","created":1700000000,"model":"echo","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}'
cat > "$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy; fastcgi_temp_path $work/fcgi;
  uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  upstream static { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$UP;
    location /v1/models { default_type application/json; return 200 '{"object":"list","data":[{"id":"echo","object":"model"}]}'; }
    location / { default_type application/json; return 200 '$answer'; }
  }
  server {
    listen 127.0.0.1:$PX;
    location / { proxy_pass http://static; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
nginx -c "$work/nginx.conf" -p "$work" >&2

mkdir -p "$work/config"
cat > "$work/config/models.yaml" <<EOF
providers:
  static: { type: openai-compatible, base_url: http://127.0.0.1:$UP/v1 }
models:
  echo: { provider: static, model: echo }
EOF
export SWITCHYARD_CONFIG=$work/config SWITCHYARD_MODELS=$work/models
SWITCHYARD_DATABASE=$work/plain.sqlite "$SY" serve --port "$S1" --no-usage >"$work/s1.log" 2>&1 &
pids+=($!)
KEY=$(SWITCHYARD_DATABASE=$work/guarded.sqlite "$SY" keys create --name bench --rpm 100000000 --tpm 1000000000 2>/dev/null)
SWITCHYARD_DATABASE=$work/guarded.sqlite "$SY" serve --port "$S2" --require-auth >"$work/s2.log" 2>&1 &
pids+=($!)
for p in $UP $PX $S1 $S2; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/v1/models" >/dev/null 2>&1 && break; sleep 0.1; done
done
curl -sf "http://127.0.0.1:$S1/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"echo","messages":[{"role":"user","content":"Hi"}]}' >/dev/null || { echo "switchyard does not answer:" >&2; cat "$work/s1.log" >&2; exit 1; }

cat > "$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"echo","messages":[{"role":"user","content":"Hi"}]}'
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("KEY")
if key ~= nil and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
EOF

# run NAME PORT CONNECTIONS [KEY]: prints "req/s p50_ms errors"
run() {
  local out threads=$(( $3 < 2 ? 1 : 2 ))
  out=$(KEY=${4:-} wrk -t"$threads" -c"$3" -d"$DURATION" --latency -s "$work/post.lua" "http://127.0.0.1:$2/v1/chat/completions")
  local rps p50 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5} /Socket errors/ {print "socket-errors"}' <<<"$out" | paste -sd, -)
  echo "$rps $p50 ${errors:-0}"
}

declare -A RPS P50
echo "gateway overhead, $(date -u +%F), $(nproc) cores, $DURATION per run"
printf '%-12s %5s %12s %10s  %s\n' target conns "req/s" "p50 ms" "non-2xx"
for c in 1 32; do
  for t in upstream nginx-proxy switchyard guarded; do
    case $t in
      upstream) r=$(run $t "$UP" $c) ;;
      nginx-proxy) r=$(run $t "$PX" $c) ;;
      switchyard) r=$(run $t "$S1" $c) ;;
      guarded) r=$(run $t "$S2" $c "$KEY") ;;
    esac
    read -r rps p50 errs <<<"$r"
    RPS[$t.$c]=$rps; P50[$t.$c]=$p50
    printf '%-12s %5s %12s %10s  %s\n' "$t" "$c" "$rps" "$p50" "$errs"
  done
done
ratio() { python3 -c "print(f'{float($1)/float($2):.2f}')"; }
diff_ms() { python3 -c "print(f'{float($1)-float($2):.3f}')"; }
echo
echo "switchyard req/s / nginx-proxy req/s at 32 connections: $(ratio "${RPS[switchyard.32]}" "${RPS[nginx-proxy.32]}")×"
echo "p50 added over the upstream at 1 connection: switchyard $(diff_ms "${P50[switchyard.1]}" "${P50[upstream.1]}") ms, nginx-proxy $(diff_ms "${P50[nginx-proxy.1]}" "${P50[upstream.1]}") ms"
echo "guard (auth + RPM/TPM limits + usage records): req/s at 32 connections $(ratio "${RPS[guarded.32]}" "${RPS[switchyard.32]}")× of unguarded; at 1 connection $(ratio "${RPS[guarded.1]}" "${RPS[switchyard.1]}")×, p50 +$(diff_ms "${P50[guarded.1]}" "${P50[switchyard.1]}") ms"
