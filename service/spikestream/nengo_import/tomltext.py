"""Writing a network document as TOML text (the subset the imported files use)."""

from __future__ import annotations

import math
from typing import Any

from spikestream.errors import ModelImportError

# TOML basic strings hold any Unicode scalar value except these, which must be escaped.
_STRING_ESCAPES = {'"': '\\"', "\\": "\\\\"}


def _string(s: str) -> str:
    """``s`` as a TOML basic string, its characters as they are (UTF-8 in the file).

    ``json.dumps`` is not TOML: by default it writes a character beyond U+FFFF as a
    surrogate pair (``\\ud83d\\ude00``), which TOML forbids, and with ``ensure_ascii=False``
    it leaves DEL (U+007F) raw, which TOML forbids too. Control characters are written as
    ``\\uXXXX``; a lone surrogate (an undecodable byte of a file name) has no TOML form.

    Raises:
        ModelImportError: ``s`` holds a surrogate code point.
    """
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ModelImportError(
                f"cannot write {s!r} to a network file: it holds the surrogate U+{code:04X} "
                "(a byte that is not UTF-8?); expected a name or path that is valid Unicode"
            )
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _comment(text: str) -> str:
    """``text`` fit for a TOML comment, which ends at a newline and may hold no other
    control character: those (and anything unprintable) are written as ``\\uXXXX``."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04X}" for ch in text)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ModelImportError(f"cannot write the non-finite number {v} to a network file")
        # float(v): a subclass's repr is not the number (numpy 2 writes np.float64(0.001)).
        return repr(float(v))
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")  # pragma: no cover


def _toml(doc: dict[str, Any]) -> str:
    out: list[str] = []
    out.append("\n[network]")
    out.extend(f"{k} = {_value(v)}" for k, v in doc["network"].items())
    for section in ("populations", "inputs"):
        for name, table in doc[section].items():
            out.append(f"\n[{section}.{name}]")
            out.extend(f"{k} = {_value(v)}" for k, v in table.items())
    for table in doc["connections"]:
        out.append("\n[[connections]]")
        out.extend(f"{k} = {_value(v)}" for k, v in table.items())
    for name, table in doc["probes"].items():
        out.append(f"\n[probes.{name}]")
        out.extend(f"{k} = {_value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"
