"""What the user docs quote about the program is what the program does.

A newcomer copies the control commands from README.md's topic table and installs the
client distribution on the strength of docs/CLIENTS.md and clients/README.md. Both were
found to disagree with the code: README wrote ``restore [file]`` (file optional) where the
service refuses a bare ``restore``, and the client docs named pydantic among the client's
dependencies, which ``clients/pyproject.toml`` does not have (and
``tests/structure/test_client_install.py`` forbids).
"""

from __future__ import annotations

import re
import tomllib

import pytest

from spikestream_client.codec.control import decode_control
from spikestream_client.codec.payloads import PayloadRejected
from tests.structure.imports import ROOT


def readme_control_commands() -> list[str]:
    """The commands README.md's topic table lists for ``<prefix>/<net>/control``."""
    row = next(
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `spikestream/<net>/control`")
    )
    # The commands come first; the parenthesis after them (formats, replies) names topics.
    commands = row.split("|")[3].split("(text, JSON", 1)[0]
    return re.findall(r"`([^`]+)`", commands)


def forms(command: str) -> list[str]:
    """Each concrete text a documented form stands for: ``learn on/off`` is two commands,
    ``snapshot [file]`` is ``snapshot`` and ``snapshot f.npz``."""
    if command.endswith(" on/off"):
        head = command.removesuffix(" on/off")
        return [f"{head} on", f"{head} off"]
    optional = re.fullmatch(r"(\w+) \[\w+\]", command)
    if optional:
        return [optional.group(1), f"{optional.group(1)} doc-example.npz"]
    return [command]


def test_the_readme_lists_the_control_commands() -> None:
    assert "pause" in readme_control_commands()


@pytest.mark.parametrize("command", readme_control_commands())
def test_every_control_command_the_readme_shows_is_accepted(command: str) -> None:
    refused = {}
    for text in forms(command):
        try:
            decode_control(text.encode())
        except PayloadRejected as exc:
            refused[text] = str(exc)
    assert refused == {}, f"README.md shows `{command}`, which the service refuses"


def client_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "clients" / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=~!\[ ;]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}


@pytest.mark.parametrize(
    ("doc", "anchor"),
    [("docs/CLIENTS.md", "none of the simulator's"), ("clients/README.md", "Dependencies:")],
)
def test_the_client_docs_list_the_client_dependencies(doc: str, anchor: str) -> None:
    text = " ".join((ROOT / doc).read_text().split())
    start = text.index(anchor) - 200 if anchor.startswith("none") else text.index(anchor)
    sentence = text[start : start + 300]
    named = {
        name
        for name in ("numpy", "msgpack", "pydantic", "aiomqtt", "paho-mqtt", "rich", "websockets")
        if re.search(rf"\b{re.escape(name)}\b", sentence)
    }
    assert named, f"no dependency list found in {doc}: {sentence!r}"
    assert named - client_dependencies() == set(), f"{doc} names non-dependencies: {sentence!r}"
