"""A network file's validation errors, one line each: the key path as written in the
file, what is allowed, and the value that arrived (:func:`format_errors`).

pydantic reports every member of a union a value failed (``float | list[float]``, a
signal's kinds) and names locations by model fields and union members; a person wants
the one member the value was meant for and the keys of their file.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

__all__ = ["format_errors"]


def _member_tags(
    loc: tuple[int | str, ...], fields: frozenset[str], named: frozenset[str]
) -> list[int]:
    """Positions in ``loc`` that name a member of a union (``float``, ``list[float]``,
    ``WeightsDist``, ``tagged-union[...]``, a signal kind) rather than a key of the file:
    strings that are not a field name and do not follow a named section."""
    return [
        k
        for k, part in enumerate(loc)
        if k > 0
        and isinstance(part, str)
        and (
            # A discriminated union's tag (``file``) may also be a field name.
            str(loc[k - 1]).startswith("tagged-union[")
            or (part not in fields and str(loc[k - 1]) not in named)
        )
    ]


def _is_type_mismatch(error: Any) -> bool:
    kind = str(error["type"])
    return kind.endswith(("_type", "_parsing")) or kind == "literal_error"


def _closest_members(errors: list[Any], fields: frozenset[str], named: frozenset[str]) -> list[Any]:
    """Drop the errors of union members that the value was not meant for.

    A value checked against ``float | list[float]`` (or ``WeightsDist | WeightsFile``)
    fails every member, and pydantic reports each. Keep only the member that got
    furthest: the deepest error location, then the fewest plain type mismatches. So
    ``transform = [[1, nan]]`` reports the NaN, not "Input should be a valid number"."""
    sites: dict[tuple[int | str, ...], dict[int | str, list[int]]] = {}
    for i, e in enumerate(errors):
        loc = tuple(e["loc"])
        for k in _member_tags(loc, fields, named):
            sites.setdefault(loc[:k], {}).setdefault(loc[k], []).append(i)

    def score(indices: list[int]) -> tuple[int, int]:
        depth = max(len(errors[i]["loc"]) for i in indices)
        return depth, -sum(_is_type_mismatch(errors[i]) for i in indices)

    dropped: set[int] = set()
    for members in sites.values():
        if len(members) > 1:
            best = max(score(v) for v in members.values())
            for indices in members.values():
                if score(indices) < best:
                    dropped.update(indices)
    return [e for i, e in enumerate(errors) if i not in dropped]


def _loc(loc: tuple[int | str, ...], fields: frozenset[str], named: frozenset[str]) -> str:
    """The key path of an error location, as written in the file: ``connections[0].reg``."""
    tags = set(_member_tags(loc, fields, named))
    out = ""
    for k, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif k not in tags:
            # A name from the file (``populations.<name>``) may be megabytes long.
            text = cut(part)
            out += f".{text}" if out else text
    return out


def cut(text: str, limit: int = 80) -> str:
    """``text``, or its first ``limit - 4`` characters and `` ...``: a hostile file's
    key, name or value may be megabytes long, and a message shows a glimpse of it."""
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _shown(value: Any) -> str:
    return cut(repr(value))


def _glimpsed(msg: str, error: Any) -> str:
    """``msg`` with each long text of the file it quotes (a validator's or pydantic's echo
    of the value, a union's tag) cut to a glimpse, as the key path and the value are: a
    megabyte-long signal name made a megabyte-long message."""
    # Only texts from the file: ctx's other entries say what is allowed, kept whole.
    for value in (error.get("input"), (error.get("ctx") or {}).get("tag")):
        if isinstance(value, str):
            for text in (value, repr(value)):
                msg = msg.replace(text, cut(text))  # a short text is its own cut
    return msg


def format_errors(
    source: str, err: ValidationError, fields: frozenset[str], named: frozenset[str]
) -> str:
    """One line per error: ``source: key.path: what is allowed (got value)``; several
    errors get a heading line first.

    Args:
        source: the file, as the message names it.
        err: pydantic's errors.
        fields: every field name of the schema's models: other strings in an error's
            location name a member of a union, which the key path leaves out.
        named: the sections whose next location part is a name from the file.
    """
    lines = []
    for e in _closest_members(err.errors(include_url=False), fields, named):
        loc = _loc(tuple(e["loc"]), fields, named)
        msg = _glimpsed(str(e["msg"]).removeprefix("Value error, "), e)
        got = e.get("input")
        show_got = e["type"] not in ("value_error", "missing") and not isinstance(got, dict)
        where = f"{loc}: " if loc else ""
        lines.append(f"{where}{msg}" + (f" (got {_shown(got)})" if show_got else ""))
    if len(lines) == 1:
        return f"{source}: {lines[0]}"
    heading = f"{source}: invalid network ({len(lines)} errors)"
    return "\n".join([heading, *(f"  {line}" for line in lines)])
