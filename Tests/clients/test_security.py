"""What the server promises a caller it does not trust, tried as the security report did: against a real
`switchyard serve --require-auth`, with an ordinary key made by `switchyard keys create` and the admin key set.

- A model name that is a path (any surface, any field) is 404 `model_not_found`: the server opens no file outside its
  model directory, follows no link out of it, and its errors quote no file.
- Loading and unloading models, profiles, keys and usage administration need the admin key: an ordinary key gets 403
  `admin_required`.
- A body over the limit is 413 `request_too_large`, answered before the body is read (declared length) or as soon as
  the limit is passed (chunked).

The module starts its own server on a free loopback port, with a fresh database and a model directory of its own
(the smollm2 file linked or copied in, plus links that lead outside it). Needs SWITCHYARD_BIN and smollm2 pulled.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import httpx
import openai
import pytest
from openai import OpenAI

from support import free_port, stop, switchyard_binary, wait_ready

ADMIN = "Zq4mT8vW1xK7pR2nB5cY9dF3hJ6sL0aE"
LIMIT = 4 << 20
PATHS = ["/etc/hostname", "/etc/passwd", "../../../../etc/passwd", "~/.bashrc", "outside", "passwd-link",
         "sub/inner", "/proc/self/environ"]


def _smollm2_path(binary: str) -> str:
    out = subprocess.run([binary, "list", "--paths"], capture_output=True, text=True, timeout=60, check=True)
    paths = [p for p in out.stdout.split() if "SmolLM2" in p]
    assert paths, f"smollm2 is not pulled: {out.stdout}"
    return paths[0]


@pytest.fixture(scope="module")
def server():
    binary = switchyard_binary()
    source = _smollm2_path(binary)
    with tempfile.TemporaryDirectory() as tmp:
        models = os.path.join(tmp, "models")
        elsewhere = os.path.join(tmp, "elsewhere")
        os.makedirs(os.path.join(models, "sub"))
        os.makedirs(elsewhere)
        inside = os.path.join(models, os.path.basename(source))
        try:
            os.link(source, inside)
        except OSError:
            shutil.copyfile(source, inside)
        # A real GGUF outside the directory, reached by a link inside it; a link to /etc/passwd; a model in a subfolder.
        shutil.copyfile(inside, os.path.join(elsewhere, "outside.gguf"))
        os.symlink(os.path.join(elsewhere, "outside.gguf"), os.path.join(models, "outside.gguf"))
        os.symlink("/etc/passwd", os.path.join(models, "passwd-link.gguf"))
        os.link(inside, os.path.join(models, "sub", "inner.gguf"))
        env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "keys.sqlite"), SWITCHYARD_MODELS=models,
                   SWITCHYARD_ADMIN_KEY=ADMIN)
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        made = subprocess.run([binary, "keys", "create", "--name", "tenant"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = os.path.join(tmp, "serve.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([binary, "serve", "--require-auth", "--host", "127.0.0.1", "--port", str(port)],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(f"{url}/api/v1/health", proc, log_path)
            yield {"url": url, "key": key, "port": port}
        finally:
            stop(proc)


def _post(server, path: str, body, key: str | None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(server["url"] + path, json=body, headers=headers, timeout=120)


def _expect_not_found(r: httpx.Response, name: str) -> None:
    assert r.status_code == 404, (name, r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] == "model_not_found", (name, error)
    assert "smollm2" in error["message"]
    for leak in ["GGUF", "magic", "root", "first four bytes", "elsewhere"]:
        assert leak not in error["message"], (name, leak, error["message"])


@pytest.mark.parametrize("name", PATHS)
def test_a_model_name_that_is_a_path_is_404_everywhere(server, name):
    key = server["key"]
    chat = {"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    _expect_not_found(_post(server, "/v1/chat/completions", chat, key), name)
    _expect_not_found(_post(server, "/v1/completions", {"model": name, "prompt": "hi", "max_tokens": 1}, key), name)
    _expect_not_found(_post(server, "/api/v1/generate", {"model": name, "prompt": "hi", "max_tokens": 1}, key), name)
    _expect_not_found(_post(server, "/api/v1/chat", chat, key), name)
    _expect_not_found(_post(server, "/api/v1/models/load", {"model": name}, ADMIN), name)
    # Through the official SDK as well.
    client = OpenAI(base_url=server["url"] + "/v1", api_key=key, max_retries=0, timeout=60)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=1)


def test_served_names_still_answer_and_links_out_are_not_listed(server):
    client = OpenAI(base_url=server["url"] + "/v1", api_key=server["key"], max_retries=0, timeout=120)
    for name in ["smollm2", "SmolLM2-135M-Instruct.Q4_1"]:
        reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        assert reply.usage.completion_tokens > 0
    listed = [m.id for m in client.models.list()]
    assert "smollm2" in listed
    assert not {"outside", "passwd-link"} & set(listed), listed


@pytest.mark.parametrize("path,body", [
    ("/api/v1/models/load", {"model": "smollm2"}),
    ("/api/v1/models/unload", {"model": "smollm2"}),
    ("/admin/profile", {"profile": None}),
    ("/admin/keys", {"name": "mine"}),
])
def test_changing_the_server_needs_the_admin_key(server, path, body):
    r = _post(server, path, body, server["key"])
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "admin_required"
    assert _post(server, path, body, None).status_code == 401


def test_the_admin_key_loads_and_unloads(server):
    assert _post(server, "/api/v1/models/load", {"model": "smollm2"}, ADMIN).status_code == 200
    r = _post(server, "/api/v1/models/unload", {"model": "smollm2"}, ADMIN)
    assert r.status_code == 200 and r.json()["unloaded"] is True
    for path in ["/admin/keys", "/admin/usage"]:
        r = httpx.get(server["url"] + path, headers={"Authorization": f"Bearer {server['key']}"}, timeout=30)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required", (path, r.text)


def _raw_exchange(port: int, head: bytes, body_pieces) -> tuple[bytes, int]:
    """Sends `head`, then the body pieces until the server answers (or they run out); returns the answer's bytes
    and how many body bytes were sent before it came."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        s.settimeout(0.05)
        answer = b""
        for piece in body_pieces:
            try:
                s.sendall(piece)
                sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer += s.recv(65536)
            except socket.timeout:
                pass
            if answer:
                break
        s.settimeout(30)
        deadline = time.time() + 30
        while b"\r\n\r\n" not in answer and time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
        # The rest of the answer: up to its Content-Length (the server need not close first), or to the close.
        head, _, _ = answer.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                       if line.lower().startswith(b"content-length:")), None)
        try:
            while length is None or len(answer) - len(head) - 4 < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except (socket.timeout, ConnectionResetError, OSError):
            pass
        return answer, sent


def _socket_buffers() -> int:
    """The most a loopback connection's send and receive buffers can hold: body bytes the kernel accepts from the
    client before the server has read any of them."""
    total = 0
    for name in ["tcp_wmem", "tcp_rmem"]:
        with open(f"/proc/sys/net/ipv4/{name}") as f:
            total += int(f.read().split()[2])
    return total


def _status_and_error(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    start = body.find(b"{")
    return status, json.loads(body[start:body.rfind(b"}") + 1]) if start >= 0 else {}


def test_a_200_MB_body_is_413_before_it_is_read(server):
    length = 200 * 1000 * 1000
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server['key']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()
    pieces = (b"a" * 65536 for _ in range(length // 65536))
    answer, sent = _raw_exchange(server["port"], head, pieces)
    status, body = _status_and_error(answer)
    assert status == 413, answer[:300]
    assert body["error"]["code"] == "request_too_large"
    # Answered on the declared length: what was sent before the answer came is at most what the sockets buffer.
    assert sent <= _socket_buffers() + 65536, f"{sent} bytes were sent before the answer"


def test_a_chunked_body_past_the_limit_is_413(server):
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server['key']}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    piece = b"10000\r\n" + b"a" * 65536 + b"\r\n"
    pieces = (piece for _ in range(3200))   # 200 MiB if the server read it all
    answer, sent = _raw_exchange(server["port"], head, pieces)
    status, body = _status_and_error(answer)
    assert status == 413, answer[:300]
    assert body["error"]["code"] == "request_too_large"
    # Refused once the limit is passed, not after the whole body: the limit plus what the sockets buffer.
    assert sent <= LIMIT + _socket_buffers() + 65536, f"{sent} bytes were sent before the answer"


def test_the_server_is_still_up_after_the_refusals(server):
    r = httpx.get(server["url"] + "/api/v1/health", timeout=30)
    assert r.status_code == 200
