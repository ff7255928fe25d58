"""Every Python example in docs/ runs as written and prints what the guide says it prints.

An example's expected output is the ```text block that follows it, after at most one short
paragraph ending in a colon ("It prints:"). Lines are compared one by one, as doctest does
with ELLIPSIS: ``...`` in an expected line matches any text within that line (ids, hashes,
times). An example that prints must have such a block, except on the pages in
``OUTPUT_NOT_SHOWN``.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from .ports import drop_table, networked_place

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.S | re.M)
# Pages whose examples print without showing it yet (their output is not checked).
OUTPUT_NOT_SHOWN: set[str] = set()
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1 | doctest.DONT_ACCEPT_BLANKLINE


def lead_in(prose: str) -> bool:
    """Whether the text between an example and a ```text block introduces that block."""
    prose = prose.strip()
    return not prose or ("\n\n" not in prose and not prose.startswith("#") and prose.endswith(":"))


def examples(page: Path) -> list[tuple[str, str | None]]:
    """Each python block of the page, with the expected output that follows it, if any."""
    text = page.read_text(encoding="utf-8")
    blocks = list(FENCE.finditer(text))
    found: list[tuple[str, str | None]] = []
    for n, block in enumerate(blocks):
        after = blocks[n + 1] if n + 1 < len(blocks) else None
        if block.group(1) != "python":
            continue
        expected = None
        if (
            after is not None
            and after.group(1) == "text"
            and lead_in(text[block.end() : after.start()])
        ):
            expected = after.group(2)
        found.append((block.group(2), expected))
    return found


EXAMPLES = [
    pytest.param(code, expected, page.name, id=f"{page.name}:{n}")
    for page in sorted(DOCS.glob("*.md"))
    for n, (code, expected) in enumerate(examples(page))
]


def test_examples_found() -> None:
    """The parser sees the guides' examples, and some with their output."""
    assert len(EXAMPLES) >= 20
    assert sum(param.values[1] is not None for param in EXAMPLES) >= 15


@pytest.mark.parametrize(("code", "expected", "page"), EXAMPLES)
def test_example_runs(code: str, expected: str | None, page: str, tmp_path: Path) -> None:
    """The example exits 0 in a fresh folder with a fresh data folder, printing as shown."""
    env = {**os.environ, "SATCHEL_DATA": str(tmp_path / "data")}
    table = None
    if "SATCHEL_STORE" in code:  # an example on PostgreSQL: a table of its own
        env["SATCHEL_STORE"], _, table = networked_place()
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
        )
    finally:
        if table is not None:
            anyio.run(drop_table, table)
    assert result.returncode == 0, result.stderr
    got = result.stdout.splitlines()
    if expected is None:
        assert not got or page in OUTPUT_NOT_SHOWN, (
            "the example prints; show its output in a ```text block after it:\n" + result.stdout
        )
        return
    want = expected.splitlines()
    # A line that matches is shown as expected, so the assertion's diff shows only the others.
    shown = [
        w if CHECKER.check_output(w + "\n", g + "\n", FLAGS) else g
        for w, g in zip(want, got, strict=False)
    ]
    assert [*shown, *got[len(want) :]] == want
