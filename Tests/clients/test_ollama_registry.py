"""`ollama pull NAME:TAG` against Switchyard, through the official `ollama` SDK: the name goes to Ollama's registry
(here a local stand-in that follows its protocol: an OCI manifest, blobs by sha256 digest, the model blob redirected to
another host as the registry does to its CDN), the GGUF lands in the model directory verified by its digest, the
model's parameters become its sampling defaults, and the client then chats with it under the name it pulled.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ollama import Client, ResponseError
from support import free_port, serve, stop, switchyard_binary

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PARAMS = json.dumps({"num_predict": 5, "temperature": 0, "num_ctx": 2048}).encode()


def _registry(model_path: str):
    digest = hashlib.sha256(open(model_path, "rb").read()).hexdigest()
    params_digest = hashlib.sha256(PARAMS).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "layers": [
                               {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + digest,
                                "size": os.path.getsize(model_path)},
                               {"mediaType": "application/vnd.ollama.image.params", "digest": "sha256:" + params_digest,
                                "size": len(PARAMS)}]}).encode()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status, body=b"", headers=()):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            seen.append(self.path)
            if self.path == "/v2/library/tiny/manifests/q8":
                return self._send(200, manifest, [("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")])
            if self.path == "/v2/library/tiny/blobs/sha256:" + digest:
                return self._send(307, headers=[("Location", f"http://127.0.0.2:{cdn.server_address[1]}/blob")])
            if self.path == "/v2/library/tiny/blobs/sha256:" + params_digest:
                return self._send(200, PARAMS)
            if self.path == "/blob" and self.server is cdn:
                with open(model_path, "rb") as f:
                    data = f.read()
                return self._send(200, data, [("Content-Type", "application/octet-stream")])
            self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')

    hub = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    cdn = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    for s in (hub, cdn):
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    return hub, cdn, seen


@pytest.fixture(scope="module")
def server():
    binary = switchyard_binary()
    paths = subprocess.run([binary, "list", "--paths"], capture_output=True, text=True, timeout=60).stdout.split()
    model = next(p for p in paths if p.endswith(MODEL_FILE))
    hub, cdn, seen = _registry(model)
    with tempfile.TemporaryDirectory() as tmp:
        models = os.path.join(tmp, "models")
        os.makedirs(models)
        env = dict(os.environ, SWITCHYARD_MODELS=models, SWITCHYARD_DATABASE=os.path.join(tmp, "db.sqlite"),
                   SWITCHYARD_OLLAMA_REGISTRY=f"http://127.0.0.1:{hub.server_address[1]}")
        for name in ("SWITCHYARD_REQUIRE_AUTH", "SWITCHYARD_CONFIG"):
            env.pop(name, None)
        port = free_port()
        proc = serve(binary, env, port, os.path.join(tmp, "serve.log"))
        try:
            yield {"url": f"http://127.0.0.1:{port}", "models": models, "seen": seen}
        finally:
            stop(proc)
            hub.shutdown()
            cdn.shutdown()


def test_pull_from_the_registry_then_chat_with_the_name_pulled(server):
    client = Client(host=server["url"], timeout=300)
    statuses = [p.status for p in client.pull("tiny:q8", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success", statuses
    assert sorted(os.listdir(server["models"])) == ["tiny-q8.defaults.json", "tiny-q8.gguf"]
    assert "/v2/library/tiny/manifests/q8" in server["seen"]
    assert {m.model for m in client.list().models} >= {"tiny-q8"}
    # The registry's parameters are the model's defaults: num_predict 5, temperature 0.
    r = client.chat(model="tiny:q8", messages=[{"role": "user", "content": "Tell me a long story."}])
    assert r.eval_count == 5 and r.done_reason == "length"
    again = client.chat(model="tiny:q8", messages=[{"role": "user", "content": "Tell me a long story."}])
    assert again.message.content == r.message.content, "temperature 0 from the defaults: the same answer"
    longer = client.chat(model="tiny:q8", messages=[{"role": "user", "content": "Tell me a long story."}],
                         options={"num_predict": 8})
    assert longer.eval_count == 8, "the request's own setting wins"


def test_a_name_the_registry_does_not_have(server):
    client = Client(host=server["url"], timeout=60)
    with pytest.raises(ResponseError) as e:
        client.pull("nothing:7b")
    assert "ollama:nothing:7b" in e.value.error and "404" in e.value.error
