"""The example clients run where only the client is installed (``pip install ./clients``,
docs/CLIENTS.md): they import nothing of the service. ``learn_error.py`` imported its
``CodecError`` from ``spikestream.errors`` and failed there at its first line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.structure.imports import ROOT

CLIENTS = sorted(
    p for p in (ROOT / "examples").rglob("*.py") if "spikestream_client" in p.read_text()
)


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            names.add(node.module)
    return names


def test_the_examples_include_the_client_scripts() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in CLIENTS}
    assert {"examples/learn_error.py", "examples/loop/plant.py"} <= names


@pytest.mark.parametrize("path", CLIENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_an_example_client_imports_nothing_of_the_service(path: Path) -> None:
    service = {m for m in _imported(path) if m == "spikestream" or m.startswith("spikestream.")}
    assert not service, f"{path.name} imports the service: {sorted(service)}"


@pytest.mark.parametrize("path", CLIENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_an_example_client_speaks_mqtt_through_the_client_library(path: Path) -> None:
    # The examples are what a user copies: each shows the library (reconnects, decoding,
    # TCP_NODELAY, counted refusals), not a second MQTT client of its own.
    mqtt = {m for m in _imported(path) if m.split(".")[0] in ("aiomqtt", "paho", "amqtt")}
    assert not mqtt, f"{path.name} imports an MQTT library itself: {sorted(mqtt)}"
    assert "spikestream_client" in _imported(path), f"{path.name} does not use the client"
