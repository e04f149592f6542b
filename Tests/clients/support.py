"""What the client tests that start their own processes share: free ports, the binary under test, waiting for a
server to answer, and stopping processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def switchyard_binary() -> str:
    binary = os.environ.get("SWITCHYARD_BIN", "").strip()
    if not binary:
        pytest.fail("SWITCHYARD_BIN is not set: run these tests through Tests/clients/run.sh PATH_TO_SWITCHYARD_BINARY")
    return binary


def wait_ready(url: str, proc: subprocess.Popen, log_path: str, timeout: float = 120) -> None:
    """Returns once GET `url` answers 200; fails the test with the end of the log if `proc` exits or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    with open(log_path) as f:
        pytest.fail(f"{url} did not come up:\n{f.read()[-3000:]}")


def serve(binary: str, env: dict[str, str], port: int, log_path: str, *extra: str) -> subprocess.Popen:
    """`switchyard serve` on 127.0.0.1:`port` with `extra` options, its output appended to `log_path`; returns once
    its health endpoint answers."""
    proc = subprocess.Popen([binary, "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
                            env=env, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}/api/v1/health", proc, log_path)
    return proc


def stop(*procs: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 20 s, for each process still running."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def create_keys(binary: str, env: dict[str, str], *names: str) -> dict[str, str]:
    """`switchyard keys create --name NAME` for each name, over `env`'s database; the keys' secrets by name."""
    keys = {}
    for name in names:
        out = subprocess.run([binary, "keys", "create", "--name", name], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        keys[name] = out.stdout.strip()
    return keys


@contextlib.contextmanager
def keyed_server(*args: str, keys: tuple[str, ...] = ("alice", "bob"), env: dict[str, str] | None = None,
                 empty_config: bool = False) -> Iterator[dict]:
    """A server of a test module's own: `serve --require-auth ARGS…` over a throw-away database holding `keys` (made
    first), with `env` added to the environment and, with `empty_config`, a configuration folder without a registry.
    Yields its state: binary, env, port, url, log, keys (secrets by name), args and proc (restartable with `serve`)."""
    binary = switchyard_binary()
    with tempfile.TemporaryDirectory() as tmp:
        environment = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "db.sqlite"), **(env or {}))
        environment.pop("SWITCHYARD_REQUIRE_AUTH", None)
        if empty_config:
            os.mkdir(os.path.join(tmp, "config"))
            environment["SWITCHYARD_CONFIG"] = os.path.join(tmp, "config")
        made = create_keys(binary, environment, *keys)
        port = free_port()
        state = {"binary": binary, "env": environment, "port": port, "log": os.path.join(tmp, "serve.log"), "keys": made,
                 "url": f"http://127.0.0.1:{port}", "args": ("--require-auth", *args)}
        state["proc"] = serve(binary, environment, port, state["log"], *state["args"])
        try:
            yield state
        finally:
            stop(state["proc"])
