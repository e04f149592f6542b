"""Structured output from local models through the official `openai` SDK: `response_format` (`json_object`,
`json_schema`) and the `grammar` extension field (GBNF) on `POST /v1/chat/completions`.

Run through `Tests/clients/run.sh PATH_TO_SWITCHYARD_BINARY`, which starts the server and sets SWITCHYARD_URL.
Needs the models `smollm2` and `gemma3-270m` pulled (`make test` pulls both; run.sh pulls smollm2 only).

The models are tiny, so nothing here checks what an answer says: only that its shape is the one asked for. Every
answer under a schema must `json.loads` and validate with the `jsonschema` package (format checks included); an answer
cut off by `max_tokens` in a test that gives room enough is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Annotated, Literal, Optional

import jsonschema
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel, Field

SMOLLM = "smollm2"
GEMMA = "gemma3-270m"
LOCAL_MODELS = [SMOLLM, GEMMA]

# The formats the server constrains; the format checker must know every one of them, or a bad date would pass.
FORMATS = ["date", "time", "date-time", "uuid", "email", "ipv4"]


# ---------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------------------------


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"{name} is not set: run these tests through Tests/clients/run.sh PATH_TO_SWITCHYARD_BINARY")
    return value


@pytest.fixture(scope="module")
def base_url() -> str:
    return _env("SWITCHYARD_URL").rstrip("/")


@pytest.fixture(scope="module")
def client(base_url: str):
    # max_retries=0: errors must surface as the server sent them.
    c = OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=300, max_retries=0)
    missing = sorted(set(LOCAL_MODELS) - {m.id for m in c.models.list()})
    if missing:
        c.close()
        pytest.fail(f"models not in /v1/models: {missing} (pull them: switchyard pull NAME)")
    yield c
    c.close()


def user(prompt: str) -> list[dict]:
    return [{"role": "user", "content": prompt}]


def schema_format(schema: dict, name: str = "answer") -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    # The draft's own checker: the catch-all jsonschema.FormatChecker() checks "time" by draft 3's rule (no offset).
    return jsonschema.Draft202012Validator(for_validation(schema),
                                           format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def for_validation(schema):
    """`schema` as standard JSON Schema: OpenAPI's `nullable: true` (which the server honours and jsonschema ignores)
    becomes `anyOf: [..., {"type": "null"}]`."""
    if isinstance(schema, list):
        return [for_validation(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: for_validation(v) if k not in ("enum", "const", "examples", "default") else v
           for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") is True:
        defs = {k: out.pop(k) for k in ("$defs", "definitions") if k in out}
        return {**defs, "anyOf": [out, {"type": "null"}]}
    return out


def validation_errors(schema: dict, text: str) -> list[str]:
    """Why `text` is not one JSON value that validates against `schema` (empty when it is)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return [f"not JSON ({e})"]
    return [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator(schema).iter_errors(value)]


def error_message(exc: openai.APIStatusError) -> str:
    """The `message` of the OpenAI-style error object the server sent."""
    body = exc.body
    assert isinstance(body, dict) and isinstance(body.get("message"), str), (
        f"status {exc.status_code} without an OpenAI-style error object: {exc.response.text!r}")
    assert exc.response.json()["error"]["type"] == "invalid_request_error", exc.response.text
    return body["message"]


def with_retries(call, attempts: int = 5):
    """`call()`, again after the server's Retry-After while it answers 429 or 503."""
    for attempt in range(attempts):
        try:
            return call()
        except openai.APIStatusError as e:
            if e.status_code not in (429, 503) or attempt == attempts - 1:
                raise
            time.sleep(min(max(float(e.response.headers.get("retry-after", "1")), 0.0), 30.0))
    raise AssertionError("unreachable")


def test_format_checker_knows_the_formats():
    # Without rfc3339-validator, jsonschema skips date-time and time silently: make that a failure here.
    missing = [f for f in FORMATS if f not in jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers]
    assert not missing, f"jsonschema cannot check the formats {missing}: install Tests/clients/requirements.txt"
    v = validator({"type": "string", "format": "date-time"})
    assert not v.is_valid("2024-01-02 nonsense") and v.is_valid("2024-01-02T03:04:05Z")
    t = validator({"type": "string", "format": "time"})
    assert t.is_valid("12:34:56.5+01:00") and not t.is_valid("24:00:00Z")
    assert validator({"type": "string", "nullable": True}).is_valid(None)
    assert not validator({"type": "string"}).is_valid(None)


# ---------------------------------------------------------------------------------------------------------------
# 1. The SDK's parse() with Pydantic models, on both local models
# ---------------------------------------------------------------------------------------------------------------


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    name: str
    age: int
    address: Address


# Lists and some strings are bounded (Pydantic's constraints reach the schema): unbounded, the small models repeat
# list items and digits until max_tokens.
class Recipe(BaseModel):
    title: str = Field(max_length=40)
    ingredients: list[Annotated[str, Field(max_length=20)]] = Field(min_length=1, max_length=4)
    minutes: int = Field(ge=1, le=120)


class Color(str, Enum):
    red = "red"
    green = "green"
    blue = "blue"


class Ticket(BaseModel):
    summary: str
    priority: Literal["low", "medium", "high"]
    color: Color


class Contact(BaseModel):
    name: str
    email: Optional[str]
    phone: Optional[str] = Field(default=None, max_length=20)


PARSE_CASES = [
    (Person, "Invent a person with a name, an age and a street address. Answer in JSON."),
    (Recipe, "Give a short pancake recipe: a title, at most four ingredients and the minutes it takes. "
             "Answer in JSON."),
    (Ticket, "File a support ticket about a broken printer with a priority and a colour. Answer in JSON."),
    (Contact, "Give the contact details of a person called Ann. Answer in JSON."),
]


@pytest.mark.parametrize("model", LOCAL_MODELS)
@pytest.mark.parametrize("schema_model,prompt", PARSE_CASES, ids=[c[0].__name__ for c in PARSE_CASES])
def test_sdk_parse_pydantic(client: OpenAI, model: str, schema_model: type[BaseModel], prompt: str):
    r = client.chat.completions.parse(model=model, messages=user(prompt), response_format=schema_model,
                                      temperature=0, max_tokens=300)
    choice = r.choices[0]
    content = choice.message.content
    assert choice.finish_reason == "stop", f"{model}: finish_reason {choice.finish_reason!r}, content {content!r}"
    assert isinstance(choice.message.parsed, schema_model), (
        f"{model}: parsed {choice.message.parsed!r} from {content!r}")
    # What parse() read is exactly one JSON value, with nothing after it.
    assert schema_model.model_validate_json(content) == choice.message.parsed
    assert r.usage.completion_tokens <= 300


# ---------------------------------------------------------------------------------------------------------------
# 2. Generated JSON Schemas: every answer validates
# ---------------------------------------------------------------------------------------------------------------

# SWITCHYARD_TEST_SCHEMAS lowers the count for a quick local run; `make test` uses 200.
GENERATED_SCHEMAS = int(os.environ.get("SWITCHYARD_TEST_SCHEMAS", "200"))
GENERATED_MAX_TOKENS = 200
WORKERS = 6

KEYS = ["name", "id", "count", "color", "tags", "x", "size", "ok", "value", "kind", "note", "when",
        "first name", "a-b", "ключ", 'q"uote', "n_2", "Émile"]
ENUM_STRINGS = ["red", "green", "blue", "", 'say "hi"', "back\\slash", "tab\there", "line\nbreak", "ünï", "🎉 party",
                "x", "xy", "xyz"]
# Bounded repetitions only: under `\d+` a tiny model writes digits until max_tokens.
PATTERNS = [r"^[a-z]{2,6}$", r"^\d{3}-\d{4}$", r"^(red|green|blue)$", r"^[A-Z][a-z]{1,8}$", r"^#[0-9a-f]{6}$",
            r"^v\d{1,2}\.\d{1,2}$", r"^(?:ab){1,3}c?$", r"^[^\s]{1,5}$", r"^\w{1,4}@\w{1,4}$", r"^a.{0,3}z$", "[0-9]"]
ANNOTATIONS = {"title": "A title", "description": "What this is.", "$comment": "ignored",
               "examples": ["whatever"], "deprecated": False}


class SchemaGenerator:
    """Random JSON Schemas within the supported keywords, with bounded answers: at most 4 properties, containers
    nested 2 deep, at most 3 array items, strings of at most 12 characters (or enums, formats, patterns).

    Left out, each with a test of its own below: recursive `$ref`s (under greedy decoding the small models nest
    until max_tokens) and `format: email` (its grammar allows 380 characters, which they fill with digits)."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def schema(self) -> dict:
        self.defs: dict[str, dict] = {}
        self.defs_key = self.r.choice(["$defs", "definitions"])
        kind = self.r.random()
        if kind < 0.7:
            top = self.obj(0)
        elif kind < 0.85:
            top = self.array(0)
        else:
            top = self.value(1)
        if self.defs:
            top = {**top, self.defs_key: self.defs}
        if self.r.random() < 0.2:
            top = {"$schema": "https://json-schema.org/draft/2020-12/schema", **top}
        return top

    def annotate(self, s: dict) -> dict:
        if self.r.random() < 0.15:
            k = self.r.choice(list(ANNOTATIONS))
            s = {**s, k: ANNOTATIONS[k]}
        return s

    def value(self, depth: int) -> dict:
        """Any schema at `depth` (0 = the top): containers while depth < 2, else a leaf."""
        r = self.r.random()
        if depth < 2:
            if r < 0.15:
                return self.obj(depth)
            if r < 0.27:
                return self.array(depth)
            if r < 0.35:
                return self.union(depth, self.r.choice(["anyOf", "oneOf"]))
            if r < 0.39:
                return {"allOf": [self.value(depth)]}
            if r < 0.45:
                return self.ref(depth)
        return self.leaf()

    def obj(self, depth: int) -> dict:
        keys = self.r.sample(KEYS, self.r.randint(1, 4))
        props = {k: self.value(depth + 1) for k in keys}
        p = self.r.random()
        required = keys if p < 0.6 else [k for k in keys if self.r.random() < 0.5]
        s: dict = {"type": "object", "properties": props}
        if required:
            s["required"] = required
        a = self.r.random()
        if a < 0.5:
            s["additionalProperties"] = False
        elif a < 0.6:
            s["additionalProperties"] = True
        elif a < 0.65:
            s["additionalProperties"] = {"type": "integer"}
        if self.r.random() < 0.1:
            del s["type"]   # inferred from `properties`
        return self.annotate(s)

    def array(self, depth: int) -> dict:
        if self.r.random() < 0.2:
            items = [self.leaf() for _ in range(self.r.randint(1, 3))]
            s = {"type": "array", "prefixItems": items}
            if self.r.random() < 0.5:
                s["items"] = False
            if self.r.random() < 0.3:
                s["minItems"] = self.r.randint(0, len(items))
            return self.annotate(s)
        hi = self.r.randint(1, 3)
        s = {"type": "array", "items": self.value(depth + 1), "maxItems": hi}
        if self.r.random() < 0.5:
            s["minItems"] = self.r.randint(0, hi)
        return self.annotate(s)

    def union(self, depth: int, key: str) -> dict:
        # Branches of different JSON types never overlap (integer and number do: never both), so oneOf holds too.
        makers = {
            "string": lambda: self.r.choice([self.short_string, self.string_enum, self.string_format])(),
            "integer": self.integer,
            "boolean": lambda: {"type": "boolean"},
            "null": lambda: {"type": "null"},
            "object": lambda: self.obj(depth) if depth < 2 else {"type": "object", "properties": {"k": self.integer()},
                                                                   "required": ["k"], "additionalProperties": False},
            "array": lambda: {"type": "array", "items": self.leaf(), "maxItems": 2},
        }
        kinds = self.r.sample(list(makers), self.r.randint(2, 3))
        return self.annotate({key: [makers[k]() for k in kinds]})

    def ref(self, depth: int) -> dict:
        if self.defs and self.r.random() < 0.3:
            name = self.r.choice(list(self.defs))
        else:
            name = f"Def{len(self.defs)}"
            self.defs[name] = {}   # reserved: a nested ref must not take the name
            self.defs[name] = self.value(depth)
        return {"$ref": f"#/{self.defs_key}/{name}"}

    # leaves

    def leaf(self) -> dict:
        makers = [self.short_string, self.short_string, self.string_enum, self.string_format, self.pattern,
                  self.integer, self.integer, self.number, lambda: {"type": "boolean"}, lambda: {"type": "null"},
                  self.const, self.mixed_enum, self.type_list, self.nullable]
        return self.annotate(self.r.choice(makers)())

    def short_string(self) -> dict:
        hi = self.r.randint(1, 12)
        s = {"type": "string", "maxLength": hi}
        if self.r.random() < 0.4:
            s["minLength"] = self.r.randint(0, hi)
        return s

    def string_enum(self) -> dict:
        s = {"enum": self.r.sample(ENUM_STRINGS, self.r.randint(1, 4))}
        if self.r.random() < 0.7:
            s["type"] = "string"
        return s

    def string_format(self) -> dict:
        return {"type": "string", "format": self.r.choice([f for f in FORMATS if f != "email"])}

    def pattern(self) -> dict:
        return {"type": "string", "pattern": self.r.choice(PATTERNS)}

    def integer(self) -> dict:
        lo = self.r.randint(-50, 50)
        hi = lo + self.r.randint(2, 100)
        s: dict = {"type": "integer"}
        shape = self.r.randint(0, 4)
        if shape == 0:
            s.update(minimum=lo, maximum=hi)
        elif shape == 1:
            s.update(exclusiveMinimum=lo, exclusiveMaximum=hi)
        elif shape == 2:
            s.update(minimum=lo, exclusiveMaximum=hi)
        elif shape == 3:
            s.update(minimum=lo - 0.5, maximum=hi + 0.5)
        else:
            s.update(minimum=0, maximum=self.r.randint(0, 9))
        return s

    def number(self) -> dict:
        lo = self.r.randint(-20, 20) + self.r.choice([0, 0.5])
        hi = lo + self.r.randint(2, 40)
        s: dict = {"type": "number"}
        if self.r.random() < 0.5:
            s.update(minimum=lo, maximum=hi)
        else:
            s.update(exclusiveMinimum=lo, exclusiveMaximum=hi)
        return s

    def const(self) -> dict:
        return {"const": self.r.choice(["fixed", 42, -1.5, True, None, [1, "two"], {"k": "v", "n": [0]}, "é\"\\"])}

    def mixed_enum(self) -> dict:
        return {"enum": self.r.sample(["a", 1, 2.5, None, False, "b c", [1], {"x": 1}], self.r.randint(2, 4))}

    def type_list(self) -> dict:
        return self.r.choice([
            {"type": ["integer", "null"], "minimum": 1, "maximum": 20},
            {"type": ["string", "null"], "maxLength": 6},
            {"type": ["boolean", "string"], "maxLength": 3},
            {"type": ["number", "boolean"], "minimum": 0, "maximum": 5},
        ])

    def nullable(self) -> dict:
        return {**self.r.choice([self.short_string, self.integer, self.string_enum])(), "nullable": True}


def generated_schemas(n: int, seed: int = 20240611) -> list[dict]:
    gen = SchemaGenerator(seed)
    out = [gen.schema() for _ in range(n)]
    for s in out:
        jsonschema.Draft202012Validator.check_schema(for_validation(s))
    return out


def test_schema_generator_is_deterministic_and_varied():
    a, b = generated_schemas(GENERATED_SCHEMAS), generated_schemas(GENERATED_SCHEMAS)
    assert a == b, "the schema generator must give the same schemas for the same seed"
    text = json.dumps(a)
    for keyword in ["properties", "required", "additionalProperties", "enum", "const", "items", "prefixItems",
                    "minItems", "maxItems", "anyOf", "oneOf", "allOf", "$ref", "minLength", "maxLength", "pattern",
                    "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "nullable", "$defs",
                    "definitions", "title", "description", "$schema", "date-time", "uuid", "ipv4", "time"]:
        assert f'"{keyword}"' in text, f"no generated schema uses {keyword}"
    assert len({json.dumps(s, sort_keys=True) for s in a}) >= GENERATED_SCHEMAS * 0.95, "too many duplicates"


def test_generated_schemas_validate(base_url: str, client: OpenAI):
    schemas = generated_schemas(GENERATED_SCHEMAS)
    c = OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=300, max_retries=0)

    def one(i: int):
        schema = schemas[i]
        prompt = f"Answer with one JSON value that matches this JSON Schema:\n{json.dumps(schema, ensure_ascii=False)}"
        started = time.monotonic()
        try:
            r = with_retries(lambda: c.chat.completions.create(
                model=SMOLLM, messages=user(prompt), temperature=0, seed=i, max_tokens=GENERATED_MAX_TOKENS,
                response_format=schema_format(schema, f"schema_{i}")))
        except openai.APIStatusError as e:
            return i, f"HTTP {e.status_code}: {e.response.text}", None, time.monotonic() - started, 0
        content = r.choices[0].message.content or ""
        problems = []
        if r.choices[0].finish_reason != "stop":
            problems.append(f"finish_reason {r.choices[0].finish_reason!r}")
        problems += validation_errors(schema, content)
        return i, "; ".join(problems), content, time.monotonic() - started, r.usage.completion_tokens

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = list(pool.map(one, range(len(schemas))))
    finally:
        c.close()
    elapsed = time.monotonic() - started
    tokens = sum(r[4] for r in results)
    slowest = max(results, key=lambda r: r[3])
    print(f"\n{len(schemas)} generated schemas against {SMOLLM} in {elapsed:.1f} s ({WORKERS} workers, "
          f"{tokens} completion tokens; slowest request {slowest[3]:.1f} s, schema #{slowest[0]})")
    failures = [r for r in results if r[1]]
    report = "\n\n".join(f"schema #{i}: {why}\n  schema:  {json.dumps(schemas[i], ensure_ascii=False)}\n"
                         f"  content: {content!r}" for i, why, content, _, _ in failures)
    assert not failures, f"{len(failures)} of {len(schemas)} answers are not valid:\n\n{report}"


# ---------------------------------------------------------------------------------------------------------------
# 3. json_object
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [
    "Describe a cat as JSON.",
    "Give the title and author of a book in JSON.",
    "List three colours as a JSON list.",
])
def test_json_object(client: OpenAI, prompt: str):
    r = client.chat.completions.create(model=SMOLLM, messages=user(prompt), temperature=0, max_tokens=300,
                                       response_format={"type": "json_object"})
    content = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop", f"finish_reason {r.choices[0].finish_reason!r}: {content!r}"
    value = json.loads(content)   # raises on trailing text
    assert isinstance(value, dict), f"json_object answered {type(value).__name__}: {content!r}"


# ---------------------------------------------------------------------------------------------------------------
# 4. GBNF grammars
# ---------------------------------------------------------------------------------------------------------------

GRAMMARS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "reference", "grammars")


@pytest.mark.parametrize("model", LOCAL_MODELS)
def test_grammar_yes_no(client: OpenAI, model: str):
    for prompt in ["Is the sky blue?", "Is fire cold?", "Write a poem about the sea."]:
        r = client.chat.completions.create(model=model, messages=user(prompt), temperature=0, max_tokens=10,
                                           extra_body={"grammar": 'root ::= ("yes" | "no")'})
        assert r.choices[0].message.content in ("yes", "no"), f"{model}, {prompt!r}: {r.choices[0].message.content!r}"
        assert r.choices[0].finish_reason == "stop"


def test_grammar_pattern(client: OpenAI):
    grammar = 'root ::= [A-Z] [a-z]{2,8} " is " [0-9]{1,2} " years old."'
    r = client.chat.completions.create(model=SMOLLM, messages=user("How old is Tom?"), temperature=0, max_tokens=30,
                                       extra_body={"grammar": grammar})
    content = r.choices[0].message.content
    assert re.fullmatch(r"[A-Z][a-z]{2,8} is [0-9]{1,2} years old\.", content), repr(content)
    assert r.choices[0].finish_reason == "stop"


def test_grammar_llama_cpp_json(client: OpenAI):
    # llama.cpp's own json.gbnf: its root is an object.
    with open(os.path.join(GRAMMARS, "json.gbnf")) as f:
        grammar = f.read()
    r = client.chat.completions.create(model=SMOLLM, messages=user("Give the title and author of a book in JSON."),
                                       temperature=0, max_tokens=200, extra_body={"grammar": grammar})
    content = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop", f"finish_reason {r.choices[0].finish_reason!r}: {content!r}"
    assert isinstance(json.loads(content), dict), repr(content)


def test_grammar_streaming(client: OpenAI):
    grammar = 'root ::= "- " [a-z]{1,10} ("\\n- " [a-z]{1,10}){1,2}'
    stream = client.chat.completions.create(model=SMOLLM, messages=user("Name some fruits."), temperature=0,
                                            max_tokens=40, stream=True, extra_body={"grammar": grammar})
    chunks = [c for c in stream if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert re.fullmatch(r"- [a-z]{1,10}(\n- [a-z]{1,10}){1,2}", text), repr(text)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("grammar,expect", [
    ("root ::= undefined-rule", "undefined-rule"),
    ('root ::= "a"\nroot ::= "b"', "root"),
    ('item ::= "a"', "root"),
    ('root ::= "a" (', "line 1"),
])
def test_bad_grammar(client: OpenAI, grammar: str, expect: str):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=SMOLLM, messages=user("Hi"), max_tokens=5,
                                       extra_body={"grammar": grammar})
    message = error_message(info.value)
    assert expect in message, f"the message should mention {expect!r}: {message!r}"


def test_grammar_must_be_a_string(client: OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=SMOLLM, messages=user("Hi"), max_tokens=5, extra_body={"grammar": 42})
    assert "grammar" in error_message(info.value)


# ---------------------------------------------------------------------------------------------------------------
# 5. Refused schemas
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema,keyword", [
    ({"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 3}}, "required": ["n"]}, "multipleOf"),
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems"),
    ({"type": "object", "patternProperties": {"^x": {"type": "string"}}}, "patternProperties"),
    ({"not": {"type": "string"}}, "not"),
    ({"allOf": [{"type": "object"}, {"required": ["a"]}]}, "allOf"),
    ({"type": "string", "format": "hostname"}, "hostname"),
])
def test_unsupported_schema_keyword(client: OpenAI, schema: dict, keyword: str):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=SMOLLM, messages=user("Hi"), max_tokens=20,
                                       response_format=schema_format(schema))
    message = error_message(info.value)
    assert keyword in message, f"the message should name {keyword!r}: {message!r}"
    assert "not supported" in message, message


def test_unsupported_keyword_message_names_the_place(client: OpenAI):
    schema = {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 3}}, "required": ["n"]}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=SMOLLM, messages=user("Hi"), max_tokens=20,
                                       response_format=schema_format(schema))
    assert "'multipleOf' at $.properties.n is not supported" in error_message(info.value)


@pytest.mark.parametrize("response_format,param", [
    ({"type": "yaml"}, "response_format"),
    ({"type": "json_schema"}, "json_schema"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "schema"),
])
def test_malformed_response_format(client: OpenAI, response_format: dict, param: str):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=SMOLLM, messages=user("Hi"), max_tokens=5,
                                       response_format=response_format)
    assert param in error_message(info.value)


# ---------------------------------------------------------------------------------------------------------------
# 6. Cut off by max_tokens
# ---------------------------------------------------------------------------------------------------------------

LONG_OBJECT = {
    "type": "object",
    "properties": {k: {"type": "string", "minLength": 12, "maxLength": 12}
                   for k in ("first", "second", "third", "fourth")},
    "required": ["first", "second", "third", "fourth"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_max_tokens_mid_structure_is_length(client: OpenAI, stream: bool):
    kwargs = dict(model=SMOLLM, messages=user("Fill in the form."), temperature=0, max_tokens=3,
                  response_format=schema_format(LONG_OBJECT))
    if stream:
        chunks = [c for c in client.chat.completions.create(stream=True, **kwargs) if c.choices]
        content = "".join(c.choices[0].delta.content or "" for c in chunks)
        finish = chunks[-1].choices[0].finish_reason
    else:
        r = client.chat.completions.create(**kwargs)
        content, finish = r.choices[0].message.content or "", r.choices[0].finish_reason
        assert r.usage.completion_tokens == 3, r.usage
    assert finish == "length", f"finish_reason {finish!r} for {content!r}"
    assert content.lstrip().startswith("{"), repr(content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


# ---------------------------------------------------------------------------------------------------------------
# 7. Streaming under a schema
# ---------------------------------------------------------------------------------------------------------------

STREAM_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 12},
        "population": {"type": "integer", "minimum": 0, "maximum": 100000000},
        "founded": {"type": "string", "format": "date"},
        "districts": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 1, "maxItems": 3},
        "capital": {"type": "boolean"},
    },
    "required": ["city", "population", "founded", "districts", "capital"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("model", LOCAL_MODELS)
def test_streaming_json_schema(client: OpenAI, model: str):
    kwargs = dict(model=model, messages=user("Describe Paris as JSON."), temperature=0, max_tokens=200,
                  response_format=schema_format(STREAM_SCHEMA, "city"))
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    with_choices = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert len([c for c in with_choices if c.choices[0].delta.content]) >= 2, "the answer came in one piece"
    finish = with_choices[-1].choices[0].finish_reason
    assert finish == "stop", f"{finish!r}: {text!r}"
    errors = validation_errors(STREAM_SCHEMA, text)
    assert not errors, f"{errors}: {text!r}"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 200
    # Greedy: the same answer as without streaming.
    whole = client.chat.completions.create(**kwargs)
    assert whole.choices[0].message.content == text


# ---------------------------------------------------------------------------------------------------------------
# Fixed schemas worth a test of their own
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", LOCAL_MODELS)
def test_schema_in_message_order_and_exact_keys(client: OpenAI, model: str):
    schema = {"type": "object",
              "properties": {"zeta": {"type": "integer", "minimum": 1, "maximum": 5},
                             "alpha": {"enum": ["up", "down"]},
                             "mid": {"type": ["boolean", "null"]}},
              "required": ["zeta", "alpha", "mid"], "additionalProperties": False}
    r = client.chat.completions.create(model=model, messages=user("Answer in JSON."), temperature=0, max_tokens=60,
                                       response_format=schema_format(schema))
    content = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop", repr(content)
    assert not validation_errors(schema, content), repr(content)
    assert list(json.loads(content)) == ["zeta", "alpha", "mid"], f"keys not in the schema's order: {content!r}"


def test_number_bounds_between_integers(client: OpenAI):
    # The only numbers allowed lie strictly between two integers.
    schema = {"type": "object", "properties": {"p": {"type": "number", "minimum": 0.25, "maximum": 0.75}},
              "required": ["p"], "additionalProperties": False}
    r = client.chat.completions.create(model=SMOLLM, messages=user("Give a probability as JSON."), temperature=0,
                                       max_tokens=40, response_format=schema_format(schema))
    content = r.choices[0].message.content
    assert not validation_errors(schema, content), repr(content)


@pytest.mark.parametrize("model", LOCAL_MODELS)
@pytest.mark.parametrize("prompt", [
    "Ann Lee's email address is ann.lee@example.com. Give her contact as JSON.",
    "What is the contact of Bob (bob@mail.org)? Answer in JSON.",
    "Invent a contact with an email address. Answer in JSON.",
])
def test_email_format(client: OpenAI, model: str, prompt: str):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "email": {"type": "string", "format": "email"}},
              "required": ["name", "email"], "additionalProperties": False}
    r = client.chat.completions.create(model=model, messages=user(prompt), temperature=0, max_tokens=200,
                                       response_format=schema_format(schema))
    content = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop", repr(content)
    assert not validation_errors(schema, content), repr(content)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._+-]*@[A-Za-z0-9][A-Za-z0-9-]*(\.[A-Za-z0-9][A-Za-z0-9-]*)+",
                        json.loads(content)["email"]), repr(content)


EXPRESSION = {"$defs": {"expr": {"anyOf": [
    {"type": "integer", "minimum": 0, "maximum": 99},
    {"type": "object", "properties": {"op": {"enum": ["+", "*"]},
                                      "args": {"type": "array", "items": {"$ref": "#/$defs/expr"},
                                               "minItems": 2, "maxItems": 2}},
     "required": ["op", "args"], "additionalProperties": False}]}},
    "$ref": "#/$defs/expr"}
THREAD = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 12},
                                           "replies": {"type": "array", "items": {"$ref": "#"}, "maxItems": 3}},
          "required": ["text", "replies"], "additionalProperties": False}
PAIRS = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9},
                   {"type": "array", "items": {"$ref": "#"}, "minItems": 2, "maxItems": 2}]}


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


# Prompts under which the models close the recursion by themselves (often they nest until max_tokens instead).
@pytest.mark.parametrize("model,schema,prompt,min_depth", [
    (SMOLLM, EXPRESSION, "Write 1 + 2 * 3 as a JSON expression tree matching this schema:\n{schema}", 2),
    (SMOLLM, PAIRS, "A comment thread: a comment with two replies that have no replies, as JSON matching this "
                    "schema:\n{schema}", 1),
    (GEMMA, THREAD, "Answer with one JSON value that matches this JSON Schema:\n{schema}", 3),
], ids=["defs-expression", "root-pairs", "root-thread"])
def test_recursive_schema(client: OpenAI, model: str, schema: dict, prompt: str, min_depth: int):
    r = client.chat.completions.create(model=model, messages=user(prompt.format(schema=json.dumps(schema))),
                                       temperature=0, seed=1, max_tokens=200, response_format=schema_format(schema))
    content = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop", repr(content)
    assert not validation_errors(schema, content), repr(content)
    assert depth(json.loads(content)) >= min_depth, f"no recursion taken: {content!r}"


def test_number_exclusive_bound_holds_as_a_double(client: OpenAI):
    # Every JSON client reads numbers as doubles: 13.0000000000000001 is 13.0 there, which exclusiveMinimum 13 refuses.
    schema = {"type": "object",
              "properties": {"kind": {"type": "number", "exclusiveMinimum": 13, "exclusiveMaximum": 32}},
              "required": ["kind"], "additionalProperties": True}
    prompt = f"Answer with one JSON value that matches this JSON Schema:\n{json.dumps(schema)}"
    r = client.chat.completions.create(model=SMOLLM, messages=user(prompt), temperature=0, seed=24, max_tokens=200,
                                       response_format=schema_format(schema, "schema_24"))
    content = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop", repr(content)
    kind = json.loads(content)["kind"]
    assert 13 < kind < 32, f"{content!r} reads as {kind!r}"
