#!/usr/bin/env bash
# Installs the system packages the build and the tests need, when missing (Debian/Ubuntu): the SQLite headers GRDB
# compiles against, PostgreSQL, which the storage tests start a throwaway server of (initdb, postgres, psql; the
# package also creates the `postgres` user the server runs as when the tests run as root), and redis-server, which
# the Redis tests start on a free loopback port. Does nothing when they are
# present; says what to run when it cannot install (not root, no apt-get).
set -euo pipefail
missing=()
dpkg -s libsqlite3-dev >/dev/null 2>&1 || missing+=(libsqlite3-dev)
dpkg -s postgresql >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || dpkg -s redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing ${missing[*]} (apt-get)…" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (sudo apt-get)…" >&2
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
else
  echo "missing system packages: ${missing[*]} — install them (e.g. apt-get install ${missing[*]})" >&2
  exit 1
fi
