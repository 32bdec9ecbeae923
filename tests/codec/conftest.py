"""Test-id tidying for the codec tests: payload parameters are bytes, sometimes 64 KiB."""

from __future__ import annotations

import pytest

_MAX_ID = 40


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Short, readable ids for bytes and str parameters (the default escapes them all)."""
    if isinstance(val, bytes | str):
        text = repr(val)
        return text if len(text) <= _MAX_ID else f"{text[: _MAX_ID - 12]}...[{len(val)}B]"
    if isinstance(val, dict):
        return "+".join(map(str, val)) or "empty"
    return None
