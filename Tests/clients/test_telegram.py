"""The Telegram bot, end to end: a real server with a bot in its registry, updates posted to its webhook as Telegram
posts them, and the replies read from a local stand-in of the Bot API (`telegram_standin.py`, which checks the HTML
markup and the 4,096-character limit as Telegram does).

Covered: the secret token (missing, wrong), an answered message with "typing…" first and the reply threaded to the
message, the chat's memory kept as a session, the commands (/start, /help, /model, /reset), the allow-list, the
per-chat rate limit, a duplicate update handled once, Telegram's 429 `retry_after` honoured, a reply over 4,096
characters split and its markup escaped, and `switchyard telegram set-webhook`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time

import httpx
import pytest
from support import free_port, serve, stop, switchyard_binary
from telegram_standin import BotAPI

TOKEN = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz"
SECRET = "s3cret-token_for-the-webhook"
CHATS = [1001, 1002, 1003, 1004, 1005]


@pytest.fixture(scope="module")
def bot():
    binary = switchyard_binary()
    api = BotAPI(TOKEN)
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "config")
        os.mkdir(config)
        with open(os.path.join(config, "models.yaml"), "w") as f:
            f.write(f"""telegram:
  helper:
    token_env: TG_HELPER_TOKEN
    secret_token_env: TG_HELPER_SECRET
    model: smollm2
    system: Answer in one short sentence.
    allowed_chats: [{", ".join(map(str, CHATS))}]
    requests_per_minute: 60
    max_tokens: 24
    api_base: {api.url}
  strict:
    token_env: TG_HELPER_TOKEN
    secret_token_env: TG_HELPER_SECRET
    model: smollm2
    requests_per_minute: 2
    api_base: {api.url}
""")
        env = dict(os.environ, SWITCHYARD_DATABASE=os.path.join(tmp, "db.sqlite"), SWITCHYARD_CONFIG=config,
                   TG_HELPER_TOKEN=TOKEN, TG_HELPER_SECRET=SECRET)
        env.pop("SWITCHYARD_REQUIRE_AUTH", None)
        port = free_port()
        proc = serve(binary, env, port, os.path.join(tmp, "serve.log"))
        try:
            yield {"url": f"http://127.0.0.1:{port}", "api": api, "binary": binary, "env": env, "next_update": [1]}
        finally:
            stop(proc)
            api.close()


def post(bot, update: dict, secret: str | None = SECRET, name: str = "helper") -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return httpx.post(f"{bot['url']}/api/v1/webhooks/telegram/{name}", json=update, headers=headers, timeout=30)


def message(bot, chat: int, text: str, update_id: int | None = None) -> dict:
    if update_id is None:
        bot["next_update"][0] += 1
        update_id = bot["next_update"][0]
    return {"update_id": update_id, "message": {"message_id": update_id * 10, "date": int(time.time()),
                                                "chat": {"id": chat, "type": "private"},
                                                "from": {"id": chat, "is_bot": False, "first_name": "Ada"}, "text": text}}


def say(bot, chat: int, text: str, update_id: int | None = None, name: str = "helper") -> dict:
    update = message(bot, chat, text, update_id)
    r = post(bot, update, name=name)
    assert r.status_code == 200, r.text
    return update


def replies(bot, chat: int, count: int, timeout: float = 120) -> list[dict]:
    """Waits until `count` messages were delivered to `chat`; returns them all."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sent = bot["api"].sent(chat)
        if len(sent) >= count:
            return sent
        time.sleep(0.1)
    pytest.fail(f"chat {chat} got {len(bot['api'].sent(chat))} messages, not {count}: {bot['api'].sent(chat)}")


def session_id(chat: int) -> str:
    digest = hashlib.sha256(f"switchyard-session\0\0telegram:helper:{chat}".encode()).hexdigest()
    return "conv_" + digest[:40]


def test_the_webhook_needs_the_secret_token(bot):
    update = message(bot, 1001, "hello")
    assert post(bot, update, secret=None).status_code == 401
    wrong = post(bot, update, secret="not-the-secret")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_secret_token"
    assert post(bot, update, name="nobody").status_code == 404
    bad = httpx.post(f"{bot['url']}/api/v1/webhooks/telegram/helper", content=b"[1, 2",
                     headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}, timeout=30)
    assert bad.status_code == 400
    time.sleep(0.5)
    assert bot["api"].sent(1001) == [], "nothing refused was answered"


def test_a_message_is_answered_threaded_after_typing_and_remembered(bot):
    first = say(bot, 1001, "My name is Ada.")
    [reply] = replies(bot, 1001, 1)
    assert reply["body"]["parse_mode"] == "HTML" and reply["text"].strip()
    assert reply["body"]["reply_parameters"]["message_id"] == first["message"]["message_id"]
    typing = bot["api"].calls_to("sendChatAction", 1001)
    assert typing and typing[0]["body"]["action"] == "typing" and typing[0]["at"] <= reply["at"]
    say(bot, 1001, "What is my name?")
    replies(bot, 1001, 2)
    items = httpx.get(f"{bot['url']}/v1/conversations/{session_id(1001)}/items", params={"order": "asc"}, timeout=30).json()["data"]
    # The system prompt once (not again each turn), then both turns.
    assert [i["role"] for i in items] == ["system", "user", "assistant", "user", "assistant"], items
    assert items[1]["content"][0]["text"] == "My name is Ada." and items[3]["content"][0]["text"] == "What is my name?"


def test_commands(bot):
    chat = 1002
    say(bot, chat, "/start")
    assert "Hello" in replies(bot, chat, 1)[-1]["text"] and "/reset" in replies(bot, chat, 1)[-1]["text"]
    say(bot, chat, "/model@helper_bot")
    assert replies(bot, chat, 2)[-1]["text"] == "This chat uses smollm2."
    say(bot, chat, "/model no-such-model")
    assert replies(bot, chat, 3)[-1]["text"].startswith("There is no model no-such-model here. Models: ")
    say(bot, chat, "/model gemma3-270m")
    assert replies(bot, chat, 4)[-1]["text"] == "This chat now uses gemma3-270m."
    say(bot, chat, "Hi!")
    replies(bot, chat, 5)
    usage = httpx.get(f"{bot['url']}/api/v1/usage", params={"model": "gemma3-270m"}, timeout=30).json()
    assert usage["totals"]["requests"] >= 1, "the turn after /model went to the chosen model"
    say(bot, chat, "/reset")
    assert replies(bot, chat, 6)[-1]["text"] == "I forgot our conversation."
    items = httpx.get(f"{bot['url']}/v1/conversations/{session_id(chat)}/items", timeout=30).json()["data"]
    assert items == [], "the conversation is forgotten"
    say(bot, chat, "/model")
    assert replies(bot, chat, 7)[-1]["text"] == "This chat uses gemma3-270m.", "the chosen model outlives /reset"


def test_chats_outside_the_allow_list_are_ignored_and_a_duplicate_update_is_handled_once(bot):
    say(bot, 4242, "/help")                      # not in allowed_chats
    update = say(bot, 1003, "/help")
    say(bot, 1003, "/help", update_id=update["update_id"])   # Telegram delivering it again
    replies(bot, 1003, 1)
    time.sleep(1.0)
    assert len(bot["api"].sent(1003)) == 1
    assert bot["api"].calls_to("sendMessage", 4242) == []


def test_each_chat_is_held_to_its_rate_and_told_once(bot):
    for _ in range(5):
        say(bot, 77, "/help", name="strict")     # two a minute
    sent = replies(bot, 77, 3)
    time.sleep(1.0)
    texts = [m["text"] for m in bot["api"].sent(77)]
    assert len(texts) == 3 and texts[2].startswith("Too many messages: at most 2 a minute here. Try again in "), texts
    say(bot, 78, "/help", name="strict")         # another chat has its own bucket
    replies(bot, 78, 1)
    assert sent[0]["text"] == sent[1]["text"]


def test_a_429_is_retried_after_retry_after(bot):
    bot["api"].fail_next("sendMessage", 429, "Too Many Requests: retry after 1", {"retry_after": 1})
    say(bot, 1004, "/help")
    [delivered] = replies(bot, 1004, 1)
    attempts = bot["api"].calls_to("sendMessage", 1004)
    assert len(attempts) == 2 and not attempts[0]["ok"] and attempts[1]["ok"]
    assert attempts[1]["at"] - attempts[0]["at"] >= 1.0, "retried only after retry_after"
    assert "/reset" in delivered["text"]


def test_a_long_reply_is_split_and_its_markup_escaped(bot):
    name = "<b>&x</b>" * 700                      # 6,300 characters the model did not write: the bot's own reply quotes it
    say(bot, 1005, f"/model {name}")
    sent = replies(bot, 1005, 2)
    time.sleep(1.0)
    assert len(bot["api"].sent(1005)) == 2 and all(len(m["text"]) <= 4096 for m in sent)
    assert "".join(m["text"] for m in sent).startswith(f"There is no model {name} here. Models: ")
    assert sent[1]["body"].get("reply_parameters") is None, "only the first piece replies to the message"


def test_set_webhook_registers_the_url_and_the_secret(bot):
    url = bot["url"] + "/api/v1/webhooks/telegram/helper"
    out = subprocess.run([bot["binary"], "telegram", "set-webhook", "helper", "--url", url, "--drop-pending-updates"],
                         env=bot["env"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [call] = bot["api"].calls_to("setWebhook")
    assert call["body"] == {"url": url, "secret_token": SECRET, "allowed_updates": ["message"], "drop_pending_updates": True}
    unknown = subprocess.run([bot["binary"], "telegram", "set-webhook", "nobody", "--url", url], env=bot["env"],
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "no bot 'nobody'" in unknown.stderr and "helper" in unknown.stderr


def test_a_message_without_text_is_answered_in_private_and_ignored_in_a_group(bot):
    sticker = message(bot, 1005, "")
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {"file_id": "x", "width": 512, "height": 512}
    assert post(bot, sticker).status_code == 200
    joined = message(bot, -500, "")
    del joined["message"]["text"]
    joined["message"]["chat"] = {"id": -500, "type": "group", "title": "Team"}
    joined["message"]["new_chat_members"] = [{"id": 9, "is_bot": False, "first_name": "Bo"}]
    assert post(bot, joined, name="strict").status_code == 200
    deadline = time.time() + 30
    while time.time() < deadline and not any(m["text"] == "I read text messages only." for m in bot["api"].sent(1005)):
        time.sleep(0.1)
    assert any(m["text"] == "I read text messages only." for m in bot["api"].sent(1005))
    time.sleep(0.5)
    assert bot["api"].calls_to("sendMessage", -500) == [], "a group's service message is not answered"
