#!/usr/bin/env bash
# Client-compatibility tests: starts `switchyard serve` on a free loopback port and runs the official Python SDKs
# against it (pytest, Tests/clients/test_*.py). test_auth.py starts a second server of its own with
# `serve --require-auth` and keys made by `switchyard keys create`.
#
# Usage: Tests/clients/run.sh PATH_TO_SWITCHYARD_BINARY [extra pytest arguments...]
# Exit status: pytest's (or 1 if the server could not be started).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 PATH_TO_SWITCHYARD_BINARY [pytest args...]" >&2
    exit 2
fi

# Resolve the binary before changing directory.
bin_arg=$1
shift
if [ ! -x "$bin_arg" ]; then
    echo "error: $bin_arg is not an executable file" >&2
    exit 2
fi
BIN="$(cd "$(dirname "$bin_arg")" && pwd)/$(basename "$bin_arg")"

cd "$(dirname "$0")/../.."

export PYTHONDONTWRITEBYTECODE=1 PIP_ROOT_USER_ACTION=ignore
python3 -m pip install --quiet --disable-pip-version-check -r Tests/clients/requirements.txt

# The server answers for the catalogue models; make sure they are there (a no-op, after a hash check, when present).
"$BIN" pull smollm2 >&2
"$BIN" pull minilm >&2

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
URL="http://127.0.0.1:$PORT"
LOG=$(mktemp "${TMPDIR:-/tmp}/switchyard-serve.XXXXXX.log")
# Keys and usage of the test servers go to a throw-away database, never the user's.
DB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-db.XXXXXX")
export SWITCHYARD_DATABASE="$DB_DIR/switchyard.sqlite"
# The repository's configuration (config/), and a profile record of the tests' own, never the user's.
export SWITCHYARD_CONFIG="$PWD/config" SWITCHYARD_PROFILE_STATE="$DB_DIR/profile.json"
SERVER_PID=""
SHOW_LOG=0

stop_server() {
    local rc=$?
    set +e
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        # SIGTERM may be blocked in processes started from this sandbox: wait up to 10 s, then SIGKILL.
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "switchyard serve (pid $SERVER_PID) ignored SIGTERM for 10 s; sending SIGKILL" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null
        fi
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [ "$SHOW_LOG" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "---- last 50 lines of the server log ($LOG) ----" >&2
        tail -n 50 "$LOG" >&2
        echo "---- end of server log ----" >&2
    fi
    rm -f "$LOG"
    rm -rf "$DB_DIR"
    exit "$rc"
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$BIN" serve --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 &
SERVER_PID=$!

healthy() {
    if command -v curl >/dev/null 2>&1; then
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/api/v1/health" 2>/dev/null)" = 200 ]
    else
        python3 -c 'import sys, urllib.request
try: sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception: sys.exit(1)' "$URL/api/v1/health"
    fi
}

# Wait up to 60 s for the health endpoint to answer 200.
deadline=$((SECONDS + 60))
until healthy; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "error: switchyard serve exited before answering $URL/api/v1/health" >&2
        exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "error: $URL/api/v1/health did not answer 200 within 60 s" >&2
        exit 1
    fi
    sleep 0.25
done
echo "switchyard serve is up at $URL (pid $SERVER_PID)" >&2

set +e
SWITCHYARD_URL="$URL" SWITCHYARD_BIN="$BIN" python3 -m pytest -q -p no:cacheprovider Tests/clients "$@"
status=$?
set -e
if [ "$status" -ne 0 ]; then SHOW_LOG=1; fi
exit "$status"
