"""The README's client examples, run as written against the test server (only its address put in for
`http://127.0.0.1:8080`): each SDK's block must run without an error and print an answer per call."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import httpx

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def _block_after(heading: str, language: str) -> str:
    text = open(README).read()
    start = text.index(heading)
    match = re.compile(r"```" + language + r"\n(.*?)```", re.S).search(text, start)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def test_each_sdk_example_runs_as_written():
    url = os.environ.get("SWITCHYARD_URL", "").strip().rstrip("/")
    if not url:
        pytest.fail("SWITCHYARD_URL is not set: run these tests through Tests/clients/run.sh")
    code = _block_after("#### Each SDK pointed at Switchyard", "python")
    assert code.count("http://127.0.0.1:8080") == 3
    code = code.replace("http://127.0.0.1:8080", url).replace("ws://127.0.0.1:8080", url.replace("http://", "ws://", 1))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    # Each call prints its label and then the answer (which may run over several lines).
    labels = ["chat:", "responses:", "responses, streamed:", "anthropic:", "anthropic, streamed:", "ollama:"]
    starts = [out.stdout.find("\n" + label + " ") if i else out.stdout.find(label + " ") for i, label in enumerate(labels)]
    assert starts[0] == 0 and all(a < b for a, b in zip(starts, starts[1:])), out.stdout
    for label, start, end in zip(labels, starts, starts[1:] + [len(out.stdout)]):
        assert out.stdout[start:end].strip()[len(label):].strip(), f"{label} printed no answer:\n{out.stdout}"


def test_each_configuration_snippet_validates_on_its_own(tmp_path):
    """Every `yaml` block of the README is a whole models.yaml: `config validate` accepts it alone."""
    binary = os.environ.get("SWITCHYARD_BIN", "").strip()
    if not binary:
        pytest.fail("SWITCHYARD_BIN is not set: run these tests through Tests/clients/run.sh")
    blocks = re.findall(r"```yaml\n(.*?)```", open(README).read(), re.S)
    assert len(blocks) >= 3
    for i, block in enumerate(blocks):
        folder = tmp_path / f"snippet{i}"
        folder.mkdir()
        (folder / "models.yaml").write_text(block)
        out = subprocess.run([binary, "config", "validate", "--config", str(folder)], capture_output=True, text=True,
                             timeout=60, env={k: v for k, v in os.environ.items() if k != "SWITCHYARD_CONFIG"})
        assert out.returncode == 0 and out.stdout.startswith("ok:"), f"snippet {i}:\n{block}\n{out.stdout}{out.stderr}"


def test_the_embeddings_example_runs_as_written():
    url = os.environ.get("SWITCHYARD_URL", "").strip().rstrip("/")
    if not url:
        pytest.fail("SWITCHYARD_URL is not set: run these tests through Tests/clients/run.sh")
    code = _block_after("### Embeddings", "sh")
    assert "localhost:8080" in code
    binary = os.environ.get("SWITCHYARD_BIN", "switchyard")
    script = code.replace("localhost:8080", url.removeprefix("http://")).replace("switchyard pull", f"'{binary}' pull")
    out = subprocess.run(["bash", "-ec", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert [d["index"] for d in answer["data"]] == [0, 1] and all(len(d["embedding"]) == 384 for d in answer["data"])


def _run_python_block(heading: str) -> list[str]:
    """Runs the README's python block after `heading` against the test server; its output lines."""
    url = os.environ.get("SWITCHYARD_URL", "").strip().rstrip("/")
    if not url:
        pytest.fail("SWITCHYARD_URL is not set: run these tests through Tests/clients/run.sh")
    code = _block_after(heading, "python")
    code = code.replace("http://127.0.0.1:8080", url).replace("ws://127.0.0.1:8080", url.replace("http://", "ws://", 1))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_the_conversations_example_runs_as_written():
    lines = _run_python_block("#### Conversations kept on the server")
    assert lines[0].startswith("answer: ") and len(lines[0]) > len("answer: ")
    items = [line for line in lines if line.startswith("item: ")]
    assert [i.split(" | ")[0] for i in items] == ["item: system", "item: user", "item: assistant", "item: user",
                                                 "item: assistant"], lines
    assert items[1] == "item: user | My name is Ada." and items[3] == "item: user | What is my name?"


def test_the_batch_example_runs_as_written():
    lines = _run_python_block("#### Batches")
    assert lines[0] == "batch: completed 3 of 3", lines
    answers = [line for line in lines if line.startswith("answer: ")]
    assert sorted(a.split(" | ")[0] for a in answers) == ["answer: q0", "answer: q1", "answer: q2"]
    assert all(len(a.split(" | ", 1)[1].strip()) > 0 for a in answers), lines


def test_the_resumable_stream_example_runs_as_written():
    lines = _run_python_block("#### Streams that survive a dropped connection")
    assert len(lines) == 1 and lines[0].startswith("resumed after 5 events: "), lines
    # The text read across the drop is the whole greedy answer.
    url = os.environ["SWITCHYARD_URL"].rstrip("/")
    whole = httpx.post(url + "/v1/chat/completions", timeout=120, json={
        "model": "smollm2", "max_tokens": 32, "temperature": 0,
        "messages": [{"role": "user", "content": "Tell me about rivers."}]}).json()["choices"][0]["message"]["content"]
    assert lines[0] == "resumed after 5 events: " + whole


def test_the_websocket_example_runs_as_written():
    lines = _run_python_block("#### WebSocket")
    assert sorted(line.split(" | ")[0] for line in lines) == ["a", "b"], lines
    assert all(len(line.split(" | ", 1)[1].strip()) > 0 for line in lines), lines
