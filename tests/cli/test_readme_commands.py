"""The shell commands in the READMEs run as written from the repository root.

A newcomer copies them into a shell that has no virtual environment activated, so a
command must name an executable that exists there: a path inside the repository (such as
``.venv/bin/spikestream``, created by ``.ci/setup``), or a system tool. Bare ``python``,
``pip`` or ``spikestream`` only work inside an activated venv and are refused. Every
argument that names a file of the repository must exist.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
READMES = [
    ROOT / "README.md",
    ROOT / "examples" / "loop" / "README.md",
    ROOT / "examples" / "bridges" / "README.md",
]
SYSTEM_TOOLS = {"make", "bash", "mosquitto_pub", "mosquitto_sub", "jq", "curl", "cd", "."}
NEEDS_A_VENV = {"python", "python3", "pip", "pip3", "spikestream"}
FILE_ARG = re.compile(r"^(examples|docs|bench|deploy|\.ci|\.venv)/")


def shell_commands(readme: Path) -> list[str]:
    """Each command line of the ```sh blocks (comments and trailing ``&`` removed)."""
    blocks = re.findall(r"```sh\n(.*?)```", readme.read_text(), re.S)
    lines = []
    for block in blocks:
        for raw in block.splitlines():
            line = raw.split(" #", 1)[0].strip().removesuffix("&").strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def problems(line: str) -> list[str]:
    words = shlex.split(line)
    out = []
    program = words[0]
    if program in NEEDS_A_VENV:
        out.append(f"{program!r} needs an activated venv; write .venv/bin/{program}")
    elif "/" in program:
        if not (ROOT / program).exists() and not program.startswith(".venv/"):
            out.append(f"{program!r} does not exist")
    elif program not in SYSTEM_TOOLS and shutil.which(program) is None:
        out.append(f"{program!r} is neither a file of the repository nor a known tool")
    if program.startswith(".venv/bin/") and program.removeprefix(".venv/bin/") not in (
        "python",
        "spikestream",
        "ruff",
        "mypy",
    ):
        out.append(f"{program!r} is not something .ci/setup installs")
    out += [
        f"{w!r} does not exist"
        for w in words[1:]
        if FILE_ARG.match(w) and not w.startswith(".venv/") and not (ROOT / w).exists()
    ]
    return out


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_commands_name_existing_files_and_executables(readme: Path) -> None:
    lines = shell_commands(readme)
    assert lines, f"no ```sh commands in {readme}"
    found = {line: problems(line) for line in lines}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_check_catches_what_a_newcomer_hit() -> None:
    assert problems("python examples/loop/plant.py --duration 3")
    assert problems("spikestream serve examples/seed.toml")
    assert problems(".venv/bin/python examples/loop/nosuch.py")
    assert problems(".venv/bin/spikestream serve examples/nosuch.toml")
    assert problems(".venv/bin/python examples/loop/plant.py --duration 3") == []
