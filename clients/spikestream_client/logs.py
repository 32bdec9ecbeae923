"""Structured logging: JSON lines (for machines) or key=value text (for people).

Every record carries ``ts``, ``level``, ``logger`` and ``msg``, plus the ``extra=`` fields
given at the call site, so ``log.info("connected", extra={"broker": url})`` becomes
``{"ts": ..., "level": "info", "logger": "spikestream.serve", "msg": "connected",
"broker": "mqtt://127.0.0.1:1883"}``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def log_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` made safe for ``extra=``: keys that would overwrite a LogRecord attribute
    (``name``, ``msg``, ``args``, …) get a ``field_`` prefix instead of raising."""
    return {(f"field_{k}" if k in _STANDARD else k): v for k, v in fields.items()}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


# Fields every record logged in the current context carries (see log_context).
_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "spikestream_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Within the block, every record logged in this context carries ``fields`` (a field
    given at the call site wins). A process serving several networks logs from one task
    per network, each in its own context: ``log_context(net=name)`` names the network on
    every line, its transport's and its tick thread's (started with a copy of the
    context) included.
    """
    token = _CONTEXT.set(MappingProxyType({**_CONTEXT.get(), **log_fields(fields)}))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _add_context(record: logging.LogRecord) -> bool:
    # A handler's filter runs in the thread that logs, so the context is the caller's.
    for key, value in _CONTEXT.get().items():
        record.__dict__.setdefault(key, value)
    return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def one_line(value: object) -> str:
    """``str(value)`` with every character :meth:`str.isprintable` rejects (newlines,
    escape sequences, other controls, format characters, lone surrogates) written as its
    Python escape, so that text from outside (a request id, a topic) can neither forge a
    log line nor drive the terminal."""
    text = str(value)
    if text.isprintable():  # the common case, at C speed
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS level logger: msg key=value ...``, one line per record (but for an
    exception's traceback): the message and the values go through :func:`one_line`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = " ".join(f"{k}={one_line(v)}" for k, v in _fields(record).items())
        message = one_line(record.getMessage())
        line = f"{stamp} {record.levelname.lower():7s} {record.name}: {message}"
        if extra:
            line += f"  {extra}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


# The format setup_logging chose: a tool's report lines follow it (see report).
_FORMAT: list[LogFormat] = ["text"]


def report(prefix: str, text: str, *, level: int = logging.INFO, stdout: bool = False) -> None:
    """A tool's line for people (``feed: sin -> ...``, a summary, a warning): printed as
    ``prefix: text`` (on stderr, or stdout), or, under ``--log-format json``, one JSON log
    record (logger ``spikestream.<prefix>``, at ``level``) on stderr, so that a log
    collector reading a tool's stderr (the container image's entrypoint) gets JSON only.
    """
    name = prefix.removeprefix("spikestream ").replace(" ", "_")
    json = _FORMAT[0] == "json"
    say(text if json else f"{prefix}: {text}", tool=name, level=level, stdout=stdout)


def say(text: str, *, tool: str, level: int = logging.INFO, stdout: bool = False) -> None:
    """A tool's line for people, printed as it is (on stderr, or stdout), or under
    ``--log-format json`` one JSON log record of logger ``spikestream.<tool>`` on stderr
    (see :func:`report`, for lines that start with the tool's name)."""
    if _FORMAT[0] == "json":
        logging.getLogger(f"spikestream.{tool}").log(level, text)
    else:
        print(text, file=sys.stdout if stdout else sys.stderr, flush=True)


def setup_logging(level: str = "info", fmt: LogFormat = "text") -> None:
    """Send spikestream's logs to stderr in ``fmt`` at ``level``; quieten chatty libraries."""
    _FORMAT[0] = fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_add_context)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("spikestream").setLevel(level.upper())
