"""The command line as a person meets it, run as a binary: unknown commands named, `run` with words and standard
input, checks of settings that the server would refuse, `show` / `cp` / `rm` / `stop`, every server command with a key
(`--api-key`, `SWITCHYARD_API_KEY`, the admin key) against `serve --require-auth` and a server URL in its usual forms,
and `chat` through a pseudo-terminal (line editing, history, `/set`, Ctrl-C stopping an answer, several lines,
`/save` and `/load`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pexpect
import pytest
from support import free_port, serve, stop, switchyard_binary

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ADMIN = "Kq7vR2mXw9LpZt4Yh8NcBd3Fs6Gj1Ua5"


@pytest.fixture(scope="module")
def home():
    """A model directory of this module's own (the smollm2 file linked in) and a server with keys over it."""
    binary = switchyard_binary()
    source = subprocess.run([binary, "list", "--paths"], capture_output=True, text=True, timeout=60).stdout.split()
    model = next(p for p in source if p.endswith(MODEL_FILE))
    with tempfile.TemporaryDirectory() as tmp:
        models = os.path.join(tmp, "models")
        os.makedirs(models)
        os.link(model, os.path.join(models, MODEL_FILE))
        env = dict(os.environ, SWITCHYARD_MODELS=models, SWITCHYARD_DATABASE=os.path.join(tmp, "db.sqlite"))
        for name in ("SWITCHYARD_REQUIRE_AUTH", "SWITCHYARD_URL", "SWITCHYARD_API_KEY", "SWITCHYARD_ADMIN_KEY", "SWITCHYARD_CONFIG"):
            env.pop(name, None)
        key = subprocess.run([binary, "keys", "create", "--name", "cli"], env=env, capture_output=True, text=True,
                             timeout=60).stdout.strip()
        assert key.startswith("sk-sy-")
        port = free_port()
        proc = serve(binary, dict(env, SWITCHYARD_ADMIN_KEY=ADMIN), port, os.path.join(tmp, "serve.log"), "--require-auth")
        try:
            yield {"binary": binary, "env": env, "models": models, "key": key, "url": f"http://127.0.0.1:{port}",
                   "port": port, "tmp": tmp}
        finally:
            stop(proc)


def sy(home, *args: str, input: str | None = None, env: dict | None = None, timeout: float = 120):
    return subprocess.run([home["binary"], *args], env={**home["env"], **(env or {})}, input=input, capture_output=True,
                          text=True, timeout=timeout)


def no_generic_usage(out) -> bool:
    return "Usage: switchyard <subcommand>" not in out.stderr


# --- commands and arguments ---

@pytest.mark.parametrize("word, suggestion", [("rn", "run"), ("chta", "chat"), ("shwo", "show"), ("frobnicate", None)])
def test_an_unknown_command_is_named_with_the_nearest(home, word, suggestion):
    out = sy(home, word, "smollm2")
    assert out.returncode == 64
    assert f"unknown command '{word}'" in out.stderr
    assert (f"did you mean '{suggestion}'?" in out.stderr) if suggestion else "did you mean" not in out.stderr


def test_help_and_version_still_answer(home):
    for args in (["--help"], ["run", "--help"], ["help", "chat"], ["chat", "--help"]):
        out = sy(home, *args)
        assert out.returncode == 0 and out.stdout.startswith("OVERVIEW:"), (args, out.stdout[:200], out.stderr[:200])
    assert sy(home, "--version").stdout.strip()


def test_run_joins_words_and_reads_standard_input(home):
    greedy = ["-n", "6", "--temperature", "0"]
    words = sy(home, "run", "smollm2", "Name", "a", "color.", *greedy)
    quoted = sy(home, "run", "smollm2", "Name a color.", *greedy)
    piped = sy(home, "run", "smollm2", *greedy, input="Name a color.\n")
    dash = sy(home, "run", "smollm2", "-", *greedy, input="Name a color.\n")
    assert words.returncode == quoted.returncode == piped.returncode == dash.returncode == 0, words.stderr
    assert words.stdout == quoted.stdout == piped.stdout == dash.stdout and words.stdout.strip()
    empty = sy(home, "run", "smollm2", *greedy, input="  \n")
    assert empty.returncode != 0 and "standard input held no prompt" in empty.stderr


@pytest.mark.parametrize("args, message", [
    (["--temperature", "5"], "--temperature must be between 0 and 2"),
    (["--top-p", "3"], "--top-p must be between 0 and 1"),
    (["-n", "0"], "-n/--max-tokens must be at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--ctx", "1000000"], "--ctx 1000000 is more than the 8192 positions smollm2 was trained on"),
    (["--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e"], "--stop must hold at most 4 sequences"),
])
def test_run_refuses_what_the_server_would_refuse(home, args, message):
    out = sy(home, "run", "smollm2", "Hi", *args)
    assert out.returncode != 0 and message in out.stderr, out.stderr
    assert no_generic_usage(out)


def test_a_path_that_is_not_a_model_file_is_named(home):
    out = sy(home, "run", "/nonexistent/foo.gguf", "Hi")
    assert out.returncode == 1
    assert "/nonexistent/foo.gguf: no such file" in out.stderr and "unknown model" not in out.stderr
    assert no_generic_usage(out)


def test_show_reads_the_file(home):
    out = sy(home, "show", "smollm2")
    assert out.returncode == 0, out.stderr
    assert "architecture        llama" in out.stdout and "context length      8192" in out.stdout
    assert "quantization        Q4_1" in out.stdout and "parameters          134.5M" in out.stdout
    template = sy(home, "show", "smollm2", "--template")
    assert template.stdout.startswith("{% for message in messages %}") or "<|im_start|>" in template.stdout
    by_path = sy(home, "show", os.path.join(home["models"], MODEL_FILE))
    assert by_path.stdout.split("  Template")[0] == out.stdout.split("  Template")[0]


def test_cp_and_rm_on_the_model_directory(home):
    assert sy(home, "cp", "smollm2", "tiny").returncode == 0
    assert os.path.samefile(os.path.join(home["models"], "tiny.gguf"), os.path.join(home["models"], MODEL_FILE))
    again = sy(home, "cp", "smollm2", "tiny")
    assert again.returncode == 1 and "a model named 'tiny' exists already" in again.stderr
    assert sy(home, "rm", "tiny").returncode == 0
    assert not os.path.exists(os.path.join(home["models"], "tiny.gguf"))
    gone = sy(home, "rm", "tiny")
    assert gone.returncode == 1 and "unknown model 'tiny'" in gone.stderr.lower(), gone.stderr


# --- against a server with keys ---

def test_server_commands_send_keys_and_say_which_is_missing(home):
    url = home["url"]
    no_key = sy(home, "show", "smollm2", "--server", url)
    assert no_key.returncode == 1 and f"the server at {url} needs an API key" in no_key.stderr
    with_key = sy(home, "show", "smollm2", "--server", url, env={"SWITCHYARD_API_KEY": home["key"]})
    assert with_key.returncode == 0, with_key.stderr
    as_option = sy(home, "show", "smollm2", "--server", url, "--api-key", home["key"])
    assert as_option.returncode == 0 and as_option.stdout == with_key.stdout
    wrong = sy(home, "show", "smollm2", "--server", url, "--api-key", "sk-sy-nope")
    assert wrong.returncode == 1 and "refused the key from --api-key" in wrong.stderr
    # Loading changes the server for everyone: an API key is not enough, the admin key is.
    user = sy(home, "load", "smollm2", "--server", url, env={"SWITCHYARD_API_KEY": home["key"]})
    assert user.returncode == 1 and "needs the server's admin key" in user.stderr and "SWITCHYARD_API_KEY" in user.stderr
    admin = sy(home, "load", "smollm2", "--keep-alive", "1h30m", "--server", url,
               env={"SWITCHYARD_API_KEY": home["key"], "SWITCHYARD_ADMIN_KEY": ADMIN})
    assert admin.returncode == 0 and admin.stdout.startswith("loaded smollm2"), admin.stderr
    listed = sy(home, "ps", env={"SWITCHYARD_URL": url + "/v1/", "SWITCHYARD_API_KEY": home["key"]})
    assert "smollm2" in listed.stdout
    stopped = sy(home, "stop", "smollm2", "--server", url.removeprefix("http://"), "--api-key", ADMIN)
    assert stopped.returncode == 0 and stopped.stdout.strip() == "unloaded smollm2"


def test_run_show_rm_and_cp_through_the_server(home):
    url, env = home["url"], {"SWITCHYARD_API_KEY": home["key"]}
    here = sy(home, "run", "smollm2", "Name a color.", "-n", "6", "--temperature", "0")
    there = sy(home, "run", "smollm2", "Name a color.", "-n", "6", "--temperature", "0", "--server", url, env=env)
    assert there.returncode == 0 and there.stdout == here.stdout, there.stderr
    shown = sy(home, "show", "smollm2", "--server", url, env=env)
    assert shown.stdout == sy(home, "show", "smollm2").stdout
    refused = sy(home, "cp", "smollm2", "other", "--server", url, env=env)
    assert refused.returncode == 1 and "admin key" in refused.stderr
    admin = {"SWITCHYARD_ADMIN_KEY": ADMIN}
    assert sy(home, "cp", "smollm2", "other", "--server", url, env=admin).returncode == 0
    assert os.path.exists(os.path.join(home["models"], "other.gguf"))
    assert sy(home, "rm", "other", "--server", url, env=admin).returncode == 0
    assert not os.path.exists(os.path.join(home["models"], "other.gguf"))


@pytest.mark.parametrize("given", ["http//nope", "ftp://127.0.0.1:1", "http://127.0.0.1:1/some/path"])
def test_a_server_url_that_is_not_one_is_named(home, given):
    out = sy(home, "ps", "--server", given)
    assert out.returncode == 64 and f"--server '{given}' is not a server URL" in out.stderr
    assert no_generic_usage(out)


def test_no_server_says_where_it_looked(home):
    port = free_port()
    out = sy(home, "ps", "--server", f"127.0.0.1:{port}")
    assert out.returncode == 1 and f"no server answers at http://127.0.0.1:{port}" in out.stderr


# --- chat at a terminal ---

def spawn_chat(home, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(home["binary"], ["chat", "smollm2", *args], env=home["env"], encoding="utf-8", timeout=120,
                          dimensions=(40, 200))
    child.expect(">>> ")
    return child


def test_chat_edits_recalls_sets_and_stops_answers(home):
    c = spawn_chat(home, "--temperature", "0")
    c.sendline("Name a color.")
    c.expect(">>> ")
    first = c.before
    # Up recalls the last line; Ctrl-U clears it.
    c.send("\x1b[A")
    c.expect("Name a color.")
    c.send("\x15")
    c.sendline("/set temperature 5")
    c.expect("temperature must be between 0 and 2")
    c.sendline("/set max_tokens 400")
    c.expect("set max_tokens to 400")
    c.expect(">>> ")
    c.sendline("Write a very long story about a lighthouse keeper and the sea.")
    c.expect(r"\w+ \w+ \w+ \w+")   # the answer is streaming
    c.send("\x03")
    c.expect(r"answer stopped")
    c.expect(">>> ")
    c.sendline("/show")
    c.expect("turns: 1")   # the stopped answer is not part of the conversation
    c.sendline("/bye")
    c.expect(pexpect.EOF)
    c.close()
    assert c.exitstatus == 0
    assert "Name a color." in first


def test_chat_takes_several_lines_and_saves_and_loads(home):
    path = os.path.join(home["tmp"], "conversation.json")
    c = spawn_chat(home, "--temperature", "0")
    c.sendline("/set max_tokens 8")
    c.expect(">>> ")
    c.sendline('"""')
    c.expect(r"\.\.\. ")
    c.sendline("Say hello")
    c.expect(r"\.\.\. ")
    c.sendline('to Ada."""')
    c.expect(">>> ")
    c.sendline(f"/save {path}")
    c.expect("saved 1 turns")
    c.sendline("/clear")
    c.expect("conversation cleared")
    c.sendline(f"/load {path}")
    c.expect("loaded 1 turns")
    c.sendline("/show")
    c.expect("max_tokens 8")
    c.sendline("/load /nonexistent/x.json")
    c.expect("cannot read /nonexistent/x.json: No such file or directory")
    c.sendline("/bogus")
    c.expect("unknown command /bogus")
    c.sendeof()
    c.expect(pexpect.EOF)
    c.close()
    assert c.exitstatus == 0
    saved = json.load(open(path))
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant"]
    assert saved["messages"][0]["content"] == "Say hello\nto Ada." and saved["settings"]["max_tokens"] == "8"


def test_chat_through_the_server_with_a_routed_name(home):
    child = pexpect.spawn(home["binary"], ["chat", "smollm2", "--server", home["url"], "--temperature", "0"],
                          env={**home["env"], "SWITCHYARD_API_KEY": home["key"]}, encoding="utf-8", timeout=120)
    child.expect(f"smollm2 at {home['url']}")
    child.expect(">>> ")
    child.sendline("Name a color.")
    child.expect(">>> ")
    assert child.before.strip()
    child.sendline("/bye")
    child.expect(pexpect.EOF)


# --- serve: the environment, the port, the configuration ---

def serve_fails(home, *args: str, env: dict | None = None):
    """`serve` that must refuse to start: its exit status and what it said."""
    out = sy(home, "serve", "--port", "0", *args, env=env, timeout=60)
    assert out.returncode != 0, out.stderr
    assert no_generic_usage(out)
    return out


@pytest.mark.parametrize("name, value, message", [
    ("SWITCHYARD_PORT", "abc", "SWITCHYARD_PORT is 'abc', which is not a port number from 0 to 65535"),
    ("SWITCHYARD_PORT", "99999", "SWITCHYARD_PORT is '99999', which is not a port number from 0 to 65535"),
    ("SWITCHYARD_MAX_CONCURRENT", "abc", "SWITCHYARD_MAX_CONCURRENT is 'abc'"),
    ("MAX_PROMPT_LENGTH", "abc", "MAX_PROMPT_LENGTH is 'abc'"),
    ("SWITCHYARD_KERNELS", "bogus", "SWITCHYARD_KERNELS is 'bogus', which is not one of generic, avx2"),
    ("SWITCHYARD_CACHE", "disk", "SWITCHYARD_CACHE is 'disk', which is not one of off, memory, sqlite, redis"),
    ("SWITCHYARD_REQUIRE_AUTH", "maybe", "SWITCHYARD_REQUIRE_AUTH is 'maybe'"),
])
def test_an_environment_value_that_cannot_be_used_is_named(home, name, value, message):
    out = sy(home, "serve", env={name: value}, timeout=60)
    assert out.returncode == 64 and message in out.stderr, out.stderr


def test_a_port_in_use_is_named(home):
    out = sy(home, "serve", "--port", str(home["port"]), timeout=60)
    assert out.returncode == 1
    assert f"port {home['port']} on 127.0.0.1 is already in use by another program; choose another with --port" in out.stderr
    assert "errno" not in out.stderr


def config_folder(home, name: str, text: str | None) -> str:
    folder = os.path.join(home["tmp"], name)
    os.makedirs(folder, exist_ok=True)
    if text is not None:
        with open(os.path.join(folder, "models.yaml"), "w") as f:
            f.write(text)
    return folder


def test_serve_refuses_the_configuration_config_validate_rejects(home):
    folder = config_folder(home, "broken", "models:\n  ghost: { catalogue: not-a-model }\n"
                                           "  x: { deployments: [local/nothing] }\n")
    validate = sy(home, "config", "validate", "--config", folder)
    assert validate.returncode == 1
    refused = serve_fails(home, "--config", folder)
    for line in ("models.ghost: 'not-a-model' does not resolve", "no local model 'nothing'"):
        assert line in validate.stdout and line in refused.stderr
    assert "--allow-missing-models" in refused.stderr
    # Line order: ghost (line 2) before x (line 3).
    assert refused.stderr.index("ghost") < refused.stderr.index("nothing")
    port = free_port()
    proc = serve(home["binary"], home["env"], port, os.path.join(home["tmp"], "allow.log"), "--config", folder,
                 "--allow-missing-models")
    stop(proc)
    log = open(os.path.join(home["tmp"], "allow.log")).read()
    assert "warning:" in log and "'ghost' is not served" in log and "'nothing' is not served" in log


@pytest.mark.parametrize("make, message", [
    (lambda home: os.path.join(home["tmp"], "no-such-folder"), "which does not exist"),
    (lambda home: os.path.join(config_folder(home, "file-not-folder", "models: {}\n"), "models.yaml"), "which is a file"),
])
def test_a_named_configuration_folder_must_be_one(home, make, message):
    path = make(home)
    for command in (["config", "validate"], ["serve", "--port", "0"], ["profiles", "list"]):
        out = sy(home, *command, "--config", path, timeout=60)
        assert out.returncode == 64 and message in out.stderr, (command, out.stderr)
    env_out = sy(home, "config", "validate", env={"SWITCHYARD_CONFIG": path})
    assert env_out.returncode == 64 and f"SWITCHYARD_CONFIG names {path}" in env_out.stderr


def test_configuration_file_errors_read_like_a_compiler(home):
    tabs = config_folder(home, "tabs", "models:\n  a:\n\tprovider: local\n")
    out = sy(home, "config", "validate", "--config", tabs)
    assert f"{tabs}/models.yaml:3:1: not valid YAML: found character that cannot start any token (a tab: YAML indents with spaces only)" in out.stdout
    folder = config_folder(home, "folder-as-file", None)
    os.makedirs(os.path.join(folder, "models.yaml"), exist_ok=True)
    out = sy(home, "config", "validate", "--config", folder)
    assert f"{folder}/models.yaml: is a folder, not a file" in out.stdout and "NSCocoaErrorDomain" not in out.stdout


def test_the_configuration_lives_in_one_home(home):
    """Without --config, every command reads $SWITCHYARD_HOME/config (~/.switchyard/config), wherever it runs; a
    profile recorded for one folder does not follow another."""
    root = os.path.join(home["tmp"], "sy-home")
    config = config_folder(home, "sy-home/config", "models:\n  tiny: { catalogue: smollm2 }\n")
    os.makedirs(os.path.join(config, "profiles"), exist_ok=True)
    with open(os.path.join(config, "profiles", "quiet.yaml"), "w") as f:
        f.write("description: a test profile\nmodels:\n  tiny: { context_length: 512 }\n")
    env = {"SWITCHYARD_HOME": root, "SWITCHYARD_PROFILE_STATE": ""}
    elsewhere = tempfile.mkdtemp(dir=home["tmp"])
    out = subprocess.run([home["binary"], "config", "validate"], env={**home["env"], **env}, cwd=elsewhere,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "tiny" in out.stdout and f"{config}/models.yaml" in out.stdout, out.stdout + out.stderr
    used = sy(home, "profiles", "use", "quiet", env=env)
    assert used.returncode == 0, used.stderr
    assert json.load(open(os.path.join(root, "profile.json"))) == {"config": config, "profile": "quiet"}
    assert "* quiet" in sy(home, "profiles", "list", env=env).stdout
    other = config_folder(home, "other-config", "models: {}\n")
    assert "*" not in sy(home, "profiles", "list", "--config", other, env=env).stdout


def test_a_wrong_method_is_405_with_allow(home):
    import httpx
    url, headers = home["url"], {"Authorization": f"Bearer {home['key']}"}
    r = httpx.get(url + "/v1/chat/completions", headers=headers, timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"]["code"] == "method_not_allowed"
    o = httpx.get(url + "/api/chat", headers=headers, timeout=30)
    assert o.status_code == 405 and o.headers["allow"] == "POST" and set(o.json()) == {"error"}
    d = httpx.put(url + "/v1/responses/resp_1", headers=headers, timeout=30)
    assert d.status_code == 405 and d.headers["allow"] == "GET, DELETE"
    assert httpx.get(url + "/v1/no-such-route", headers=headers, timeout=30).status_code == 404


def test_secrets_are_opened_only_when_a_provider_needs_one(home):
    env = {"SWITCHYARD_SECRETS_FILE": os.path.join(home["tmp"], "secrets.enc"),
           "SWITCHYARD_SECRET_KEY": sy(home, "secrets", "generate-key").stdout.strip()}
    assert sy(home, "secrets", "set", "UPSTREAM_KEY", input="sk-test", env=env).returncode == 0
    without_key = {"SWITCHYARD_SECRETS_FILE": env["SWITCHYARD_SECRETS_FILE"], "SWITCHYARD_SECRET_KEY": ""}
    plain = config_folder(home, "no-secret", "models:\n  tiny: { catalogue: smollm2 }\n")
    port = free_port()
    stop(serve(home["binary"], {**home["env"], **without_key}, port, os.path.join(home["tmp"], "plain.log"), "--config", plain))
    needs = config_folder(home, "needs-secret", "providers:\n  up: { type: openai-compatible, base_url: \"http://127.0.0.1:9/v1\", "
                                               "api_key_env: UPSTREAM_KEY }\nmodels:\n  far: { deployments: [up/m] }\n")
    out = serve_fails(home, "--config", needs, env=without_key)
    assert "UPSTREAM_KEY" in out.stderr and "secrets file" in out.stderr


def test_keys_create_warns_of_a_model_name_it_does_not_know(home):
    out = sy(home, "keys", "create", "--name", "typo", "--models", "smollm9")
    assert out.returncode == 0
    assert "no model here is named 'smollm9'; did you mean 'smollm2'?" in out.stderr


def test_pull_on_a_server_needs_its_admin_key(home):
    url = home["url"]
    user = sy(home, "pull", "smollm2", "--server", url, env={"SWITCHYARD_API_KEY": home["key"]})
    assert user.returncode == 1 and "needs the server's admin key" in user.stderr
    admin = sy(home, "pull", "smollm2", "--server", url, env={"SWITCHYARD_ADMIN_KEY": ADMIN})
    assert admin.returncode == 0 and "smollm2: success" in admin.stderr, admin.stderr


def test_ctrl_c_keeps_a_resumable_download(home, tmp_path):
    """Ctrl-C during a download whose hash the registry gives keeps what arrived; the next pull asks for the rest."""
    import hashlib
    import signal
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    payload = bytes((i * 7 + 3) % 251 for i in range(400_000))
    sha = hashlib.sha256(payload).hexdigest()
    ranges = []

    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path.startswith("/api/models/owner/repo/tree/main"):
                body = json.dumps([{"type": "file", "path": "slow-Q4_K_M.gguf", "size": len(payload),
                                    "lfs": {"oid": sha, "size": len(payload)}}]).encode()
                self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                self.wfile.write(body)
                return
            start = int(self.headers["Range"][len("bytes="):].rstrip("-")) if self.headers.get("Range") else 0
            ranges.append(start)
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
            self.send_header("Content-Length", str(len(payload) - start)); self.end_headers()
            try:
                for i in range(start, len(payload), 4096):   # slowly the first time, at once when resumed
                    self.wfile.write(payload[i:i + 4096]); self.wfile.flush()
                    if not start:
                        time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass

    hub = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    hub.daemon_threads = True
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    models = tmp_path / "models"
    env = {**home["env"], "SWITCHYARD_MODELS": str(models), "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_address[1]}"}
    try:
        proc = subprocess.Popen([home["binary"], "pull", "hf:owner/repo", "--quiet"], env=env, stderr=subprocess.PIPE, text=True)
        partial = models / ".slow-Q4_K_M.gguf.partial"
        deadline = time.time() + 30
        while (not partial.exists() or partial.stat().st_size < 40_000) and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "what arrived is kept; pull again to resume" in err, err
        kept = partial.stat().st_size
        assert 0 < kept < len(payload)
        again = subprocess.run([home["binary"], "pull", "hf:owner/repo", "--quiet"], env=env, capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 0, again.stderr
        assert (models / "slow-Q4_K_M.gguf").read_bytes() == payload and not partial.exists()
        assert ranges[-1] >= kept > 0, ranges
    finally:
        hub.shutdown()
