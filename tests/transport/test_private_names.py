"""The private aiomqtt/paho names the transport relies on still exist, and only
``transport/aiomqtt_adapter.py`` may use them (or import aiomqtt/paho at all).

A patch release of aiomqtt or paho-mqtt may rename a private attribute; these tests
turn that into a failure naming the attribute, the installed versions and the versions
the adapter was verified with, instead of a link that silently stops noticing lost
connections.
"""

from __future__ import annotations

import ast
import asyncio
import collections
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
import pytest

from spikestream_client.transport import aiomqtt_adapter
from spikestream_client.transport.private_names import (
    PRIVATE_NAMES,
    VERIFIED_WITH,
    PrivateName,
)
from tests.structure.imports import ROOT, imports, modules

ADAPTER = Path(aiomqtt_adapter.__file__).resolve()
_CHECKED_OWNERS = {"aiomqtt.Client", "paho.Client", "paho._WebsocketWrapper"}


def _installed() -> dict[str, str]:
    return {name: version(name) for name in VERIFIED_WITH}


def _broken(entry: PrivateName, problem: str) -> str:
    installed = ", ".join(f"{k} {v}" for k, v in _installed().items())
    verified = ", ".join(f"{k} {v}" for k, v in VERIFIED_WITH.items())
    return (
        f"{entry.owner}.{entry.name} {problem} in the installed {installed}; "
        f"transport/aiomqtt_adapter.py was verified with {verified} and uses it for: "
        f"{entry.why}. Adapt the adapter (and VERIFIED_WITH and the pyproject pins)."
    )


async def _live_instances() -> dict[str, object]:
    """An aiomqtt client (never connected) and the paho client it made."""
    client = aiomqtt.Client("127.0.0.1", 1)
    mqtt = vars(client).get("_client")
    return {"aiomqtt.Client": client, "paho.Client": mqtt}


@pytest.mark.parametrize("entry", PRIVATE_NAMES, ids=lambda e: f"{e.owner}.{e.name}")
async def test_private_name_exists_with_the_expected_shape(entry: PrivateName) -> None:
    assert entry.owner in _CHECKED_OWNERS, f"no check for owner {entry.owner!r}: add one"
    if entry.owner == "paho._WebsocketWrapper":
        # Cannot be built without a WebSocket handshake: read its constructor instead.
        wrapper = getattr(paho, "_WebsocketWrapper", None)
        assert wrapper is not None, _broken(entry, "(the class itself) is missing")
        init = inspect.getsource(wrapper.__init__)
        assert f"self.{entry.name} = socket" in init, _broken(entry, "is no longer set")
        return
    instances = await _live_instances()
    owner = instances[entry.owner]
    assert owner is not None, _broken(entry, "has no paho client to check")
    assert hasattr(owner, entry.name), _broken(entry, "is missing")
    value = getattr(owner, entry.name)
    if entry.kind == "future":
        assert isinstance(value, asyncio.Future), _broken(entry, "is no asyncio.Future")
    elif entry.kind == "method":
        assert callable(value), _broken(entry, "is not callable")
        params = tuple(inspect.signature(value).parameters)
        assert params == entry.params, _broken(entry, f"takes {params} instead of {entry.params}")
    elif entry.name == "_client":
        assert isinstance(value, paho.Client), _broken(entry, "is no paho Client")
    elif entry.name == "_ping_t":
        assert isinstance(value, int | float), _broken(entry, "is no number")
    elif entry.name == "_out_packet":
        assert isinstance(value, collections.deque), _broken(entry, "is no deque")
        # The adapter reads these keys of the packets in it (written by _packet_queue).
        source = inspect.getsource(paho.Client._packet_queue)
        for key in ('"command": command', '"mid": mid', '"pos": 0'):
            assert key in source, _broken(entry, f"holds packets without {key}")
    elif entry.name == "_in_packet":
        assert isinstance(value, dict), _broken(entry, "is no dict")
        assert isinstance(value.get("command"), int), _broken(entry, "has no 'command'")
        assert isinstance(value.get("packet"), bytearray), _broken(entry, "has no 'packet'")
        for key in ("have_remaining", "remaining_length"):
            assert isinstance(value.get(key), int), _broken(entry, f"has no {key!r}")
        # The reader replaces _handle_publish on the instance: paho must still reach it
        # through the instance, with the packet read into _in_packet.
        handle = inspect.getsource(paho.Client._packet_handle)
        assert "return self._handle_publish()" in handle, _broken(entry, "is not handled")
        read = inspect.getsource(paho.Client._packet_read)
        assert "self._in_packet['packet'] += data" in read, _broken(entry, "is not read")
        # The body is asked of the socket through the instance's _sock_recv, after the
        # remaining length is known (the drain of a packet past the limit relies on both).
        for line in (
            "self._in_packet['have_remaining'] = 1",
            "data = self._sock_recv(self._in_packet['to_process'])",
        ):
            assert line in read, _broken(entry, f"is read without {line!r}")
    else:  # pragma: no cover - a new entry needs its own check
        pytest.fail(f"no check for {entry.owner}.{entry.name}: add one")


def test_socket_factory_still_returns_the_socket_we_track() -> None:
    """The wrapped ``_create_socket_connection`` must return the TCP socket."""
    entry = next(e for e in PRIVATE_NAMES if e.name == "_create_socket_connection")
    returns = inspect.signature(paho.Client._create_socket_connection).return_annotation
    # The adapter closes what it returns when the TLS/WebSocket handshake fails.
    assert "socket" in str(returns), _broken(entry, f"now returns {returns!r}")


async def test_aiomqtt_still_installs_the_paho_callbacks_the_adapter_wraps() -> None:
    """The adapter wraps aiomqtt's on_connect/on_disconnect (public paho properties):
    aiomqtt must still set them, or CONNACK and disconnects would go unnoticed."""
    mqtt = (await _live_instances())["paho.Client"]
    assert isinstance(mqtt, paho.Client)
    for name in ("on_connect", "on_disconnect", "on_socket_open", "on_socket_close"):
        assert getattr(mqtt, name) is not None, (
            f"aiomqtt {_installed()['aiomqtt']} no longer sets paho's {name}; "
            f"the adapter was verified with {VERIFIED_WITH}"
        )


def test_the_adapter_uses_only_the_private_names_it_declares() -> None:
    """Every private attribute the adapter reads off another object is in
    PRIVATE_NAMES, so the test above covers all of them."""
    declared = {entry.name for entry in PRIVATE_NAMES}
    used = {name for name, _ in _foreign_private_names(ADAPTER)}
    assert used - declared == set(), f"undeclared private names in the adapter: {used}"
    assert declared - used == set(), f"declared but unused: {declared - used}"


def test_only_the_adapter_imports_aiomqtt_or_paho() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{imp.line}: {imp.module}"
        for module, path in modules().items()
        if path.resolve() != ADAPTER
        # Typing-only imports count too: they tie the module to the library's names.
        for imp in imports(path, module, type_checking=True)
        if imp.module.split(".")[0] in ("aiomqtt", "paho")
    ]
    assert offenders == [], (
        f"only transport/aiomqtt_adapter.py may import aiomqtt/paho: {offenders}"
    )


def test_no_other_module_names_a_private_aiomqtt_or_paho_attribute() -> None:
    declared = {entry.name for entry in PRIVATE_NAMES}
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in modules().values()
        if path.resolve() != ADAPTER
        for name, line in _foreign_private_names(path)
        if name in declared
    ]
    assert offenders == [], (
        "private aiomqtt/paho names outside transport/aiomqtt_adapter.py "
        f"(go through its Connection instead): {offenders}"
    )
    assert _foreign_private_names(ADAPTER), "the AST walk finds nothing: it is broken"


def _foreign_private_names(path: Path) -> list[tuple[str, int]]:
    """``(name, line)`` of private attributes read off objects other than ``self``:
    ``x._name`` and ``getattr(x, "_name")``/``setattr``/``hasattr`` (dunders aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute):
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in ("self", "cls")):
                name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and not (isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls"))
        ):
            name = node.args[1].value
        if name and name.startswith("_") and not name.startswith("__") and name != "_":
            found.append((name, getattr(node, "lineno", 0)))
    return found


def _range(requirement: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``">=2.5.1,<2.6"`` -> ``((2, 5, 1), (2, 6))`` (the only form the pins use)."""
    low = high = None
    for part in requirement.split(","):
        part = part.strip()
        if part.startswith(">="):
            low = tuple(int(x) for x in part[2:].split("."))
        elif part.startswith("<"):
            high = tuple(int(x) for x in part[1:].split("."))
    assert low is not None, f"expected '>=X,<Y', got {requirement!r}"
    assert high is not None, f"expected '>=X,<Y', got {requirement!r}"
    return low, high


def _requirements(pyproject: Path) -> dict[str, str]:
    deps: list[str] = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    out: dict[str, str] = {}
    for dep in deps:
        for name in VERIFIED_WITH:
            if dep.startswith(name) and dep[len(name) : len(name) + 1] in "<>=!~":
                out[name] = dep[len(name) :]
    return out


@pytest.mark.parametrize("pyproject", ["clients/pyproject.toml", "pyproject.toml"])
def test_dependency_pins_match_the_verified_versions(pyproject: str) -> None:
    """Both distributions pin aiomqtt and paho-mqtt to ranges holding the verified
    versions and no later minor series (where private names may change)."""
    pins = _requirements(ROOT / pyproject)
    assert set(pins) == set(VERIFIED_WITH), f"{pyproject} pins {pins}"
    for name, verified in VERIFIED_WITH.items():
        low, high = _range(pins[name])
        checked = tuple(int(x) for x in verified.split("."))
        assert low <= checked < high, f"{pyproject}: {name}{pins[name]} excludes {verified}"
        assert high <= (checked[0], checked[1] + 1), (
            f"{pyproject}: {name}{pins[name]} allows minor versions never verified "
            f"(verified with {verified})"
        )


def test_installed_versions_are_within_the_pins() -> None:
    installed = _installed()
    for name, pin in _requirements(ROOT / "clients" / "pyproject.toml").items():
        low, high = _range(pin)
        have = tuple(int(x) for x in installed[name].split(".")[:3])
        assert low <= have < high, f"installed {name} {installed[name]} is outside {pin}"
