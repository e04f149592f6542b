"""`switchyard template render` against Python Jinja2's renderings in Tests/Fixtures/reference/chat-templates.json.

Every template of the reference, one conversation each way (with and without the generation prompt), is rendered
through the command line from files, exactly as a user debugging a model's prompt would; the output must be
byte-identical, and the cases Jinja2 refused must fail with a non-zero status and a message naming a line.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REFERENCE = Path(os.environ.get("SWITCHYARD_REFERENCE", Path(__file__).resolve().parents[1] / "Fixtures" / "reference"))
ENTRIES = json.loads((REFERENCE / "chat-templates.json").read_text())


def render(tmp_path: Path, entry: dict, case: dict) -> subprocess.CompletedProcess:
    conversation = entry["conversations"][case["case"]]
    context = {k: v for k, v in entry["context_defaults"].items() if k != "strftime_now"}
    context.update(conversation)
    context["add_generation_prompt"] = case["add_generation_prompt"]
    template, ctx = tmp_path / "template.jinja", tmp_path / "context.json"
    template.write_text(entry["template"])
    ctx.write_text(json.dumps(context, ensure_ascii=False))
    return subprocess.run([os.environ["SWITCHYARD_BIN"], "template", "render", "--template", str(template),
                           "--context", str(ctx), "--now", "2026-01-15T10:30:00"], capture_output=True, timeout=60)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["template_name"] for e in ENTRIES])
def test_template_render_matches_jinja2(tmp_path, entry):
    cases = [c for c in entry["cases"] if c["case"] == "multi_turn"] or entry["cases"][:2]
    for case in cases:
        result = render(tmp_path, entry, case)
        if "expected" in case:
            assert result.returncode == 0, result.stderr.decode()
            assert result.stdout.decode() == case["expected"], f"{case['case']} agp={case['add_generation_prompt']}"
        else:
            assert result.returncode != 0
            assert result.stderr.decode().strip(), "an error case must say why"


def test_template_errors_are_refused(tmp_path):
    failing = [(e, c) for e in ENTRIES for c in e["cases"] if "error" in c]
    assert failing, "the reference has error cases"
    for entry, case in failing[:5]:
        result = render(tmp_path, entry, case)
        assert result.returncode != 0, f"{entry['template_name']} {case['case']} rendered instead of failing"
        assert b"line" in result.stderr
