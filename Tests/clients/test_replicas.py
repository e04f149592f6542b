"""Two `switchyard serve` replicas sharing one PostgreSQL (keys, usage) and one Redis (rate limits, response cache).

The module starts its own PostgreSQL (initdb into a temporary directory, on a free loopback port; as the `postgres`
user when run as root) and Redis (`redis-server` on a free loopback port), both from Debian's packages, then two
replicas with `--database-url` and `--redis-url`. 100 concurrent clients spread over both replicas must together
get exactly the key's N requests a minute (not 2N), every chat request must leave exactly one usage record, and an
answer cached by one replica must be a hit on the other.
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import httpx
import pytest
from support import free_port, stop, switchyard_binary, wait_ready

RPM = 30
CLIENTS = 100


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([shutil.which(name)] if shutil.which(name) else [])
    if not found:
        pytest.fail(f"PostgreSQL not found ({name}): run `make deps`")
    return found[-1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _wait(check, what: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} did not come up within {timeout:.0f} s")


@pytest.fixture(scope="module")
def cluster():
    binary = switchyard_binary()
    redis_server = shutil.which("redis-server")
    if not redis_server:
        pytest.fail("redis-server not found: run `make deps`")
    procs: list[subprocess.Popen] = []
    tmp = tempfile.mkdtemp(prefix="sy-replicas-")
    try:
        os.chmod(tmp, 0o755)
        data, sockets = os.path.join(tmp, "pgdata"), os.path.join(tmp, "pgsock")
        os.makedirs(sockets)
        if os.geteuid() == 0:
            shutil.chown(sockets, "postgres")
            os.makedirs(data)
            shutil.chown(data, "postgres")
        # cwd: a directory the postgres user can read (the checkout may be in root's home).
        subprocess.run(_as_postgres([_postgres_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]),
                       check=True, capture_output=True, timeout=120, cwd=tmp)
        pg_port = free_port()
        procs.append(subprocess.Popen(_as_postgres([_postgres_bin("postgres"), "-D", data, "-p", str(pg_port), "-k", sockets,
                                                    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                                    "-c", "max_connections=200"]),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp))
        url = f"postgres://postgres@127.0.0.1:{pg_port}/postgres?sslmode=disable"
        psql = _postgres_bin("psql")
        _wait(lambda: subprocess.run([psql, url, "-Atc", "select 1"], capture_output=True).returncode == 0, "PostgreSQL")

        redis_port = free_port()
        procs.append(subprocess.Popen([redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL))
        redis_url = f"redis://127.0.0.1:{redis_port}"
        _wait(lambda: socket.create_connection(("127.0.0.1", redis_port), timeout=1), "Redis")

        env = dict(os.environ, SWITCHYARD_DATABASE_URL=url)
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        env.pop("SWITCHYARD_DATABASE", None)

        def key(*args: str) -> str:
            out = subprocess.run([binary, "keys", "create", *args], env=env, capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            return out.stdout.strip()

        keys = {"limited": key("--name", "limited", "--rpm", str(RPM)), "bulk": key("--name", "bulk")}
        replicas = []
        for name in ("a", "b"):
            port = free_port()
            log = open(os.path.join(tmp, f"{name}.log"), "w")
            procs.append(subprocess.Popen([binary, "serve", "--require-auth", "--port", str(port), "--redis-url", redis_url,
                                           "--cache", "redis", "--preload", "smollm2"], env=env, stdout=log, stderr=subprocess.STDOUT))
            replicas.append(f"http://127.0.0.1:{port}")
        for name, r, p in zip(("a", "b"), replicas, procs[-2:]):
            wait_ready(r + "/api/v1/health", p, os.path.join(tmp, f"{name}.log"))
        yield {"replicas": replicas, "keys": keys, "psql": psql, "url": url, "tmp": tmp}
    finally:
        stop(*reversed(procs))
        shutil.rmtree(tmp, ignore_errors=True)


def _logs(cluster) -> str:
    out = []
    for name in ("a", "b"):
        with open(os.path.join(cluster["tmp"], f"{name}.log")) as f:
            out.append(f"--- replica {name} ---\n" + f.read()[-3000:])
    return "\n".join(out)


def test_one_limit_is_shared_by_both_replicas(cluster):
    auth = {"Authorization": f"Bearer {cluster['keys']['limited']}"}
    replicas = cluster["replicas"]

    def one(i: int) -> int:
        return httpx.get(replicas[i % 2] + "/v1/models", headers=auth, timeout=30).status_code

    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(one, range(CLIENTS)))
    elapsed = time.time() - started
    allowed = statuses.count(200)
    refill = int(elapsed * RPM / 60) + 1  # the bucket regains RPM a minute while the clients run
    assert set(statuses) <= {200, 429}, (statuses, _logs(cluster))
    assert RPM <= allowed <= RPM + refill, f"{allowed} allowed in {elapsed:.1f} s with {RPM}/min shared by two replicas"
    # Each replica answered some of them (the limit is not just one replica's).
    assert statuses[0::2].count(200) > 0 and statuses[1::2].count(200) > 0


def test_every_usage_record_is_written_exactly_once(cluster):
    auth = {"Authorization": f"Bearer {cluster['keys']['bulk']}"}
    replicas = cluster["replicas"]

    def one(i: int) -> int:
        body = {"model": "smollm2", "messages": [{"role": "user", "content": f"Say the number {i}."}], "max_tokens": 2,
                "temperature": 0}
        return httpx.post(replicas[i % 2] + "/v1/chat/completions", headers=auth, json=body, timeout=300).status_code

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(one, range(CLIENTS)))
    assert statuses.count(200) == CLIENTS, (statuses, _logs(cluster))
    query = ("SELECT count(*), count(DISTINCT request_id) FROM usage u JOIN api_keys k ON k.id = u.key_id "
             "WHERE k.name = 'bulk'")
    deadline = time.time() + 15
    while True:
        out = subprocess.run([cluster["psql"], cluster["url"], "-Atc", query], capture_output=True, text=True, check=True)
        total, distinct = (int(x) for x in out.stdout.strip().split("|"))
        if total >= CLIENTS or time.time() > deadline:
            break
        time.sleep(0.3)
    assert (total, distinct) == (CLIENTS, CLIENTS), _logs(cluster)


def test_an_answer_cached_by_one_replica_is_a_hit_on_the_other(cluster):
    auth = {"Authorization": f"Bearer {cluster['keys']['bulk']}"}
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Name a fruit."}], "max_tokens": 6, "temperature": 0}
    a, b = cluster["replicas"]
    first = httpx.post(a + "/v1/chat/completions", headers=auth, json=body, timeout=120)
    assert first.status_code == 200 and first.headers.get("x-switchyard-cache") == "miss", first.text
    second = httpx.post(b + "/v1/chat/completions", headers=auth, json=body, timeout=120)
    assert second.headers.get("x-switchyard-cache") == "hit"
    assert second.content == first.content
    assert json.loads(second.content)["choices"][0]["message"]["content"]
