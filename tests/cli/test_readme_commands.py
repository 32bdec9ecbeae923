"""The shell commands in the READMEs run as written from the repository root.

A newcomer copies them into a shell that has no virtual environment activated, so a
command must name an executable that exists there: a path inside the repository (such as
``.venv/bin/spikestream``, created by ``.ci/setup``), or a system tool. Bare ``python``,
``pip`` or ``spikestream`` only work inside an activated venv and are refused. Every
argument that names a file of the repository must exist.
"""

from __future__ import annotations

import contextlib
import io
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


#: Documents whose ``spikestream`` commands (bare or ``.venv/bin/``) must parse.
DOCUMENTED = [
    *READMES,
    ROOT / "docs" / "CLIENTS.md",
    ROOT / "docs" / "NENGO.md",
    ROOT / "docs" / "NETWORK_FILES.md",
    ROOT / "docs" / "PROTOCOL.md",
    ROOT / "deploy" / "README.md",
]


def fenced(text: str, tags: tuple[str, ...]) -> list[str]:
    """The bodies of the fenced blocks of ``text`` whose tag is one of ``tags`` (a fence
    opens and closes on a line of its own: a closing fence is never taken for an
    opening)."""
    blocks: list[str] = []
    body: list[str] = []
    tag: str | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if tag is None:
                tag, body = line[3:].strip(), []
            else:
                if tag in tags:
                    blocks.append("\n".join(body) + "\n")
                tag = None
        elif tag is not None:
            body.append(line)
    return blocks


def spikestream_commands(doc: Path) -> list[list[str]]:
    """The words after ``spikestream`` of each command in ``doc``'s shell blocks (any
    fence tag), one per command of a pipeline or list."""
    out = []
    for block in fenced(doc.read_text(), ("", "sh", "bash", "console", "shell", "text")):
        text = block.replace("\\\n", " ")
        for raw in text.splitlines():
            line = raw.split(" #", 1)[0].strip().removeprefix("$ ")
            for part in re.split(r"\s(?:\||&&|;|&)\s|\s&$", line):
                try:
                    words = shlex.split(part, comments=True)
                except ValueError:  # not a command: quoted output, say
                    continue
                while words and "=" in words[0] and not words[0].startswith("-"):
                    words = words[1:]  # VAR=value before the command
                # An error line quoted as output ("spikestream serve: error: ...") is not
                # a command.
                if (
                    words
                    and words[0] in ("spikestream", ".venv/bin/spikestream")
                    and not any(w.endswith(":") for w in words[1:3])
                ):
                    out.append(words[1:])
    return out


def parse_problem(words: list[str]) -> str | None:
    """argparse's complaint about ``spikestream WORDS``, or None."""
    from spikestream.cli import COMMANDS
    from spikestream_client.cli import make_parser, top_words

    command, _ = top_words(words)
    parser = make_parser(command, own=COMMANDS)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(words)
    except SystemExit as exit_info:
        if exit_info.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1]
    return None


@pytest.mark.parametrize("doc", DOCUMENTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_spikestream_commands_parse(doc: Path) -> None:
    """Every flag a document shows exists, with a value where it takes one: a renamed
    or removed flag fails here, not in a newcomer's shell."""
    found = spikestream_commands(doc)
    assert found, f"no spikestream command found in {doc}"
    refused = {shlex.join(w): p for w in found if (p := parse_problem(w)) is not None}
    assert refused == {}


def test_the_parse_check_catches_a_renamed_flag() -> None:
    assert parse_problem(["run", "examples/seed.toml", "--out", "x.npz"]) is None
    assert "--realtime" in (parse_problem(["serve", "x.toml", "--realtime"]) or "")
    assert spikestream_commands(ROOT / "README.md")
