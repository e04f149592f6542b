"""Shared pytest hooks for the client tests: the conformance matrix (`test_conformance.py`) printed as a table of
PASS / FAIL per cell at the end of the run, whatever the verbosity."""

from __future__ import annotations

import re

# (surface, backend, mode) -> "PASS" | "FAIL" | "SKIP", in the order the cells ran.
_CELLS: dict[tuple[str, str, str], str] = {}
_CELL_ID = re.compile(r"test_conformance\.py::test_conformance\[([^|\]]+)\|([^|\]]+)\|([^|\]]+)\]$")


def pytest_runtest_logreport(report):
    m = _CELL_ID.search(report.nodeid)
    if not m or report.when == "teardown":
        return
    cell = m.groups()
    if report.failed:
        _CELLS[cell] = "FAIL"        # in the test, or in its setup (the processes did not start)
    elif report.skipped:
        _CELLS[cell] = "SKIP"
    elif report.when == "call":
        _CELLS[cell] = "PASS"


def _ordered(values) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def pytest_terminal_summary(terminalreporter):
    if not _CELLS:
        return
    surfaces = _ordered(s for s, _, _ in _CELLS)
    backends = _ordered(b for _, b, _ in _CELLS)
    modes = _ordered(m for _, _, m in _CELLS)
    rows = [(s, m) for s in surfaces for m in modes if any((s, b, m) in _CELLS for b in backends)]
    first = max(len(f"{s} / {m}") for s, m in rows)
    widths = [max(len(b), 4) for b in backends]
    tr = terminalreporter
    tr.write_sep("=", "conformance matrix (surface / mode × backend)")
    tr.write_line(" " * first + " | " + " | ".join(b.ljust(w) for b, w in zip(backends, widths)))
    tr.write_line("-" * first + "-+-" + "-+-".join("-" * w for w in widths))
    for s, m in rows:
        cells = [_CELLS.get((s, b, m), "-").ljust(w) for b, w in zip(backends, widths)]
        tr.write_line(f"{s} / {m}".ljust(first) + " | " + " | ".join(cells))
    counts = {k: list(_CELLS.values()).count(k) for k in ("PASS", "FAIL", "SKIP")}
    tr.write_line(f"{len(_CELLS)} cells: {counts['PASS']} PASS, {counts['FAIL']} FAIL" +
                  (f", {counts['SKIP']} SKIP" if counts["SKIP"] else ""))
