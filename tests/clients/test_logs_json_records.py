"""What a JSON log record must keep: the exception's traceback, fields that are not JSON
types, and a timestamp finer than a second.

Under ``--log-format json`` (the container image's default) these records are all a log
collector sees. Dropping ``exc``, dropping ``default=str`` (so one field of a type JSON
lacks loses the whole record to logging's own "--- Logging error ---" report) or
rounding ``ts`` to the second each passed the suite.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from spikestream_client.logs import JsonFormatter


def _record(**extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord(
        {"name": "spikestream.serve", "levelname": "ERROR", "levelno": 40, "msg": "failed"}
    )
    rec.__dict__.update(extra)
    return rec


def test_a_json_record_carries_the_traceback() -> None:
    """``log.error(..., exc_info=err)`` (a failed discovery round, an engine failure)
    keeps its traceback in ``exc``, still one line."""
    try:
        raise RuntimeError("the cause")
    except RuntimeError:
        rec = _record(exc_info=sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: the cause" in entry["exc"]


def test_a_field_json_cannot_hold_is_written_as_text() -> None:
    """A field of a type JSON lacks (a path, bytes, a set) is written as its ``str``:
    the record is never lost for one field."""
    line = JsonFormatter().format(_record(path=Path("/x/y.npz"), raw=b"\x00", n=3))
    entry = json.loads(line)
    assert (entry["path"], entry["raw"], entry["n"]) == ("/x/y.npz", "b'\\x00'", 3)


def test_the_timestamp_keeps_microseconds() -> None:
    """``ts`` is the record's time to the microsecond: records of one second stay
    ordered for a collector that sorts by it."""
    rec = _record()
    rec.created = 1_700_000_000.1234567
    assert json.loads(JsonFormatter().format(rec))["ts"] == 1_700_000_000.123457


def test_the_message_is_formatted_with_its_arguments() -> None:
    """``log.info("sent %d", n)``: a collector gets the message as a person reads it,
    not the template with its ``%`` placeholders."""
    rec = _record()
    rec.msg, rec.args = "sent %d values to %s", (3, "seed")
    assert json.loads(JsonFormatter().format(rec))["msg"] == "sent 3 values to seed"
