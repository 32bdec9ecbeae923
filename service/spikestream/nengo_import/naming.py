"""Naming imported objects, and refusing unsupported ones in one line that names them."""

from __future__ import annotations

import re
from typing import Any

from spikestream.errors import ModelImportError
from spikestream_client.names import is_name
from spikestream_client.npz import COMMON_KEYS

_SUPPORTED_TEXT = "see docs/NENGO.md for the supported subset"

#: Keys of a run's ``.npz`` file (and of a recording's) that are not per-probe arrays: a
#: probe or input with one of these names could not be stored, so ``run`` refuses the
#: network. The import gives such labels a suffix, as it does to any other clash.
RESERVED_NAMES: frozenset[str] = frozenset({*COMMON_KEYS, "seed", "segment", "gaps"})

# How Nengo writes an unlabelled object: ``<Node (unlabeled) at 0x7f3f...>``.
_ADDRESS = re.compile(r"<?(\w+) \(unlabeled\) at 0x([0-9a-fA-F]+)>?")


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


def describe(obj: Any, variables: dict[int, str] | None = None) -> str:
    """``Ensemble 'a'`` or ``Connection from Ensemble 'a' to Node f (unlabelled)``: how a
    refusal names an object. An unlabelled object is named by the script's variable bound
    to it (``variables`` maps ``id(object)`` to it), never by its memory address."""
    variables = variables or {}
    kind = type(obj).__name__
    label = getattr(obj, "label", None)
    if label:
        return f"{kind} {label!r}"
    if id(obj) in variables:
        return f"{kind} {variables[id(obj)]} (unlabelled)"
    # The parts an unlabelled object is made of, named the same way.
    if kind == "Neurons" and hasattr(obj, "ensemble"):
        return f"{describe(obj.ensemble, variables)}.neurons"
    if kind == "LearningRule" and hasattr(obj, "connection"):
        return f"{describe(obj.connection, variables)}.learning_rule"
    if kind == "Connection" and hasattr(obj, "pre_obj") and hasattr(obj, "post_obj"):
        pre, post = describe(obj.pre_obj, variables), describe(obj.post_obj, variables)
        return f"Connection from {pre} to {post}"
    if kind == "Probe" and hasattr(obj, "target"):
        return f"Probe of {describe(obj.target, variables)}"
    text = name_addresses(str(obj), variables).replace("<", "").replace(">", "").strip()
    return text if text.startswith(kind) else f"{kind} {text}"


def name_addresses(text: str, variables: dict[int, str]) -> str:
    """``text`` (a Nengo message) with each ``<Node (unlabeled) at 0x...>`` replaced by the
    script's variable for that object (CPython's address is its ``id``), else by
    ``Node (unlabelled)``: an address means nothing to the reader."""

    def one(m: re.Match[str]) -> str:
        var = variables.get(int(m.group(2), 16))
        return f"{m.group(1)} {var} (unlabelled)" if var else f"{m.group(1)} (unlabelled)"

    return _ADDRESS.sub(one, text)


def _one_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _refuse(
    obj: Any, what: str, supported: str, variables: dict[int, str] | None = None
) -> ModelImportError:
    return ModelImportError(f"{describe(obj, variables)}: {what}; supported: {supported}")
