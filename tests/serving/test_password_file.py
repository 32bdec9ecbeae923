"""``SPIKESTREAM_MQTT_PASSWORD_FILE`` names a file from outside: only a regular file of at
most ``PASSWORD_FILE_MAX_BYTES`` is read (``/dev/zero`` was read until ``MemoryError``, a
FIFO blocked ``serve`` for ever)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from spikestream.errors import ConfigError
from spikestream_client.transport.urls import (
    ENV_PASSWORD_FILE,
    ENV_USERNAME,
    PASSWORD_FILE_MAX_BYTES,
    load_broker_spec,
)
from tests.capped import run_capped

EXPECTED = f"expected a readable UTF-8 file of at most {PASSWORD_FILE_MAX_BYTES} bytes"

# Reads the password file in a child whose address space is capped: without the checks,
# /dev/zero is read until memory runs out and a FIFO blocks for ever; the cap and the
# timeout make both a failure instead of a stalled machine or suite.
_CHILD = """
import sys
from spikestream_client.errors import ConfigError
from spikestream_client.transport.urls import load_broker_spec
try:
    load_broker_spec("mqtt://h", {"SPIKESTREAM_MQTT_USERNAME": "u",
                                  "SPIKESTREAM_MQTT_PASSWORD_FILE": sys.argv[1]})
except ConfigError as err:
    print(err)
    sys.exit(2)
"""


def _read_in_child(path: Path) -> subprocess.CompletedProcess[str]:
    return run_capped(_CHILD, str(path))


def test_a_device_is_refused_unread() -> None:
    done = _read_in_child(Path("/dev/zero"))
    assert done.returncode == 2, done.stderr[-500:]
    assert done.stdout.strip() == (
        f"cannot read {ENV_PASSWORD_FILE}='/dev/zero': not a regular file (a folder, FIFO or "
        f"device); {EXPECTED}"
    )


def test_a_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pw"
    os.mkfifo(fifo)
    done = _read_in_child(fifo)  # a TimeoutExpired here is the old hang
    assert done.returncode == 2, done.stderr[-500:]
    assert "not a regular file (a folder, FIFO or device)" in done.stdout


def _load(path: Path) -> str | None:
    return load_broker_spec(
        "mqtt://h", {ENV_USERNAME: "u", ENV_PASSWORD_FILE: str(path)}
    ).password_value()


def test_a_file_past_the_cap_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "pw"
    big.write_bytes(b"x" * (PASSWORD_FILE_MAX_BYTES + 1))
    with pytest.raises(ConfigError) as info:
        _load(big)
    assert str(info.value) == (
        f"cannot read {ENV_PASSWORD_FILE}={str(big)!r}: it is too large; {EXPECTED}"
    )


def test_the_longest_mqtt_password_with_a_newline_still_loads(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"p" * 65_535 + b"\r\n")
    assert _load(pw) == "p" * 65_535
    pw.write_bytes(b"secret\n")
    assert _load(pw) == "secret"


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError) as info:
        _load(pw)
    assert str(info.value) == (
        f"cannot read {ENV_PASSWORD_FILE}={str(pw)!r}: it is not UTF-8 text; {EXPECTED}"
    )


def test_the_cap_is_the_longest_password_plus_crlf(tmp_path: Path) -> None:
    """The cap is MQTT's longest password (65535 bytes) plus a CRLF, not more: one byte
    past it is refused, whatever the constant says."""
    pw = tmp_path / "pw"
    pw.write_bytes(b"p" * 65_536 + b"\r\n")
    with pytest.raises(ConfigError, match="it is too large"):
        _load(pw)


def test_a_nul_byte_in_the_path_is_a_config_error() -> None:
    """An environment value cannot hold a NUL byte, but a settings file or a caller's
    mapping can: the refusal must be the usual config error naming the variable."""
    with pytest.raises(ConfigError) as info:
        _load(Path("/run/secrets/pw\x00"))
    assert str(info.value) == (
        f"cannot read {ENV_PASSWORD_FILE}='/run/secrets/pw\\x00': the path holds a NUL byte; "
        f"{EXPECTED}"
    )


def test_a_path_the_file_system_cannot_encode_is_named_as_such() -> None:
    """A lone surrogate (from a mapping or a settings file) is a bad path, not a NUL."""
    with pytest.raises(ConfigError) as info:
        _load(Path("/run/secrets/pw\ud800"))
    assert "bad path (" in str(info.value)
    assert "NUL" not in str(info.value)
