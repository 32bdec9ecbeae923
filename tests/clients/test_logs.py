"""Log lines as hostile output: text from outside (request ids, topics, payloads) reaches
the log's fields and messages, and must not forge a line or drive the terminal."""

from __future__ import annotations

import json
import logging

from spikestream_client.logs import JsonFormatter, TextFormatter, one_line

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
