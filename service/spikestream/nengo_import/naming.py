"""Naming imported objects, and refusing unsupported ones in one line that names them."""

from __future__ import annotations

import re
from typing import Any

from spikestream.errors import ModelImportError
from spikestream_client.names import is_name

_SUPPORTED_TEXT = "see docs/NENGO.md for the supported subset"


def _sanitise(label: str | None) -> str | None:
    if not label:
        return None
    name = re.sub(r"[^A-Za-z0-9_-]", "_", label.strip())[:64]
    if name and not re.match(r"[A-Za-z_]", name[0]):
        name = ("_" + name)[:64]
    return name if name and is_name(name) else None


class _Names:
    """Stable names: the label (made a valid name), else the script's variable bound to the
    object, else ``<kind>_<index>`` by creation order. Unique within one namespace."""

    def __init__(self, variables: dict[int, str]) -> None:
        self.variables = variables
        self.used: set[str] = set()

    def take(self, obj: Any, kind: str, index: int) -> str:
        base = (
            _sanitise(getattr(obj, "label", None))
            or _sanitise(self.variables.get(id(obj)))
            or f"{kind}_{index}"
        )
        name, k = base, 2
        while name in self.used:
            name = f"{base[:60]}_{k}"
            k += 1
        self.used.add(name)
        return name


def describe(obj: Any) -> str:
    """``Ensemble 'a'`` or ``Connection <a -> b>``: how a refusal names an object."""
    kind = type(obj).__name__
    label = getattr(obj, "label", None)
    if label:
        return f"{kind} {label!r}"
    text = str(obj).replace("<", "").replace(">", "").strip()
    return text if text.startswith(kind) else f"{kind} {text}"


def _one_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _refuse(obj: Any, what: str, supported: str) -> ModelImportError:
    return ModelImportError(f"{describe(obj)}: {what}; supported: {supported}")
