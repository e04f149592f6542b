"""The conformance matrix: every client surface × every kind of backend × {text, streamed text, tool round trip},
each surface driven by its official Python SDK, each cell a test of its own (ids such as
`anthropic-messages|anthropic-standin|tool-round-trip`); `conftest.py` prints the matrix at the end of the run.

Surfaces (on the gateway's one port):
  openai-chat         `openai`: chat.completions.create, and the chat.completions.stream helper
  openai-responses    `openai`: responses.create, the responses.stream helper, function_call_output with
                      previous_response_id
  anthropic-messages  `anthropic`: messages.create, and messages.stream with get_final_message()
  ollama              `ollama`: Client.chat, whole and stream=True

Backends (models of the gateway's models.yaml):
  local               `smollm2` on the gateway's own engine
  switchyard-upstream a second `switchyard serve` as an `openai-compatible` provider
  anthropic-standin   the Anthropic Messages stand-in (`conversational_standins.py`) as an `anthropic` provider
  ollama-standin      the Ollama stand-in as an `ollama` provider
  ollama-self         the gateway's own `ollama` provider pointed at the gateway's own Ollama surface (`smollm2`):
                      a round trip of Switchyard's two halves

What a cell checks:
  text            a whole answer: the surface's own "ended by itself" reason, non-empty text, token counts. smollm2
                  at temperature 0 must say exactly what the upstream Switchyard's OpenAI surface says for the same
                  conversation (same text, same counts), whatever the surface and route; the stand-ins' fixed text
                  must arrive unchanged, and the stand-in must have received the system prompt, the token limit and
                  the temperature.
  streamed-text   the SDK's streaming helper: the text arrives in several pieces, joins to the helper's final
                  message, and equals the whole answer (all backends here are deterministic), usage included.
  tool-round-trip tools offered, a call forced where the surface can force one and one call at a time asked for
                  where it can say so. Ollama's API can say neither: forcing a call behind it must be refused by
                  name (a 400, nothing sent upstream) and the model chooses; one call at a time must still hold.
                  The call comes back (name, JSON arguments valid for the schema, an id where the surface has ids),
                  the same when streamed; the result goes back in the surface's own format (OpenAI `role: tool`
                  with `tool_call_id`, Responses `function_call_output` with `previous_response_id`, Anthropic
                  `tool_result`, Ollama `role: tool` with `tool_name`) and a final text answer follows. The
                  stand-ins must have received the tool result naming the right call (Anthropic: the id; Ollama:
                  the tool's name), the assistant's call, the tools as the client sent them and the system prompt,
                  and their final text quotes the result. Through the upstream Switchyard, every answer must equal
                  the local engine's, token counts included.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from dataclasses import dataclass, field

import anthropic
import jsonschema
import ollama
import openai
import pytest
from openai import OpenAI

import conversational_standins as si
from conversational_standins import ConversationalStandIn
from support import free_port, serve, stop, switchyard_binary

SURFACES = ["openai-chat", "openai-responses", "anthropic-messages", "ollama"]
BACKENDS = ["local", "switchyard-upstream", "anthropic-standin", "ollama-standin", "ollama-self"]
MODES = ["text", "streamed-text", "tool-round-trip"]

# The gateway's model for each backend.
MODEL = {
    "local": "smollm2",
    "switchyard-upstream": "via-upstream",
    "anthropic-standin": "via-anthropic",
    "ollama-standin": "via-ollama",
    "ollama-self": "via-own-ollama",
}
ENGINE_BACKENDS = {"local", "switchyard-upstream", "ollama-self"}   # smollm2 answers, somewhere
OLLAMA_BACKENDS = {"ollama-standin", "ollama-self"}                  # behind Ollama's API, which has no tool_choice
ANTHROPIC_KEY = "sk-ant-conformance"
TIMEOUT = 120

SYSTEM = "Answer in one short sentence."
QUESTION = "What is the capital of France?"
TOOL_QUESTION = "What is the weather in Paris?"
TEXT_MAX = 24       # smollm2 ends its answer to QUESTION well before this
CALL_MAX = 96       # room for a call's JSON (two, on the Ollama surface, which cannot ask for one at a time)
FINAL_MAX = 48
# The answer to a tool result reached through Ollama's wire, which carries no call ids, is generated from a prompt
# that differs from the direct path's (the result is linked to a call id of the gateway's own making), so greedy
# smollm2 may write on to FINAL_MAX instead of ending: for that backend the final answer may end at the cap too.
CAPPED_FINAL_OK = {"via-own-ollama"}
TOOL_NAME = "get_weather"
TOOL_DESCRIPTION = "The current weather in a city."
SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
          "required": ["city"], "additionalProperties": False}
RESULT = json.dumps({"temperature_c": 18, "sky": "clear"})
# The ollama SDK sends a tool's parameters through its own typed model, as Ollama's API types them: only `type`,
# `properties` (each with `type`, `items`, `description`, `enum`), `required`, `items` and `$defs` survive; `maxLength`
# and `additionalProperties` never leave the client.
OLLAMA_SDK_SCHEMA = ollama.Tool.model_validate(
    {"type": "function", "function": {"name": TOOL_NAME, "parameters": SCHEMA}}
).model_dump(exclude_none=True, by_alias=True)["function"]["parameters"]


# MARK: what the drivers return


@dataclass
class Call:
    id: str | None
    name: str
    arguments: dict


@dataclass
class Answer:
    text: str
    calls: list[Call] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    pieces: int = 0   # text pieces a stream delivered

    def shape(self) -> tuple:
        """What must be equal between two deterministic answers (ids are made afresh for each answer)."""
        return self.text, [(c.name, c.arguments) for c in self.calls], self.prompt_tokens, self.completion_tokens


@dataclass
class RoundTrip:
    first: Answer            # the answer with the call(s)
    first_streamed: Answer   # the same request, streamed
    final: Answer            # the answer to the tool result(s)


def _tokens(value) -> int | None:
    return int(value) if value is not None else None


# MARK: one driver per surface, each through its official SDK


def _final(model: str, ended: str, capped: str, got: str) -> str:
    """The finish reason a final answer must have: `ended`, or for CAPPED_FINAL_OK backends `capped` as well."""
    return capped if model in CAPPED_FINAL_OK and got == capped else ended


class OpenAIChat:
    def __init__(self, url: str) -> None:
        self.client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)

    def _messages(self, question: str) -> list:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]

    @staticmethod
    def _answer(completion, expect_finish: str) -> Answer:
        assert completion.object == "chat.completion" and completion.id
        assert len(completion.choices) == 1
        choice = completion.choices[0]
        assert choice.finish_reason == expect_finish, choice
        assert choice.message.role == "assistant"
        calls = []
        for c in choice.message.tool_calls or []:
            assert c.type == "function" and c.id, c
            calls.append(Call(c.id, c.function.name, json.loads(c.function.arguments)))
        usage = completion.usage
        assert usage is not None, "no usage"
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        return Answer(choice.message.content or "", calls, _tokens(usage.prompt_tokens), _tokens(usage.completion_tokens))

    def text(self, model: str) -> Answer:
        r = self.client.chat.completions.create(model=model, messages=self._messages(QUESTION), max_tokens=TEXT_MAX,
                                                temperature=0)
        a = self._answer(r, "stop")
        assert a.calls == []
        return a

    def _stream(self, expect_finish: str, **kwargs) -> Answer:
        pieces = []
        with self.client.chat.completions.stream(stream_options={"include_usage": True}, **kwargs) as stream:
            for event in stream:
                if event.type == "content.delta":
                    pieces.append(event.delta)
            final = stream.get_final_completion()
        a = self._answer(final, expect_finish)
        assert "".join(pieces) == a.text, "the deltas do not join to the final message"
        a.pieces = len([p for p in pieces if p])
        return a

    def streamed(self, model: str) -> Answer:
        return self._stream("stop", model=model, messages=self._messages(QUESTION), max_tokens=TEXT_MAX, temperature=0)

    TOOLS = [{"type": "function", "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": SCHEMA}}]

    def forcing_refused(self, model: str) -> str:
        with pytest.raises(openai.BadRequestError) as e:
            self.client.chat.completions.create(model=model, messages=self._messages(TOOL_QUESTION), tools=self.TOOLS,
                                                tool_choice="required", temperature=0, max_tokens=CALL_MAX)
        return str(e.value)

    def tool_round_trip(self, model: str, force: bool) -> RoundTrip:
        tools = self.TOOLS
        messages = self._messages(TOOL_QUESTION)
        ask = dict(model=model, tools=tools, tool_choice="required" if force else "auto", parallel_tool_calls=False,
                   temperature=0, max_tokens=CALL_MAX)
        r = self.client.chat.completions.create(messages=messages, **ask)
        first = self._answer(r, "tool_calls")
        first_streamed = self._stream("tool_calls", messages=messages, **ask)
        messages.append(r.choices[0].message.model_dump(exclude_none=True))
        for call in first.calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": RESULT})
        r2 = self.client.chat.completions.create(model=model, messages=messages, tools=tools, tool_choice="auto",
                                                 parallel_tool_calls=False, temperature=0, max_tokens=FINAL_MAX)
        return RoundTrip(first, first_streamed, self._answer(r2, _final(model, "stop", "length", r2.choices[0].finish_reason)))


class OpenAIResponses:
    def __init__(self, url: str) -> None:
        self.client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)

    @staticmethod
    def _answer(response, capped_ok: bool = False) -> Answer:
        assert response.object == "response" and response.id
        ended = response.status == "completed" or (capped_ok and response.status == "incomplete"
                                                   and response.incomplete_details.reason == "max_output_tokens")
        assert ended, (response.status, response.incomplete_details)
        assert response.error is None
        calls, text = [], ""
        for item in response.output:
            if item.type == "message":
                assert item.role == "assistant"
                for part in item.content:
                    assert part.type == "output_text", part
                    text += part.text
            elif item.type == "function_call":
                assert item.call_id, item
                calls.append(Call(item.call_id, item.name, json.loads(item.arguments)))
            else:
                raise AssertionError(f"unexpected output item {item.type}")
        assert response.output_text == text
        usage = response.usage
        assert usage is not None, "no usage"
        assert usage.total_tokens == usage.input_tokens + usage.output_tokens
        return Answer(text, calls, _tokens(usage.input_tokens), _tokens(usage.output_tokens))

    def text(self, model: str) -> Answer:
        r = self.client.responses.create(model=model, instructions=SYSTEM, input=QUESTION, max_output_tokens=TEXT_MAX,
                                         temperature=0)
        a = self._answer(r)
        assert a.calls == []
        return a

    def _stream(self, **kwargs) -> Answer:
        pieces, kinds = [], []
        with self.client.responses.stream(**kwargs) as stream:
            for event in stream:
                kinds.append(event.type)
                if event.type == "response.output_text.delta":
                    pieces.append(event.delta)
            final = stream.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
        a = self._answer(final)
        assert "".join(pieces) == a.text, "the deltas do not join to the final response"
        a.pieces = len([p for p in pieces if p])
        return a

    def streamed(self, model: str) -> Answer:
        return self._stream(model=model, instructions=SYSTEM, input=QUESTION, max_output_tokens=TEXT_MAX, temperature=0)

    TOOLS = [{"type": "function", "name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": SCHEMA, "strict": False}]

    def forcing_refused(self, model: str) -> str:
        with pytest.raises(openai.BadRequestError) as e:
            self.client.responses.create(model=model, instructions=SYSTEM, input=TOOL_QUESTION, tools=self.TOOLS,
                                         tool_choice="required", temperature=0, max_output_tokens=CALL_MAX)
        return str(e.value)

    def tool_round_trip(self, model: str, force: bool) -> RoundTrip:
        tools = self.TOOLS
        ask = dict(model=model, instructions=SYSTEM, input=TOOL_QUESTION, tools=tools,
                   tool_choice="required" if force else "auto", parallel_tool_calls=False, temperature=0,
                   max_output_tokens=CALL_MAX)
        r = self.client.responses.create(**ask)
        first = self._answer(r)
        first_streamed = self._stream(**ask)
        # The conversation continues from the stored response: only the results are sent.
        r2 = self.client.responses.create(
            model=model, instructions=SYSTEM, previous_response_id=r.id, tools=tools, tool_choice="auto",
            parallel_tool_calls=False, temperature=0, max_output_tokens=FINAL_MAX,
            input=[{"type": "function_call_output", "call_id": c.id, "output": RESULT} for c in first.calls])
        assert r2.previous_response_id == r.id
        return RoundTrip(first, first_streamed, self._answer(r2, capped_ok=model in CAPPED_FINAL_OK))


class AnthropicMessages:
    def __init__(self, url: str) -> None:
        self.client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0, timeout=TIMEOUT)

    @staticmethod
    def _answer(message, expect_stop: str) -> Answer:
        assert message.type == "message" and message.role == "assistant" and message.id
        assert message.stop_reason == expect_stop, (message.stop_reason, message.content)
        text, calls = "", []
        for block in message.content:
            if block.type == "text":
                assert block.text, "an empty text block"
                text += block.text
            elif block.type == "tool_use":
                assert block.id and isinstance(block.input, dict), block
                calls.append(Call(block.id, block.name, block.input))
            else:
                raise AssertionError(f"unexpected block {block.type}")
        u = message.usage
        prompt = u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)
        return Answer(text, calls, prompt, _tokens(u.output_tokens))

    def text(self, model: str) -> Answer:
        m = self.client.messages.create(model=model, system=SYSTEM, messages=[{"role": "user", "content": QUESTION}],
                                        max_tokens=TEXT_MAX, temperature=0)
        a = self._answer(m, "end_turn")
        assert a.calls == []
        return a

    def _stream(self, expect_stop: str, **kwargs) -> Answer:
        pieces = []
        with self.client.messages.stream(**kwargs) as stream:
            for text in stream.text_stream:
                pieces.append(text)
            final = stream.get_final_message()
        a = self._answer(final, expect_stop)
        assert "".join(pieces) == a.text, "the text deltas do not join to the final message"
        a.pieces = len([p for p in pieces if p])
        return a

    def streamed(self, model: str) -> Answer:
        return self._stream("end_turn", model=model, system=SYSTEM, messages=[{"role": "user", "content": QUESTION}],
                            max_tokens=TEXT_MAX, temperature=0)

    TOOLS = [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": SCHEMA}]

    def forcing_refused(self, model: str) -> str:
        with pytest.raises(anthropic.BadRequestError) as e:
            self.client.messages.create(model=model, system=SYSTEM, messages=[{"role": "user", "content": TOOL_QUESTION}],
                                        tools=self.TOOLS, tool_choice={"type": "any"}, temperature=0, max_tokens=CALL_MAX)
        return str(e.value)

    def tool_round_trip(self, model: str, force: bool) -> RoundTrip:
        tools = self.TOOLS
        messages = [{"role": "user", "content": TOOL_QUESTION}]
        ask = dict(model=model, system=SYSTEM, tools=tools,
                   tool_choice={"type": "any" if force else "auto", "disable_parallel_tool_use": True},
                   temperature=0, max_tokens=CALL_MAX)
        m = self.client.messages.create(messages=messages, **ask)
        first = self._answer(m, "tool_use")
        first_streamed = self._stream("tool_use", messages=messages, **ask)
        messages.append({"role": "assistant", "content": m.content})
        messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": c.id, "content": RESULT}
                                                     for c in first.calls]})
        m2 = self.client.messages.create(model=model, system=SYSTEM, tools=tools, messages=messages, temperature=0,
                                         tool_choice={"type": "auto", "disable_parallel_tool_use": True},
                                         max_tokens=FINAL_MAX)
        return RoundTrip(first, first_streamed, self._answer(m2, _final(model, "end_turn", "max_tokens", m2.stop_reason)))


class Ollama:
    def __init__(self, url: str) -> None:
        self.client = ollama.Client(host=url, timeout=TIMEOUT)

    def _messages(self, question: str) -> list:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]

    @staticmethod
    def _calls(message) -> list[Call]:
        out = []
        for c in message.tool_calls or []:
            assert isinstance(c.function.arguments, dict), c   # Ollama sends arguments as an object
            out.append(Call(None, c.function.name, dict(c.function.arguments)))
        return out

    @staticmethod
    def _usage(r, a: Answer) -> Answer:
        assert r.done is True and r.done_reason == "stop", (r.done, r.done_reason)
        assert r.total_duration is not None and r.total_duration > 0
        a.prompt_tokens, a.completion_tokens = _tokens(r.prompt_eval_count), _tokens(r.eval_count)
        return a

    def _whole(self, model: str, messages: list, **kwargs) -> tuple:
        r = self.client.chat(model=model, messages=messages, stream=False, **kwargs)
        assert r.message.role == "assistant"
        return r, self._usage(r, Answer(r.message.content or "", self._calls(r.message)))

    def _stream(self, model: str, messages: list, **kwargs) -> Answer:
        parts = list(self.client.chat(model=model, messages=messages, stream=True, **kwargs))
        assert parts and all(not p.done for p in parts[:-1]), "a line before the last says done"
        pieces = [p.message.content for p in parts if p.message.content]
        calls = [c for p in parts for c in self._calls(p.message)]
        return self._usage(parts[-1], Answer("".join(pieces), calls, pieces=len(pieces)))

    def text(self, model: str) -> Answer:
        _, a = self._whole(model, self._messages(QUESTION), options={"temperature": 0, "num_predict": TEXT_MAX})
        assert a.calls == []
        return a

    def streamed(self, model: str) -> Answer:
        return self._stream(model, self._messages(QUESTION), options={"temperature": 0, "num_predict": TEXT_MAX})

    def tool_round_trip(self, model: str, force: bool) -> RoundTrip:
        # Ollama's API has no tool_choice and no parallel_tool_calls (`force` cannot be said here): the model decides,
        # and may call more than once.
        tools = [{"type": "function", "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": SCHEMA}}]
        messages = self._messages(TOOL_QUESTION)
        options = {"temperature": 0, "num_predict": CALL_MAX}
        r, first = self._whole(model, messages, tools=tools, options=options)
        assert first.calls, f"no tool call: {r.message}"
        first_streamed = self._stream(model, messages, tools=tools, options=options)
        messages.append(r.message)
        for call in first.calls:
            messages.append({"role": "tool", "content": RESULT, "tool_name": call.name})
        _, final = self._whole(model, messages, tools=tools, options={"temperature": 0, "num_predict": FINAL_MAX})
        return RoundTrip(first, first_streamed, final)


DRIVERS = {"openai-chat": OpenAIChat, "openai-responses": OpenAIResponses, "anthropic-messages": AnthropicMessages,
           "ollama": Ollama}


# MARK: the processes


@dataclass
class World:
    gateway: str
    upstream: str
    anthropic: ConversationalStandIn
    ollama: ConversationalStandIn
    reference: Answer                               # smollm2's answer to QUESTION, from the upstream directly
    drivers: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict)        # (surface, mode) -> the local engine's result

    def run(self, surface: str, backend: str, mode: str):
        driver = self.drivers[surface]
        model = MODEL[backend]
        if mode == "text":
            result = driver.text(model)
        elif mode == "streamed-text":
            result = (driver.text(model), driver.streamed(model))
        else:
            result = driver.tool_round_trip(model, force=backend not in OLLAMA_BACKENDS)
        if backend == "local":
            self.memo[(surface, mode)] = result
        return result

    def local(self, surface: str, mode: str):
        """The local engine's result for this surface and mode (made now if its own cell has not run)."""
        if (surface, mode) not in self.memo:
            self.run(surface, "local", mode)
        return self.memo[(surface, mode)]


@pytest.fixture(scope="module")
def world():
    binary = switchyard_binary()
    with tempfile.TemporaryDirectory() as tmp, ConversationalStandIn() as anthropic_standin, \
            ConversationalStandIn() as ollama_standin:
        up_port, gw_port = free_port(), free_port()
        config = os.path.join(tmp, "config")
        os.makedirs(config)
        with open(os.path.join(config, "models.yaml"), "w") as f:
            f.write(f"""
providers:
  upstream-switchyard: {{ type: openai-compatible, base_url: "http://127.0.0.1:{up_port}/v1" }}
  anthropic-standin: {{ type: anthropic, base_url: "{anthropic_standin.url}", api_key_env: CONFORMANCE_ANTHROPIC_KEY }}
  ollama-standin: {{ type: ollama, base_url: "{ollama_standin.url}" }}
  own-ollama: {{ type: ollama, base_url: "http://127.0.0.1:{gw_port}" }}
models:
  via-upstream: {{ provider: upstream-switchyard, model: smollm2 }}
  via-anthropic: {{ provider: anthropic-standin, model: claude-standin }}
  via-ollama: {{ provider: ollama-standin, model: "{si.MODEL_TAG}" }}
  via-own-ollama: {{ provider: own-ollama, model: smollm2 }}
""")
        base = dict(os.environ)
        for name in ("SWITCHYARD_REQUIRE_AUTH", "SWITCHYARD_CACHE", "SWITCHYARD_CONFIG"):
            base.pop(name, None)
        up_env = dict(base, SWITCHYARD_DATABASE=os.path.join(tmp, "up.sqlite"))
        gw_env = dict(base, SWITCHYARD_DATABASE=os.path.join(tmp, "gw.sqlite"), SWITCHYARD_CONFIG=config,
                      CONFORMANCE_ANTHROPIC_KEY=ANTHROPIC_KEY)
        procs = []
        try:
            procs.append(serve(binary, up_env, up_port, os.path.join(tmp, "upstream.log"), "--preload", "smollm2"))
            procs.append(serve(binary, gw_env, gw_port, os.path.join(tmp, "gateway.log"), "--preload", "smollm2"))
            upstream = f"http://127.0.0.1:{up_port}"
            # What smollm2 says to QUESTION, asked of the upstream's OpenAI surface directly: every route to smollm2,
            # through every surface, must say exactly this.
            reference = OpenAIChat(upstream).text("smollm2")
            w = World(f"http://127.0.0.1:{gw_port}", upstream, anthropic_standin, ollama_standin, reference)
            w.drivers = {name: cls(w.gateway) for name, cls in DRIVERS.items()}
            yield w
        finally:
            stop(*procs)


# MARK: the matrix

# How each surface asks for one call at a time (Ollama's API cannot).
ONE_CALL_AT_A_TIME = {"openai-chat": "parallel_tool_calls=false", "openai-responses": "parallel_tool_calls=false",
                      "anthropic-messages": "disable_parallel_tool_use"}

CELLS = [pytest.param(s, b, m, id=f"{s}|{b}|{m}") for s, b, m in itertools.product(SURFACES, BACKENDS, MODES)]


def _received(standin: ConversationalStandIn, path: str, mark: int) -> list[dict]:
    """The requests to `path` the stand-in received since `mark`."""
    return [r for r in standin.requests[mark:] if r["path"] == path]


def _text(content) -> str:
    """A message's text: a string, or the text of its text blocks."""
    if isinstance(content, str):
        return content
    return "".join(b["text"] for b in content if b.get("type") == "text")


def _check_standin_request(backend: str, record: dict, question: str, max_tokens: int, stream: bool) -> None:
    """What every request a stand-in received must carry: the model, the system prompt, the user's question, the
    limit, the temperature, the stream flag (and Anthropic's key and version headers)."""
    body, headers = record["body"], record["headers"]
    assert record["usage"] is not None, f"the stand-in refused the request: {body}"
    if backend == "anthropic-standin":
        assert body["model"] == "claude-standin"
        assert body["system"] == SYSTEM
        first = body["messages"][0]
        assert first["role"] == "user" and _text(first["content"]) == question, first
        assert body["max_tokens"] == max_tokens
        assert body["temperature"] == 0
        assert bool(body.get("stream")) is stream
        assert headers.get("x-api-key") == ANTHROPIC_KEY
        assert headers.get("anthropic-version") == "2023-06-01"
    else:
        assert body["model"] == si.MODEL_TAG
        assert body["messages"][0] == {"role": "system", "content": SYSTEM}
        assert body["messages"][1] == {"role": "user", "content": question}
        assert body["options"]["num_predict"] == max_tokens
        assert body["options"]["temperature"] == 0
        assert bool(body.get("stream", True)) is stream


def _check_usage_passed_on(backend: str, answer: Answer, record: dict) -> None:
    """The token counts the stand-in answered with reach the client unchanged."""
    sent = record["usage"]
    if backend == "anthropic-standin":
        assert (answer.prompt_tokens, answer.completion_tokens) == (sent["input_tokens"], sent["output_tokens"]), sent
    else:
        assert (answer.prompt_tokens, answer.completion_tokens) == (sent["prompt_eval_count"], sent["eval_count"]), sent


@pytest.mark.parametrize("surface, backend, mode", CELLS)
def test_conformance(world: World, surface: str, backend: str, mode: str):
    standin = world.anthropic if backend == "anthropic-standin" else world.ollama if backend == "ollama-standin" else None
    path = "/v1/messages" if backend == "anthropic-standin" else "/api/chat"
    mark = len(standin.requests) if standin else 0

    result = world.run(surface, backend, mode)
    refusal = None
    if mode == "tool-round-trip" and backend in OLLAMA_BACKENDS and surface != "ollama":
        # Forcing a call cannot be said to Ollama: refused by name, before anything is sent upstream.
        refusal = world.drivers[surface].forcing_refused(MODEL[backend])
    received = _received(standin, path, mark) if standin else []

    if mode in ("text", "streamed-text"):
        answers = [result] if mode == "text" else list(result)   # streamed-text: (whole, streamed)
        if standin:
            assert len(received) == len(answers), f"{len(received)} requests reached the stand-in, not {len(answers)}"
        for i, a in enumerate(answers):
            assert a.text.strip(), "empty text"
            assert a.calls == []
            assert a.prompt_tokens and a.prompt_tokens > 0, f"prompt tokens: {a.prompt_tokens}"
            assert a.completion_tokens and a.completion_tokens > 0, f"completion tokens: {a.completion_tokens}"
            if backend in ENGINE_BACKENDS:
                # Deterministic, and the same conversation whatever the surface and the route.
                assert a.shape() == world.reference.shape(), (a, world.reference)
            else:
                assert a.text == si.TEXT
                _check_standin_request(backend, received[i], QUESTION, TEXT_MAX, stream=i == 1)
                assert received[i]["body"].get("tools") is None
                _check_usage_passed_on(backend, a, received[i])
        if mode == "streamed-text":
            whole, streamed = answers
            assert streamed.shape() == whole.shape(), (streamed, whole)
            assert streamed.pieces >= 2, f"the text came in {streamed.pieces} piece(s): not streamed"
        return

    # Tool round trip.
    rt: RoundTrip = result
    if refusal is not None:
        assert "tool_choice" in refusal and "Ollama" in refusal, refusal
    for a in (rt.first, rt.first_streamed):
        assert a.calls, "no tool call"
        for call in a.calls:
            assert call.name == TOOL_NAME
            jsonschema.validate(call.arguments, SCHEMA)
            if surface != "ollama":
                assert call.id, "a call without an id"
    assert rt.first_streamed.shape() == rt.first.shape(), "the streamed call differs from the whole one"
    assert rt.final.calls == [], f"another call instead of an answer: {rt.final.calls}"
    assert rt.final.text.strip(), "no final text"
    assert rt.final.prompt_tokens and rt.final.prompt_tokens > 0
    assert rt.final.completion_tokens and rt.final.completion_tokens > 0

    if backend in ENGINE_BACKENDS:
        assert rt.first.text == "", f"text beside the call (call markup leaking?): {rt.first.text!r}"
        if backend == "switchyard-upstream":
            # One more hop changes nothing: the same prompts, so the same answers and the same counts.
            local: RoundTrip = world.local(surface, mode)
            for what, mine, theirs in (("the call", rt.first, local.first), ("the final answer", rt.final, local.final)):
                assert mine.shape()[:2] == theirs.shape()[:2], f"{what} through the upstream differs from the local engine's"
                assert mine.shape()[2:] == theirs.shape()[2:], \
                    f"{what}: token counts (prompt, completion) through the upstream {mine.shape()[2:]} differ from " \
                    f"the local engine's {theirs.shape()[2:]}: the upstream was not prompted as the local engine was"
        if surface in ONE_CALL_AT_A_TIME:
            assert len(rt.first.calls) == 1, \
                f"{ONE_CALL_AT_A_TIME[surface]} asked for one call at a time, yet {len(rt.first.calls)} calls came back: " \
                f"{rt.first.calls}"
        return

    # A stand-in: it answers with one call with CALL_ARGUMENTS, then quotes the result it received.
    assert [(c.name, c.arguments) for c in rt.first.calls] == [(TOOL_NAME, si.CALL_ARGUMENTS)]
    assert rt.final.text == si.RESULT_PREFIX + RESULT, "the stand-in did not receive the tool result"
    assert len(received) == 3, f"{len(received)} requests reached the stand-in (expected: call, streamed call, result)"
    for record, (limit, streaming) in zip(received, [(CALL_MAX, False), (CALL_MAX, True), (FINAL_MAX, False)]):
        _check_standin_request(backend, record, TOOL_QUESTION, limit, streaming)
    last = received[-1]["body"]
    schema = OLLAMA_SDK_SCHEMA if surface == "ollama" else SCHEMA   # the tool's schema as the client sent it
    if backend == "anthropic-standin":
        assert rt.first.text == si.PREAMBLE
        if surface != "ollama":   # the Ollama wire has no call ids: the stand-in's id cannot reach an Ollama client
            assert [c.id for c in rt.first.calls] == [si.ANTHROPIC_CALL_ID]
            # Asked for a call, one at a time.
            for record in received[:2]:
                assert record["body"].get("tool_choice") == {"type": "any", "disable_parallel_tool_use": True}
        for record in received:
            assert record["body"]["tools"] == [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": schema}]
        assistant, results = last["messages"][-2], last["messages"][-1]
        assert assistant["role"] == "assistant"
        assert [b for b in assistant["content"] if b["type"] == "text"] == [{"type": "text", "text": si.PREAMBLE}]
        uses = [b for b in assistant["content"] if b["type"] == "tool_use"]
        assert [(b["name"], b["input"]) for b in uses] == [(TOOL_NAME, si.CALL_ARGUMENTS)]
        # The call keeps the stand-in's id on every wire that has ids; an Ollama client has none to send back, so the
        # gateway names the call itself, and the result must name the same call.
        call_id = uses[0]["id"]
        if surface != "ollama":
            assert call_id == si.ANTHROPIC_CALL_ID
        assert results["role"] == "user"
        tool_results = [b for b in results["content"] if b["type"] == "tool_result"]
        assert len(tool_results) == 1, results
        assert tool_results[0]["tool_use_id"] == call_id
        content = tool_results[0]["content"]
        if isinstance(content, list):
            content = "".join(p["text"] for p in content)
        assert content == RESULT
    else:
        assert rt.first.text == ""
        for record in received:
            assert [t["function"]["name"] for t in record["body"]["tools"]] == [TOOL_NAME]
            assert record["body"]["tools"][0]["function"]["parameters"] == schema
            assert record["body"]["tools"][0]["function"]["description"] == TOOL_DESCRIPTION
        assistant, tool = last["messages"][-2], last["messages"][-1]
        assert assistant["role"] == "assistant"
        assert [(c["function"]["name"], c["function"]["arguments"]) for c in assistant["tool_calls"]] == \
            [(TOOL_NAME, si.CALL_ARGUMENTS)]
        assert tool["role"] == "tool" and tool["content"] == RESULT
        assert tool.get("tool_name") == TOOL_NAME, f"the tool result does not name its tool: {tool}"
