"""OpenAI's Files and Batch APIs on Switchyard, driven by the official `openai` SDK (`client.files`, `client.batches`):
a batch's requests each answered once, through the same pipeline as interactive ones (the answers equal the
interactive answers, the key's usage counts them); bad input files failing the batch with each bad line named; a
failed request in the error file; cancellation; a window that passes; a server killed mid-batch (SIGKILL) resuming
without answering any request twice; interactive requests served while a batch runs; keys that see only their own.
One server of this module's own, with keys, over a database that outlives it.
"""

from __future__ import annotations

import io
import json
import signal
import time

import base64
import http.server
import threading

import httpx
import openai
import pytest
from openai import OpenAI
from standardwebhooks.webhooks import Webhook
from support import keyed_server, serve

MODEL = "smollm2"
SECRET = "whsec_" + base64.b64encode(b"switchyard-test-webhook-secret-32b").decode()


@pytest.fixture(scope="module")
def server():
    with keyed_server("--parallel", "2", "--allow-private-webhooks", env={"SWITCHYARD_WEBHOOK_SECRET": SECRET}) as state:
        yield state


def client(server, name: str = "alice") -> OpenAI:
    return OpenAI(base_url=server["url"] + "/v1", api_key=server["keys"][name], max_retries=0, timeout=300)


def chat_line(custom_id: str, prompt: str, max_tokens: int = 8, model: str = MODEL) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "temperature": 0, "max_tokens": max_tokens,
                     "messages": [{"role": "user", "content": prompt}]}}


def upload(c: OpenAI, lines: list[dict | str]) -> str:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    return c.files.create(file=("requests.jsonl", io.BytesIO(text.encode())), purpose="batch").id


def wait(c: OpenAI, batch_id: str, until: set[str], timeout: float = 600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = c.batches.retrieve(batch_id)
        if b.status in until:
            return b
        time.sleep(0.3)
    pytest.fail(f"batch {batch_id} is still {b.status} after {timeout} s: {b.request_counts}")


def lines(c: OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(line) for line in c.files.content(file_id).text.splitlines() if line.strip()]


def usage_requests(server, name: str) -> int:
    r = httpx.get(server["url"] + "/api/v1/usage", headers={"Authorization": f"Bearer {server['keys'][name]}"}, timeout=30)
    return r.json()["totals"]["requests"]


def test_each_request_is_answered_once_as_interactively(server):
    c = client(server)
    prompts = [f"Name a {thing}." for thing in ("color", "fruit", "city", "animal", "tool", "planet")]
    before = usage_requests(server, "alice")
    batch = c.batches.create(input_file_id=upload(c, [chat_line(f"q{i}", p) for i, p in enumerate(prompts)]),
                             endpoint="/v1/chat/completions", completion_window="24h", metadata={"job": "nightly"})
    assert batch.status == "in_progress" and batch.request_counts.total == 6 and batch.metadata == {"job": "nightly"}
    done = wait(c, batch.id, {"completed", "failed"})
    assert done.status == "completed", done
    assert (done.request_counts.completed, done.request_counts.failed) == (6, 0)
    assert done.error_file_id is None and done.completed_at >= done.in_progress_at >= done.created_at
    out = lines(c, done.output_file_id)
    assert sorted(o["custom_id"] for o in out) == [f"q{i}" for i in range(6)]
    for o in out:
        assert o["response"]["status_code"] == 200 and o["error"] is None and o["id"].startswith("batch_req_")
        prompt = prompts[int(o["custom_id"][1:])]
        alone = c.chat.completions.create(model=MODEL, temperature=0, max_tokens=8, messages=[{"role": "user", "content": prompt}])
        assert o["response"]["body"]["choices"][0]["message"]["content"] == alone.choices[0].message.content
    # The batch's requests ran as the key: 6 of them, and the 6 interactive ones.
    deadline = time.time() + 10
    while usage_requests(server, "alice") < before + 12 and time.time() < deadline:
        time.sleep(0.2)
    assert usage_requests(server, "alice") == before + 12
    assert c.files.retrieve(done.output_file_id).purpose == "batch_output"


def test_embeddings_and_a_failed_request_in_the_error_file(server):
    c = client(server)
    file_id = upload(c, [{"custom_id": "e1", "method": "POST", "url": "/v1/embeddings", "body": {"model": "minilm", "input": "hello"}},
                         {"custom_id": "e2", "method": "POST", "url": "/v1/embeddings", "body": {"model": "no-such-model", "input": "x"}}])
    done = wait(c, c.batches.create(input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h").id,
                {"completed", "failed"})
    assert done.status == "completed" and (done.request_counts.completed, done.request_counts.failed) == (1, 1)
    [ok] = lines(c, done.output_file_id)
    assert ok["custom_id"] == "e1" and len(ok["response"]["body"]["data"][0]["embedding"]) == 384
    [bad] = lines(c, done.error_file_id)
    assert bad["custom_id"] == "e2" and bad["response"]["status_code"] == 404
    assert bad["response"]["body"]["error"]["code"] == "model_not_found"


def test_bad_lines_fail_the_batch_naming_each(server):
    c = client(server)
    file_id = upload(c, [chat_line("a", "Hi"), chat_line("a", "Hi again"), "{not json",
                         {**chat_line("b", "Hi"), "url": "/v1/embeddings"}, {**chat_line("c", "Hi"), "custom_id": ""}])
    batch = c.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "failed" and batch.failed_at and batch.request_counts.total == 0
    assert [(e.line, e.code) for e in batch.errors.data] == [(2, "duplicate_custom_id"), (3, "invalid_json_line"),
                                                             (4, "mismatched_endpoint"), (5, "missing_required_parameter")]
    with pytest.raises(openai.BadRequestError):
        c.batches.create(input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.BadRequestError):
        c.files.create(file=("x.jsonl", io.BytesIO(b"{}\n")), purpose="fine-tune")


def test_cancel_stops_the_batch_and_keeps_what_was_answered(server):
    c = client(server)
    batch = c.batches.create(input_file_id=upload(c, [chat_line(f"c{i}", f"Count to {i}.", 48) for i in range(40)]),
                             endpoint="/v1/chat/completions", completion_window="24h")
    wait(c, batch.id, {"in_progress"})
    cancelled = c.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled") and cancelled.cancelling_at
    done = wait(c, batch.id, {"cancelled"}, timeout=120)
    assert done.request_counts.completed < 40 and done.cancelled_at >= done.cancelling_at
    assert len(lines(c, done.output_file_id)) == done.request_counts.completed
    with pytest.raises(openai.APIStatusError) as e:
        c.batches.cancel(c.batches.list(limit=100).data[-1].id)   # the first batch, completed long ago
    assert e.value.status_code == 409


def test_a_window_that_passes_expires_the_rest(server):
    c = client(server)
    file_id = upload(c, [chat_line(f"x{i}", f"Write about {i}.", 48) for i in range(40)])
    r = httpx.post(server["url"] + "/v1/batches", timeout=30, headers={"Authorization": f"Bearer {server['keys']['alice']}"},
                   json={"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "3s"})
    assert r.status_code == 200, r.text
    done = wait(c, r.json()["id"], {"expired"}, timeout=120)
    answered, unrun = lines(c, done.output_file_id), lines(c, done.error_file_id)
    assert len(answered) == done.request_counts.completed < 40
    assert {e["error"]["code"] for e in unrun} == {"batch_expired"} and len(answered) + len(unrun) == 40
    assert sorted(x["custom_id"] for x in answered + unrun) == sorted(f"x{i}" for i in range(40))


def test_a_killed_server_resumes_the_batch_and_answers_no_request_twice(server):
    c = client(server)
    batch = c.batches.create(input_file_id=upload(c, [chat_line(f"k{i}", f"Say {i}.", 24) for i in range(16)]),
                             endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.time() + 300
    while c.batches.retrieve(batch.id).request_counts.completed < 3 and time.time() < deadline:
        time.sleep(0.1)
    server["proc"].send_signal(signal.SIGKILL)
    server["proc"].wait()
    server["proc"] = serve(server["binary"], server["env"], server["port"], server["log"], *server["args"])
    done = wait(client(server), batch.id, {"completed"})
    out = lines(client(server), done.output_file_id)
    assert sorted(o["custom_id"] for o in out) == sorted(f"k{i}" for i in range(16)), "each request once"
    assert done.request_counts.completed == 16


def preemptions(server) -> float:
    text = httpx.get(server["url"] + "/metrics", timeout=10).text
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith("switchyard_batch_preemptions_total")))


def test_interactive_requests_preempt_batch_work_which_still_completes(server):
    c = client(server)
    used = usage_requests(server, "alice")
    batch = c.batches.create(input_file_id=upload(c, [chat_line(f"i{i}", f"Tell a story about {i}.", 64) for i in range(12)]),
                             endpoint="/v1/chat/completions", completion_window="24h")
    before = preemptions(server)
    asked = 0
    for attempt in range(3):
        # Just after a request of the batch ended, the next one is running: an interactive request stops it.
        seen = c.batches.retrieve(batch.id).request_counts.completed
        while c.batches.retrieve(batch.id).request_counts.completed == seen:
            time.sleep(0.05)
        time.sleep(0.2)
        r = c.chat.completions.create(model=MODEL, temperature=0, max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
        assert r.choices[0].message.content
        asked += 1
        if preemptions(server) > before:
            break
    assert preemptions(server) > before
    done = wait(c, batch.id, {"completed"})
    out = lines(c, done.output_file_id)
    assert done.request_counts.completed == 12 and sorted(o["custom_id"] for o in out) == sorted(f"i{i}" for i in range(12))
    # The stopped attempts are not charged: the key's usage counts each batch request once, and the interactive ones.
    deadline = time.time() + 10
    while usage_requests(server, "alice") < used + 12 + asked and time.time() < deadline:
        time.sleep(0.2)
    assert usage_requests(server, "alice") == used + 12 + asked


def test_keys_see_only_their_own_files_and_batches(server):
    alice, bob = client(server, "alice"), client(server, "bob")
    file_id = upload(alice, [chat_line("only", "Hi")])
    batch = alice.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    for call in (lambda: bob.files.retrieve(file_id), lambda: bob.files.content(file_id), lambda: bob.files.delete(file_id),
                 lambda: bob.batches.retrieve(batch.id), lambda: bob.batches.cancel(batch.id)):
        with pytest.raises(openai.NotFoundError):
            call()
    with pytest.raises(openai.BadRequestError):
        bob.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert file_id not in [f.id for f in bob.files.list()] and batch.id not in [b.id for b in bob.batches.list()]
    assert file_id in [f.id for f in alice.files.list(purpose="batch")]
    wait(alice, batch.id, {"completed"})
    assert alice.files.delete(file_id).deleted
    with pytest.raises(openai.NotFoundError):
        alice.files.retrieve(file_id)


class Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that refuses its first `refuse` deliveries (500) and keeps the others."""
    received: list[tuple[dict, bytes]] = []
    refuse = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        if Receiver.refuse > 0:
            Receiver.refuse -= 1
            self.send_response(500)
        else:
            Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_finished_batch_is_announced_signed_and_retried(server):
    c = client(server)
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    Receiver.received, Receiver.refuse = [], 2
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/batch"
        r = httpx.post(server["url"] + "/v1/batches", timeout=30, headers={"Authorization": f"Bearer {server['keys']['alice']}"},
                       json={"input_file_id": upload(c, [chat_line("w1", "Hi")]), "endpoint": "/v1/chat/completions",
                             "completion_window": "24h", "webhook_url": url})
        assert r.status_code == 200 and r.json()["webhook_url"] == url, r.text
        batch_id = r.json()["id"]
        deadline = time.time() + 120
        while not Receiver.received and time.time() < deadline:
            time.sleep(0.2)
        [(headers, body)] = Receiver.received
        # Verified as a receiver would, with the Standard Webhooks reference library; a changed byte fails.
        event = Webhook(SECRET).verify(body, headers)
        assert event["type"] == "batch.completed" and event["data"] == {"id": batch_id} and event["object"] == "event"
        assert headers["webhook-id"] == event["id"]
        with pytest.raises(Exception):
            Webhook(SECRET).verify(body.replace(b"completed", b"cancelled"), headers)
        time.sleep(2)
        assert len(Receiver.received) == 1, "delivered once the receiver took it, after two refusals"
        bad = httpx.post(server["url"] + "/v1/batches", timeout=30, headers={"Authorization": f"Bearer {server['keys']['alice']}"},
                         json={"input_file_id": upload(c, [chat_line("w2", "Hi")]), "endpoint": "/v1/chat/completions",
                               "completion_window": "24h", "webhook_url": "ftp://example.com/x"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "webhook_url"
    finally:
        receiver.shutdown()
