"""A local stand-in for the Telegram Bot API (no internet here), speaking its documented shapes
(https://core.telegram.org/bots/api): `POST /bot<TOKEN>/<method>` with a JSON body, answered
`{"ok": true, "result": …}` or `{"ok": false, "error_code", "description", "parameters"?}`.

It records every call, refuses a wrong token (401), and checks `sendMessage` as Telegram does: with `parse_mode: HTML`
only Telegram's tags, properly nested, and `&`, `<`, `>` escaped ("can't parse entities" otherwise), and at most 4,096
characters of text once the markup is read ("message is too long"). Tests can queue failures for a method (a 429 with
`retry_after`, say).
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji", "code", "pre",
        "blockquote"}
TAG = re.compile(r"<(/?)([a-zA-Z-]+)((?:\s+[a-z-]+=\"[^\"<>]*\")*)\s*>")
ENTITY = re.compile(r"&(amp|lt|gt|quot|#\d+|#x[0-9a-fA-F]+);")


def parse_html(text: str) -> str:
    """The text Telegram reads from `text` in HTML mode; raises ValueError as Telegram refuses bad markup."""
    out, stack, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "<":
            m = TAG.match(text, i)
            if not m or m.group(2) not in TAGS:
                raise ValueError(f"Bad Request: can't parse entities: unsupported start tag at byte offset {i}")
            closing, name = m.group(1) == "/", m.group(2)
            if closing:
                if not stack or stack[-1] != name:
                    raise ValueError(f"Bad Request: can't parse entities: can't find end tag corresponding to start tag {name}")
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif c == "&":
            m = ENTITY.match(text, i)
            if not m:
                raise ValueError(f"Bad Request: can't parse entities: character '&' is reserved at byte offset {i}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        elif c == ">":
            raise ValueError(f"Bad Request: can't parse entities: character '>' is reserved at byte offset {i}")
        else:
            out.append(c)
            i += 1
    if stack:
        raise ValueError(f"Bad Request: can't parse entities: can't find end tag corresponding to start tag {stack[-1]}")
    return "".join(out)


class BotAPI:
    def __init__(self, token: str):
        self.token = token
        self.calls: list[dict] = []          # {"method", "body", "at", "ok"}
        self.failures: dict[str, list[dict]] = {}
        self.lock = threading.Lock()
        self.next_message_id = 1000
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer = api.handle(self.path, raw)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()

    def fail_next(self, method: str, code: int, description: str, parameters: dict | None = None):
        with self.lock:
            self.failures.setdefault(method, []).append({"code": code, "description": description, "parameters": parameters})

    def handle(self, path: str, raw: bytes) -> tuple[int, dict]:
        m = re.fullmatch(r"/bot([^/]+)/(\w+)", path)
        if not m:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if m.group(1) != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = m.group(2)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: invalid JSON"}
        call = {"method": method, "body": body, "at": time.monotonic(), "ok": False}
        with self.lock:
            self.calls.append(call)
            queued = self.failures.get(method) or []
            failure = queued.pop(0) if queued else None
        if failure:
            answer = {"ok": False, "error_code": failure["code"], "description": failure["description"]}
            if failure["parameters"]:
                answer["parameters"] = failure["parameters"]
            return failure["code"], answer
        if method == "sendMessage":
            text = body.get("text", "")
            if body.get("parse_mode") == "HTML":
                try:
                    text = parse_html(text)
                except ValueError as e:
                    return 400, {"ok": False, "error_code": 400, "description": str(e)}
            if not text.strip():
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
            if len(text) > 4096:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
            call["text"] = text
            with self.lock:
                self.next_message_id += 1
                message_id = self.next_message_id
            call["ok"] = True
            return 200, {"ok": True, "result": {"message_id": message_id, "date": int(time.time()),
                                                "chat": {"id": body.get("chat_id"), "type": "private"}, "text": text}}
        call["ok"] = True
        return 200, {"ok": True, "result": True}

    def sent(self, chat_id: int) -> list[dict]:
        """The messages delivered to `chat_id`, in order."""
        with self.lock:
            return [c for c in self.calls if c["method"] == "sendMessage" and c["ok"] and c["body"].get("chat_id") == chat_id]

    def calls_to(self, method: str, chat_id: int | None = None) -> list[dict]:
        with self.lock:
            return [c for c in self.calls if c["method"] == method and (chat_id is None or c["body"].get("chat_id") == chat_id)]
