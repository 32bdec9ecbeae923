"""Log lines as hostile output: text from outside (request ids, topics, payloads) reaches
the log's fields and messages, and must not forge a line or drive the terminal."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from spikestream_client.logs import JsonFormatter, TextFormatter, one_line
from tests.brokers import Mosquitto
from tests.clients.conftest import run_cli

FORGED = "x\n01:00:00 error   spikestream.serve: engine_failed  error=FORGED\x1b[2J\u202e\ud800"


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "spikestream.serve", "levelname": "INFO", "msg": msg})
    rec.__dict__.update(extra)
    return rec


def test_a_text_line_stays_one_line_whatever_its_fields_hold() -> None:
    line = TextFormatter().format(record(f"control_rejected {FORGED}", id=FORGED, n=3))
    assert "\n" not in line
    assert "\x1b" not in line
    assert "\u202e" not in line
    assert line.count("engine_failed") == 2  # shown, escaped, in the message and the field
    assert "id=x\\n01:00:00 error" in line
    assert "\\x1b[2J\\u202e\\ud800" in line
    assert line.endswith(" n=3")
    line.encode()  # no lone surrogate is left to break a UTF-8 stream


def test_printable_text_is_unchanged() -> None:
    text = "ünïcode, spaces and 'quotes' -> fine ✓"
    assert one_line(text) == text
    assert one_line(12.5) == "12.5"


def test_a_json_line_escapes_the_same_text() -> None:
    line = JsonFormatter().format(record("m", id=FORGED))
    assert "\n" not in line
    assert "\x1b" not in line
    assert json.loads(line)["id"] == FORGED


@pytest.mark.broker
def test_the_tools_lines_are_json_records_under_log_format_json(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The container image runs every tool with ``--log-format json`` and a collector reads
    its stderr: feed's start line and summary, record's, ls's refusal and the web
    monitor's came out as plain text among the JSON records."""
    url = mosquitto.url()
    runs = {
        "ls": ["ls", "--broker", url, "--wait", "0.3"],  # first: no network yet
        "feed": ["feed", "--broker", url, "--net", "seed", "--input", "u", "--no-check",
                 "--duration", "0.3", "sin"],
        "record": ["record", "--broker", url, "--net", "seed", "--wait-net", "0.1",
                   "--duration", "0.3", "--out", str(tmp_path / "r.npz")],
        "web": ["monitor", "--broker", url, "--net", "seed", "--web", "0", "--duration", "0.3"],
    }  # fmt: skip
    said: dict[str, list[dict[str, object]]] = {}
    for name, argv in runs.items():
        if name == "feed":  # record needs a network to find: its retained status
            status = ["mosquitto_pub", "-p", str(mosquitto.port), "-r", "-q", "1"]
            status += ["-t", "spikestream/seed/status", "-m", "online"]
            subprocess.run(status, check=True, timeout=30)
        done = run_cli("--log-format", "json", *argv, timeout=60)
        assert not done.stdout.strip() or name != "feed", done.stdout
        lines = [*done.stdout.splitlines(), *done.stderr.splitlines()]
        said[name] = [json.loads(line) for line in lines]  # every line is one JSON object
    assert said["feed"][0]["msg"].startswith("sin (dim 1) -> spikestream/seed/in/u at 100/s")
    assert said["feed"][0]["logger"] == "spikestream.feed"
    assert said["feed"][-1]["msg"].startswith("sent ")
    assert str(said["record"][0]["msg"]).startswith("recording spikestream/seed/out/+ for")
    assert said["record"][-1]["error"] == "ConfigError"  # no frames came: said as JSON too
    assert said["ls"][-1]["msg"] == f"no networks under spikestream/ on {url}"
    assert said["ls"][-1]["logger"] == "spikestream.ls"
    assert str(said["web"][0]["msg"]).startswith("http://127.0.0.1:")
    assert str(said["web"][-1]["msg"]).startswith("sent ")
    # Text stays as it was, prefixes included.
    text = run_cli("feed", *runs["feed"][1:], timeout=60)
    assert text.stderr.splitlines()[0].startswith("feed: sin (dim 1) -> spikestream/seed/in/u")


def test_a_text_line_keeps_the_traceback_after_it() -> None:
    """``log.exception`` in text (the default for people): the one line, then the
    traceback that says where it failed; only the traceback spans lines."""
    try:
        raise RuntimeError("engine stopped")
    except RuntimeError:
        rec = record("engine_failed", exc_info=sys.exc_info())
    first, *rest = TextFormatter().format(rec).split("\n")
    assert first.endswith("spikestream.serve: engine_failed")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: engine stopped"
