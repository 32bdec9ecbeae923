"""The tests the docs name exist. docs/FAULTS.md gives each fault the test that injects
it, and other docs cite tests as evidence; a test renamed or moved left its citation
behind (two in FAULTS.md named test_engine.py for tests in test_streams.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.structure.imports import ROOT

DOCS = sorted(
    [
        *(ROOT / "docs").glob("*.md"),
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "deploy" / "README.md",
        ROOT / "bench" / "README.md",
    ]
)
# A test file, optionally with a test's name; or a name alone (`::test_x`), which belongs
# to the file named last before it on the same line.
_REFERENCE = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?|`::(\w+)`")


def references(text: str) -> list[tuple[str, str | None]]:
    """``(file, test name or None)`` for each test the text cites."""
    found: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        last: str | None = None
        for m in _REFERENCE.finditer(line):
            if m.group(1):
                last = m.group(1)
                found.append((last, m.group(2)))
            elif last is not None:
                found.append((last, m.group(3)))
    return found


def test_references_are_read_in_both_forms() -> None:
    text = "`tests/a/test_x.py::test_one`, `::test_two`; `tests/b.py`\nthen `::orphan`"
    assert references(text) == [
        ("tests/a/test_x.py", "test_one"),
        ("tests/a/test_x.py", "test_two"),
        ("tests/b.py", None),
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_test_a_doc_cites_exists(doc: Path) -> None:
    missing = []
    for file, name in references(doc.read_text()):
        path = ROOT / file
        if not path.is_file():
            missing.append(file)
        elif name is not None and not re.search(rf"def {name}\b", path.read_text()):
            missing.append(f"{file}::{name}")
    assert not missing, f"{doc.name} cites tests that do not exist: {sorted(set(missing))}"


def test_the_fault_tables_cite_tests() -> None:
    assert len(references((ROOT / "docs" / "FAULTS.md").read_text())) > 100
