"""Writing a network document as TOML text (the subset the imported files use)."""

from __future__ import annotations

import json
import math
from typing import Any

from spikestream.errors import ModelImportError


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ModelImportError(f"cannot write the non-finite number {v} to a network file")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a valid TOML basic string for the names and paths written here
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
