"""The naming rule for networks, populations, inputs, probes and connections.

One definition, used by the service's network-file schema (``spikestream.spec``) and by the
frame decoder (:mod:`spikestream_client.codec.frames`), which refuses a frame whose ``net`` or
``probe`` header breaks it. Names become MQTT topic levels, ``.npz`` keys, HTML text,
terminal text and plot labels, so the rule is narrow on purpose: ASCII letters, digits,
``_`` and ``-`` only. No ``+``, ``#``, ``/`` (topic syntax), no ``.`` (``.npz`` key
suffixes such as ``<pop>.spikes``), no whitespace, control characters, markup
(``<``, ``[``), mathtext (``$``) or quotes.

This module imports only the standard library, so the pure codec layer can use it.
"""

from __future__ import annotations

import re
from typing import Final, TypeGuard

__all__ = [
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "NAME_RULE",
    "SYNC_LEVEL",
    "is_name",
    "reserved_network",
]

NAME_MAX_LENGTH: Final = 64
"""Longest name, in characters."""

NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
"""The rule as a regular expression (also used as a pydantic ``pattern``)."""

NAME_RULE: Final = "1-64 characters: a letter or '_' first, then letters, digits, '_' or '-'"
"""The rule in words, for error messages."""

SYNC_LEVEL: Final = "_sync"
"""The topic level under the prefix that holds the clients' private sync topics
(``<prefix>/_sync/<token>/<n>``), so no network may have this name: its topics would fall
under the sync topics, which the shipped broker ACL lets every client user write."""


def reserved_network(name: str) -> str | None:
    """Why ``name`` may not name a network (what is expected too), or None when it may."""
    if name == SYNC_LEVEL:
        return (
            f"{name!r} is reserved: <prefix>/{SYNC_LEVEL}/ holds the clients' sync topics; "
            "expected another name"
        )
    return None


# fullmatch, not match: '$' in NAME_PATTERN also matches before a trailing newline, so
# re.match would let "a\n" through.
_NAME_RE: Final = re.compile(NAME_PATTERN[1:-1])


def is_name(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a ``str`` that follows :data:`NAME_RULE`."""
    return type(value) is str and _NAME_RE.fullmatch(value) is not None
